"""A failed row kept without a metric (its tracker's metric doesn't exist) is shown like any
other, and never queued for sending: it has nowhere to go."""

import pytest
from django.urls import reverse

from billflow_usage.models import UsageEvent
from tests.factories import UsageEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def orphan():
    return UsageEventFactory(unknown_metric=True, identifier="bfu_orphan")


def test_listed_and_shown(client, viewer, orphan):
    client.force_login(viewer)

    listed = client.get(reverse("admin:billflow_usage_usageevent_changelist"))
    shown = client.get(reverse("admin:billflow_usage_usageevent_change", args=[orphan.pk]))

    assert listed.status_code == shown.status_code == 200
    assert "bfu_orphan" in listed.text
    assert "No metric with key" in shown.text
    assert "no metric" in str(orphan)


def test_retry_leaves_it_failed(client, editor, orphan):
    client.force_login(editor)

    response = client.post(
        reverse("admin:billflow_usage_usageevent_changelist"),
        {"action": "retry_failed", "_selected_action": [str(orphan.pk)]},
        follow=True,
    )

    assert "1 event(s) failed in their tracker (tracker_error, unknown_metric)" in response.text
    orphan.refresh_from_db()
    assert orphan.status == UsageEvent.Status.FAILED
