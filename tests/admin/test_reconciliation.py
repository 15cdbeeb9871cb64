"""The dry reconciliation action (subscription items, and host objects through
UsageAdminMixin): billflow_sync --dry-run for the selected customers, stored and shown."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import User
from django.urls import reverse

import billflow_usage
from billflow_usage.admin.reconciliation import MAX_CUSTOMERS
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import SubscriptionItemLink, SyncReport, UsageEvent
from tests.admin.conftest import Account, ago, staff_with
from tests.clock import Clock
from tests.factories import CustomerFactory, SubscriptionItemLinkFactory, WorkspaceFactory
from tests.reconcile.conftest import SETTLED

pytestmark = pytest.mark.django_db
LINKS = "admin:billflow_usage_subscriptionitemlink_changelist"


@pytest.fixture
def reconciler(db) -> User:
    return staff_with("view_subscriptionitemlink", "change_subscriptionitemlink", "view_syncreport")


def reconcile(client, links, url=LINKS, action="reconcile_dry_run"):
    return client.post(
        reverse(url),
        {"action": action, "_selected_action": [str(link.pk) for link in links]},
        follow=True,
    )


def ledger_snapshot() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    return (
        list(UsageEvent.objects.order_by("pk").values_list()),
        list(SubscriptionItemLink.objects.order_by("pk").values_list()),
    )


def test_dry_run_for_the_selected_customers_is_stored_and_shown(
    client, reconciler, account: Account, clock: Clock
) -> None:
    billflow_usage.record_usage("api_calls", account.customer, 5, timestamp=ago(hours=5))
    deliver_pending()
    clock.advance(SETTLED)
    account.send_behind_the_ledgers_back(2, at=ago(hours=4))
    other = SubscriptionItemLinkFactory(metric=account.api_calls)
    before = ledger_snapshot()
    posts = account.fake.request_count(method="POST")
    client.force_login(reconciler)

    response = reconcile(client, [account.link])

    report = SyncReport.objects.get()
    assert response.redirect_chain[-1][0] == reverse(
        "admin:billflow_usage_syncreport_change", args=[report.pk]
    )
    assert (report.mode, report.options["customers"]) == ("dry_run", [account.customer])
    assert other.customer_id not in str(report.report)
    [drift] = report.report["metered"]
    assert (drift["customer_id"], drift["difference"]) == (account.customer, 2)
    assert "nothing changed: 1 metered figure(s) checked, 1 drifting" in response.text
    assert f"Stored as report #{report.pk}." in response.text
    assert ledger_snapshot() == before
    assert account.fake.request_count(method="POST") == posts
    [entry] = LogEntry.objects.filter(user=reconciler, object_id=str(report.pk))
    assert entry.action_flag == ADDITION
    assert account.customer in entry.get_change_message()


@pytest.mark.parametrize(
    "codenames",
    [
        ("view_subscriptionitemlink", "change_subscriptionitemlink"),
        ("view_subscriptionitemlink", "view_syncreport"),
    ],
)
def test_needs_change_on_links_and_view_on_reports(client, account: Account, codenames) -> None:
    client.force_login(staff_with(*codenames))
    listing = client.get(reverse(LINKS))
    assert "reconcile_dry_run" not in listing.text
    reconcile(client, [account.link])
    assert not SyncReport.objects.exists()


def test_too_many_customers_refused(client, reconciler, seats) -> None:
    links = SubscriptionItemLinkFactory.create_batch(MAX_CUSTOMERS + 1, metric=seats)
    client.force_login(reconciler)

    response = reconcile(client, links)

    assert f"at most {MAX_CUSTOMERS}" in response.text
    assert not SyncReport.objects.exists()


def test_a_failing_run_is_a_message(client, reconciler, account: Account, settings) -> None:
    settings.BILLFLOW_USAGE = {
        **settings.BILLFLOW_USAGE,
        "BACKEND": "billflow_usage.backends.missing.Backend",
    }
    client.force_login(reconciler)

    response = reconcile(client, [account.link])

    assert response.status_code == 200
    assert "The dry reconciliation failed (ModuleNotFoundError" in response.text


def test_stripe_down_is_reported_in_the_stored_report(client, reconciler, account) -> None:
    account.fake.faults.add("outage")
    client.force_login(reconciler)

    response = reconcile(client, [account.link])

    report = SyncReport.objects.get()
    assert report.report["errors"]
    assert f"Stored as report #{report.pk}." in response.text


@pytest.mark.urls("tests.admin.host_site")
def test_from_host_objects_through_the_mixin(client, reconciler, account: Account) -> None:
    billed = CustomerFactory(id=account.customer).subscriber
    trial = WorkspaceFactory()
    reconciler.user_permissions.add(*staff_with("view_workspace").user_permissions.all())
    client.force_login(User.objects.get(pk=reconciler.pk))

    response = reconcile(
        client,
        [billed, trial],
        url="host:testapp_workspace_changelist",
        action="reconcile_usage_dry_run",
    )

    report = SyncReport.objects.get()
    assert report.options["customers"] == [account.customer]
    assert "1 selected object(s) have no Stripe customer and were left out." in response.text
    assert response.redirect_chain[-1][0] == reverse(
        "host:billflow_usage_syncreport_change", args=[report.pk]
    )
