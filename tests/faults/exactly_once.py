"""The promise every fault test ends with: Stripe bills exactly what the ledger holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

from django.db.models.functions import Coalesce

from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe


class LedgerRow(NamedTuple):
    customer_id: str
    value: int
    status: str
    #: The identifier Stripe received the row under: its delivery group's when aggregated.
    sent_as: str


def ledger_rows(metric: Metric) -> list[LedgerRow]:
    """The metric's ledger, read through the ORM."""
    rows = UsageEvent.objects.filter(metric=metric).values_list(
        "customer_id", "value", "status", Coalesce("group__identifier", "identifier")
    )
    return [LedgerRow(*row) for row in rows]


def assert_billed_exactly_once(
    fake: FakeStripe, event_name: str, rows: Sequence[LedgerRow]
) -> None:
    """Every row sent; per customer, the fake's total equals the ledger's; each identifier
    the ledger sent was accepted exactly once, and nothing else was."""
    assert Counter(row.status for row in rows) == {"sent": len(rows)}
    ledger = Counter[str]()
    for row in rows:
        ledger[row.customer_id] += row.value
    billed = {customer: fake.meter_event_total(event_name, customer) for customer in ledger}
    assert billed == dict(ledger)
    accepted = [event["identifier"] for event in fake.meter_events(event_name)]
    duplicates = [identifier for identifier, n in Counter(accepted).items() if n > 1]
    assert duplicates == []
    assert set(accepted) == {row.sent_as for row in rows}
