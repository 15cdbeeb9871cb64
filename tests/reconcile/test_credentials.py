"""billflow_sync with a key Stripe refuses: every read says the key was rejected and what to
fix, never the key, and nothing is changed on the strength of a refused read."""

from __future__ import annotations

import json

import pytest

import billflow_usage
from billflow_usage.testing.pytest_plugin import FAKE_STRIPE_API_KEY
from tests.reconcile.conftest import Account, sync

pytestmark = pytest.mark.django_db


def test_refused_reads_say_the_key_was_rejected(account: Account) -> None:
    customer = account.customer()
    account.subscribe(customer)
    billflow_usage.record_usage("api_calls", customer, 3)
    account.fake.keys.revoke(FAKE_STRIPE_API_KEY)

    out, _ = sync("--json", "--apply")

    document = json.loads(out)
    reasons = [f"{e['code']}: {e['message']}" for e in document["errors"]]
    assert reasons, document
    assert all("CredentialsRejected: Stripe rejected the API key" in r for r in reasons)
    assert all("BILLFLOW_USAGE['STRIPE_API_KEY']" in r for r in reasons)
    assert FAKE_STRIPE_API_KEY not in out
    assert document["delivery"]["refused"] == 1
