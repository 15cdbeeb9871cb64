"""Seat quantities in the admin: who may edit, what is refused, how a change is versioned."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from billflow_usage.models import SubscriptionItemLink
from tests.factories import MetricFactory, SubscriptionItemLinkFactory

pytestmark = pytest.mark.django_db


def change_url(link):
    return reverse("admin:billflow_usage_subscriptionitemlink_change", args=[link.pk])


@pytest.fixture
def link(seats):
    return SubscriptionItemLinkFactory(metric=seats, quantity=3, quantity_version=1)


def test_viewer_sees_but_cannot_change(client, viewer, link):
    client.force_login(viewer)
    listing = client.get(reverse("admin:billflow_usage_subscriptionitemlink_changelist"))
    assert listing.status_code == 200
    assert link.customer_id in listing.text
    assert client.post(change_url(link), {"quantity": 9}).status_code == 403
    link.refresh_from_db()
    assert link.quantity == 3


def test_editor_changes_quantity_versioned_pushed_and_logged(
    client, editor, link, settings, usage_outbox, django_capture_on_commit_callbacks
):
    settings.BILLFLOW_USAGE = settings.BILLFLOW_USAGE | {"DELIVERY": "on_commit"}
    client.force_login(editor)
    page = client.get(change_url(link))
    assert "create_prorations" in page.text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(change_url(link), {"quantity": 7})
    assert response.status_code == 302
    [push] = usage_outbox
    assert (push.subscription_item_id, push.quantity) == (link.stripe_subscription_item_id, 7)
    assert push.proration_behavior == "create_prorations"
    link.refresh_from_db()
    assert (link.quantity, link.quantity_version) == (7, 2)
    assert (link.synced_quantity, link.synced_version) == (7, 2)
    assert LogEntry.objects.filter(object_id=str(link.pk), user=editor).exists()


@pytest.mark.parametrize(
    ("value", "message"), [("-1", "greater than or equal to 0"), ("many", "whole number")]
)
def test_invalid_quantities_refused(client, editor, link, value, message):
    client.force_login(editor)
    response = client.post(change_url(link), {"quantity": value})
    assert response.status_code == 200
    assert message in response.text
    link.refresh_from_db()
    assert (link.quantity, link.quantity_version) == (3, 1)


def test_quantity_on_metered_item_refused(client, editor):
    metered = SubscriptionItemLinkFactory(metric=MetricFactory(key="calls"), quantity=None)
    client.force_login(editor)
    page = client.get(change_url(metered))
    assert 'name="quantity"' in page.text
    assert "disabled" in page.text
    response = client.post(change_url(metered), {"quantity": 5})
    assert response.status_code == 200
    assert "calls is metered" in response.text
    metered.refresh_from_db()
    assert (metered.quantity, metered.quantity_version) == (None, 0)


def test_blank_quantity_refused_for_seats(client, editor, link):
    client.force_login(editor)
    response = client.post(change_url(link), {"quantity": ""})
    assert "Enter a whole number of seats" in response.text
    link.refresh_from_db()
    assert link.quantity == 3


def test_list_editable_quantity(client, editor, link):
    client.force_login(editor)
    url = reverse("admin:billflow_usage_subscriptionitemlink_changelist")
    response = client.post(
        url,
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(link.pk),
            "form-0-quantity": "11",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    link.refresh_from_db()
    assert (link.quantity, link.quantity_version) == (11, 2)


def test_in_sync_page_says_stripe_confirmed(client, editor, link):
    from django.utils import timezone

    SubscriptionItemLink.objects.filter(pk=link.pk).update(
        synced_quantity=3, synced_version=1, synced_at=timezone.now()
    )
    client.force_login(editor)
    assert "Stripe confirmed 3" in client.get(change_url(link)).text


def test_no_add_or_delete(client, editor, link):
    client.force_login(editor)
    assert client.get(reverse("admin:billflow_usage_subscriptionitemlink_add")).status_code == 403
    delete = reverse("admin:billflow_usage_subscriptionitemlink_delete", args=[link.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
