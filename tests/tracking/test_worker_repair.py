"""A seat count left stale by a crash between commit and recount is repaired by the worker."""

import pytest
from django.core.management import call_command

import billflow_usage
from billflow_usage.models import SubscriptionItemLink
from tests.factories import WorkspaceFactory
from tests.testapp.models import Member
from tests.tracking.helpers import active_members, workspace_customer


@pytest.mark.django_db
def test_worker_recounts_and_pushes_stale_seats(default_registry, seats, fake_stripe, settings):
    settings.BILLFLOW_USAGE = settings.BILLFLOW_USAGE | {"DELIVERY": "worker"}
    customer = fake_stripe.create_customer()["id"]
    price = fake_stripe.create_price(usage_type="licensed")["id"]
    subscription = fake_stripe.create_subscription(customer, price, quantity=1)
    item = subscription["items"]["data"][0]["id"]
    workspace = WorkspaceFactory(stripe_customer_id=customer)
    billflow_usage.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=active_members
    )
    Member.objects.bulk_create([Member(workspace=workspace, name=f"m{i}") for i in range(3)])
    # What a crash between the host's commit and the recount leaves behind:
    SubscriptionItemLink.objects.create(
        customer_id=customer, metric=seats, stripe_subscription_item_id=item, quantity_stale=True
    )

    call_command("billflow_worker", "--once", verbosity=0)

    link = SubscriptionItemLink.objects.get()
    assert (link.quantity, link.quantity_stale, link.synced_quantity) == (3, False, 3)
    assert fake_stripe.subscription_item(item)["quantity"] == 3
