"""Kept: every string the admin pages and the SVG chart show is escaped, whoever wrote it
(a row stored behind the ledger's back, Stripe's message, a report's JSON)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import billflow_usage
from billflow_usage.models import Metric, SubscriptionItemLink, SyncReport
from tests.admin.conftest import Account, ago
from tests.factories import MetricFactory, SubscriptionItemLinkFactory, UsageEventFactory

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('billflow')</script>"
#: Customer IDs sit in URL paths too, where a "/" can't go.
IMG = "<img src=x onerror=alert(1)>"
ESCAPED = ("&lt;script&gt;alert(", "&lt;img src=x onerror=alert(1)&gt;")


def assert_escaped(html: str, *, shown: tuple[str, ...] = ESCAPED) -> None:
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    for fragment in shown:
        assert fragment in html


@pytest.fixture
def hostile(account: Account) -> dict[str, object]:
    """A metric, a ledger row, a seat link and a sync report holding markup in every field
    that is text."""
    metric = MetricFactory(key="evil", event_name="evil", display_name=f"Evil {SCRIPT}")
    row = UsageEventFactory(
        metric=metric,
        customer_id=f"cus_{IMG}",
        value=1,
        identifier=f"id-{SCRIPT}",
        failed=True,
        last_error_code="code<b>",
        last_error_message=f"Stripe said {SCRIPT} {IMG}",
    )
    link = SubscriptionItemLinkFactory(
        customer_id=f"cus_{IMG}",
        metric=MetricFactory(key="evil-seats", display_name=f"Seats {SCRIPT}", kind="licensed"),
        stripe_subscription_item_id=f"si_{IMG}",
        last_error_message=f"push failed {SCRIPT}",
    )
    report = SyncReport.objects.create(
        started_at=timezone.now(),
        mode=SyncReport.Mode.CHECK,
        status=SyncReport.Status.FAILED,
        summary={"metered_drift": 1},
        report={"metered": [{"customer_id": f"cus_{IMG}", "detail": SCRIPT}]},
        error_message=f"RuntimeError: {SCRIPT}",
    )
    return {"metric": metric, "row": row, "link": link, "report": report}


def admin(name: str, *args: object) -> str:
    return reverse(f"admin:billflow_usage_{name}", args=args)


@pytest.mark.parametrize(
    "page",
    [
        "usageevent_changelist",
        "usageevent_change",
        "metric_changelist",
        "metric_change",
        "subscriptionitemlink_changelist",
        "subscriptionitemlink_change",
        "syncreport_changelist",
        "syncreport_change",
    ],
)
def test_admin_pages_escape_what_rows_hold(
    admin_client: Client, hostile: dict[str, object], page: str
) -> None:
    model = page.split("_")[0]
    objects = {
        "usageevent": hostile["row"],
        "metric": hostile["metric"],
        "subscriptionitemlink": hostile["link"],
        "syncreport": hostile["report"],
    }
    args = [objects[model].pk] if page.endswith("_change") else []  # type: ignore[attr-defined]

    response = admin_client.get(admin(page, *args))

    assert response.status_code == 200
    shown = {
        "metric_changelist": ("&lt;script&gt;alert(",),
        "metric_change": ("&lt;script&gt;alert(",),
        "syncreport_changelist": (),
    }.get(page, ESCAPED)
    assert_escaped(response.text, shown=shown)


def test_the_usage_page_and_its_chart_escape_names_and_messages(
    admin_client: Client, account: Account, hostile: dict[str, object]
) -> None:
    Metric.objects.filter(pk=account.api_calls.pk).update(display_name=f"Calls {SCRIPT}")
    billflow_usage.record_usage("api_calls", account.customer, 5, timestamp=ago(days=1))
    billflow_usage.record_usage(hostile["metric"], account.customer, 2, timestamp=ago(days=1))
    SubscriptionItemLink.objects.filter(pk=account.link.pk).update(
        last_error_message=f"refused {SCRIPT}"
    )

    response = admin_client.get(admin("customer_usage", account.customer))

    assert response.status_code == 200
    html = response.text
    assert_escaped(html, shown=("&lt;script&gt;alert(",))
    [svg] = re.findall(r"<svg class=\"bfu-daily-chart\".*?</svg>", html, flags=re.S)
    assert "<script" not in svg
    assert "Calls &lt;script&gt;alert(" in svg


def test_a_customer_id_with_markup_in_the_url_is_refused_escaped(admin_client: Client) -> None:
    response = admin_client.get(admin("customer_usage", f"cus_{IMG}"))

    assert response.status_code == 404
    assert_escaped(response.text, shown=("&lt;img src=x onerror=alert(1)&gt;",))
