"""Seat quantities in the admin: who may edit, what is refused, how a change is versioned."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from billflow_usage.models import SubscriptionItemLink
from billflow_usage.tracking import tracking_disabled
from tests.factories import (
    LicensedMetricFactory,
    MemberFactory,
    MetricFactory,
    SubscriptionItemLinkFactory,
    WorkspaceFactory,
)

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


# -- quantities a track_quantity() tracker owns ---------------------------------------------

COUNTED_BY = "Counted by track_quantity(testapp.Member, metric=&#x27;seats&#x27;)"


@pytest.fixture
def owned_link(seats, default_registry):
    """Seats counted by a tracker: 4 active members, while the link still wants 3."""
    default_registry.track_quantity(
        "testapp.Member",
        metric="seats",
        customer="tests.tracking.helpers.workspace_customer",
        quantity="tests.tracking.helpers.active_members",
    )
    workspace = WorkspaceFactory()
    with tracking_disabled():  # e.g. members imported around the tracker
        MemberFactory.create_batch(4, workspace=workspace)
    return SubscriptionItemLinkFactory(
        metric=seats, customer_id=workspace.stripe_customer_id, quantity=3, quantity_version=1
    )


def changelist_url():
    return reverse("admin:billflow_usage_subscriptionitemlink_changelist")


@pytest.fixture
def free_link(db):
    """Seats of another licensed metric, which no tracker counts: staff edit those."""
    metric = LicensedMetricFactory(key="support_seats")
    return SubscriptionItemLinkFactory(metric=metric, quantity=3, quantity_version=1)


def test_an_owned_quantity_says_who_counts_it_and_cannot_be_edited(client, editor, owned_link):
    client.force_login(editor)
    page = client.get(change_url(owned_link))
    assert COUNTED_BY in page.text
    assert "counts 4 now" in page.text
    assert "Recount now" in page.text
    [field] = [f for f in page.context["adminform"].form if f.name == "quantity"]
    assert field.field.widget.attrs.get("disabled")  # read-only in the browser

    response = client.post(change_url(owned_link), {"quantity": 9})

    assert response.status_code == 200
    assert "is counted by track_quantity(testapp.Member" in response.text
    assert "Recount now" in response.text
    owned_link.refresh_from_db()
    assert (owned_link.quantity, owned_link.quantity_version) == (3, 1)
    assert not LogEntry.objects.exists()


def test_an_owned_quantity_is_not_editable_in_the_list(client, editor, owned_link, free_link):
    client.force_login(editor)
    listing = client.get(changelist_url())
    rows = {form.instance.pk: form for form in listing.context["cl"].formset.forms}
    assert rows[owned_link.pk].fields["quantity"].widget.attrs.get("disabled")
    assert not rows[free_link.pk].fields["quantity"].widget.attrs.get("disabled")

    response = client.post(
        changelist_url(),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(owned_link.pk),
            "form-0-quantity": "11",
            "_save": "Save",
        },
    )

    assert response.status_code == 200
    assert "is counted by track_quantity(testapp.Member" in response.text
    owned_link.refresh_from_db()
    assert (owned_link.quantity, owned_link.quantity_version) == (3, 1)


def test_recount_now_stores_the_trackers_count_pushes_and_logs(
    client,
    editor,
    owned_link,
    free_link,
    settings,
    usage_outbox,
    django_capture_on_commit_callbacks,
):
    settings.BILLFLOW_USAGE = settings.BILLFLOW_USAGE | {"DELIVERY": "on_commit"}
    client.force_login(editor)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            changelist_url(),
            {"action": "recount_quantities", "_selected_action": [owned_link.pk, free_link.pk]},
            follow=True,
        )

    owned_link.refresh_from_db()
    assert (owned_link.quantity, owned_link.quantity_version) == (4, 2)
    [push] = usage_outbox
    assert (push.subscription_item_id, push.quantity) == (owned_link.stripe_subscription_item_id, 4)
    [entry] = LogEntry.objects.filter(object_id=str(owned_link.pk), user=editor)
    assert "Recounted by track_quantity(testapp.Member, metric='seats'): 4 (was 3)" in (
        entry.get_change_message()
    )
    text = response.text
    assert "1 quantity recounted" in text
    assert "no tracker counts it" in text
    free_link.refresh_from_db()
    assert (free_link.quantity, free_link.quantity_version) == (3, 1)
    assert not LogEntry.objects.filter(object_id=str(free_link.pk)).exists()


def test_recount_now_needs_the_change_permission(client, viewer, owned_link):
    client.force_login(viewer)
    listing = client.get(changelist_url())
    assert "recount_quantities" not in listing.text
    client.post(
        changelist_url(), {"action": "recount_quantities", "_selected_action": [owned_link.pk]}
    )
    owned_link.refresh_from_db()
    assert owned_link.quantity == 3


def test_the_title_names_the_metric_by_its_key(client, viewer, link):
    client.force_login(viewer)

    page = client.get(change_url(link)).text

    title = f"{link.customer_id} / {link.metric.key} ({link.stripe_subscription_item_id})"
    assert title in page
    assert f"{link.customer_id} / {link.metric.pk} (" not in page
