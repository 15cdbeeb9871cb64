"""The identifiers the library makes: unique per installation (two databases on one Stripe
account never collide), under prefixes callers can't use, and never rewritten once stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.exceptions import InvalidUsage
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.reconcile.metered import Pair, _identifier
from billflow_usage.reconcile.metered_decision import Observed
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure
from tests.factories import MetricFactory, UsageEventFactory


def start_again_on_a_fresh_database() -> None:
    """What another tenant's database, or a staging database, is: the same schema, nothing in
    it (``flush`` runs ``post_migrate`` like ``migrate`` does)."""
    call_command("flush", interactive=False, verbosity=0)
    ContentType.objects.clear_cache()


@pytest.mark.django_db(transaction=True)
def test_delivery_groups_of_two_databases_on_one_stripe_account_never_collide(
    fake_stripe: FakeStripe, configure: Configure, customer: str
) -> None:
    """Both databases aggregate two events their callers named alike into one Stripe event."""
    configure(METER_API="v1", AGGREGATION_WINDOW=60)
    fake_stripe.create_meter("api_calls", formula="sum")
    closed_window = timezone.now() - timedelta(minutes=10)

    def two_orders() -> None:
        MetricFactory(key="api_calls", event_name="api_calls")
        billflow_usage.record_usage_bulk(
            billflow_usage.Usage("api_calls", customer, 3, closed_window, f"order-{n}")
            for n in (1, 2)
        )
        assert deliver_pending().delivered == 2

    two_orders()
    start_again_on_a_fresh_database()
    two_orders()

    assert fake_stripe.meter_event_total("api_calls", customer) == 12
    assert fake_stripe.duplicate_identifier_rejections == 0


@pytest.mark.django_db(transaction=True)
def test_sync_corrections_of_two_databases_never_collide() -> None:
    """The same drift (same customer, metric, period and totals) in two databases."""

    def correction() -> str:
        metric = MetricFactory(key="api_calls")
        period = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))
        pair = Pair("cus_A1", metric, "mtr_1", *period)
        return _identifier(pair, Observed(metric.aggregation, ledger=8, stripe=5), "correct", 0)

    first = correction()
    assert correction() == first  # deterministic: a re-run never doubles a correction
    start_again_on_a_fresh_database()

    assert correction() != first


@pytest.mark.django_db
@pytest.mark.parametrize("reserved", ["bfu_1", "bft_x", "bfug_abc", "bfu_sync_0"])
def test_callers_cannot_use_the_library_prefixes(metric: Metric, reserved: str) -> None:
    billflow_usage.record_usage(metric, "cus_A1", identifier="order-1")

    with pytest.raises(InvalidUsage, match=f"'{reserved}' starts with '"):
        billflow_usage.record_usage(metric, "cus_A1", identifier=reserved)
    with pytest.raises(InvalidUsage, match=r"usage #1: .* reserves"):
        billflow_usage.record_usage_bulk(
            [
                billflow_usage.Usage(metric, "cus_A1", identifier="order-2"),
                billflow_usage.Usage(metric, "cus_A1", identifier=reserved),
            ]
        )

    assert list(UsageEvent.objects.values_list("identifier", flat=True)) == ["order-1"]


@pytest.mark.django_db
def test_a_row_stored_before_the_upgrade_is_sent_under_its_stored_identifier(
    fake_stripe: FakeStripe, configure: Configure, api_calls: Metric, customer: str
) -> None:
    """Rows are never rewritten: an old tracker row (hashed without the namespace) that failed
    is retried under the identifier it has."""
    configure(METER_API="v1")
    old = "bft_" + "0" * 64
    UsageEventFactory(
        metric=api_calls, customer_id=customer, value=4, identifier=old, failed=True, attempts=3
    )
    UsageEvent.objects.filter(identifier=old).update(status=UsageEvent.Status.PENDING)

    assert deliver_pending().delivered == 1

    [sent] = fake_stripe.meter_events("api_calls", customer)
    assert (sent["identifier"], sent["value"]) == (old, 4)
