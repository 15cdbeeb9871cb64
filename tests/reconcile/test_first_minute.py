"""The first ``billflow_sync`` after a subscription is made (issue #15): usage sent seconds
ago is compared with ``--settling-window 0``, and a pair left out for the settling window
never shows a period that ends before it starts."""

from __future__ import annotations

from datetime import timedelta

import pytest

import billflow_usage
from billflow_usage.delivery import deliver_pending
from tests.reconcile.conftest import Account, sync_json

pytestmark = pytest.mark.django_db


@pytest.mark.now("2026-12-01T10:00:45Z")
def test_usage_of_a_subscription_made_seconds_ago_is_compared(account: Account) -> None:
    customer = account.customer()
    account.subscribe(customer, age=timedelta(seconds=15))  # at 10:00:30
    billflow_usage.record_usage("api_calls", customer, 3)
    deliver_pending()  # by the worker, or on commit, before the sync runs

    document = sync_json("--settling-window", "0")

    assert document["metered"] == []
    assert document["summary"]["metered_checked"] == 1
    assert document["summary"]["metered_in_sync"] == 1


@pytest.mark.now("2026-12-01T10:00:45Z")
def test_a_pair_within_the_settling_window_shows_its_period_forwards(account: Account) -> None:
    customer = account.customer()
    account.subscribe(customer, age=timedelta(seconds=15))

    document = sync_json("--dry-run", "--settling-window", "3600")

    [entry] = document["metered"]
    assert entry["status"] == "skipped"
    assert "settling window" in entry["detail"]
    assert entry["period_start"] == "2026-12-01T10:00:00+00:00"
    assert entry["period_end"] > entry["period_start"]
