"""METER_API "legacy": usage goes to usage records on the customer's subscription item, so
billflow_sync never matches a legacy metric to a meter, nor repairs it from a meter's totals."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import billflow_usage
from billflow_usage.identifiers import CORRECTION_PREFIX
from billflow_usage.models import Metric, UsageEvent
from tests.factories import MetricFactory
from tests.reconcile.conftest import Account, ago, sync_exit

pytestmark = pytest.mark.django_db


def test_legacy_usage_is_never_compared_with_a_meter_nor_sent_again(
    account: Account, configure: Callable[..., None]
) -> None:
    """The account also has a meter under the legacy metric's event name (say, for a
    migration): its totals are empty, since usage records don't reach meters."""
    configure(METER_API="legacy")
    account.fake.create_meter("storage_gb", formula="sum")
    price = account.fake.create_price(usage_type="metered")["id"]
    MetricFactory(key="storage_gb", event_name="storage_gb", stripe_price_id=price)
    customer = account.customer()
    item = account.subscribe(customer, price=price)["items"]["data"][0]["id"]
    billflow_usage.record_usage("storage_gb", customer, 12, timestamp=ago(hours=3))

    first, _ = sync_exit("--apply", "--create-meters", "--metric", "storage_gb")
    second, code = sync_exit("--apply", "--create-meters", "--metric", "storage_gb")

    assert account.fake.usage_record_totals == {item: 12}
    assert first["delivery"]["delivered"] == 1
    for document in (first, second):
        assert document["meters"] == []
        [entry] = document["metered"]
        assert (entry["customer_id"], entry["status"], entry["action"]) == (
            customer,
            "skipped",
            "none",
        )
        assert "legacy" in entry["detail"]
    assert (code, second["summary"]["drift_remaining"]) == (0, 0)
    assert Metric.objects.get(key="storage_gb").stripe_meter_id == ""
    assert not UsageEvent.objects.filter(identifier__startswith=CORRECTION_PREFIX).exists()
    assert account.fake.request_count("/v1/billing/meters") == 0
