from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from billflow_usage.models import Metric, UsageEvent
from tests.factories import MetricFactory, UsageEventFactory

#: The suite's instant for these tests: Stripe's window ends on 2026-05-11 (35 days back).
NOW = "2026-06-15T12:00:00Z"
CUSTOMER = "cus_Prune"


def at(text: str) -> datetime:
    """An instant written ``"04-02 10:00"`` in 2026, UTC."""
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def row(metric: Metric, when: str, value: int = 1, **traits: Any) -> UsageEvent:
    """A ledger row of ``CUSTOMER`` (``sent`` unless another trait is given)."""
    fields: dict[str, Any] = {"customer_id": CUSTOMER, **traits}
    if not {"pending", "failed", "cancelled", "claimed"} & set(traits):
        fields["sent"] = True
    event: UsageEvent = UsageEventFactory(
        metric=metric, occurred_at=at(when), value=value, **fields
    )
    return event


@pytest.fixture
def metrics(db) -> dict[str, Metric]:
    return {
        formula: MetricFactory(key=f"prune-{formula}", aggregation=formula)
        for formula in Metric.Aggregation.values
    }
