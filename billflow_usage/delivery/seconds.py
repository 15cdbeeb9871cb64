"""Usage for sinks without identifiers: one absolute figure per customer, meter and second.

Legacy usage records carry no identifier, so a resend after an indeterminate answer (a lost
response, a 500 Stripe stored after the record was made) would count twice under a new
idempotency key, while the same key replays a stored 500 for 24 hours. But Stripe keeps one
quantity per subscription item and timestamp, and ``action=set`` overwrites it. So each
request sets a whole second: everything the ledger holds for that customer and metric at
that second, already sent or in this request. Sending it again, under any key, sets the same
figure: a retry never counts twice, and a new key per attempt is safe.

Within a batch, the items of one second are merged into one request (their rows get its
result together). Negative rows can't be sent as usage records and fail before sending.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.db.models import Sum
from django.db.models.functions import TruncSecond

from billflow_usage.backends.base import MeterEvent, Outcome, Result
from billflow_usage.delivery.arrays import one_of
from billflow_usage.delivery.claimed import Outcomes
from billflow_usage.models import UsageEvent

if TYPE_CHECKING:
    from billflow_usage.delivery.sending import Item

NEGATIVE_CODE = "usage_record_negative"

Second = tuple[str, int, int]  # (customer_id, metric_id, unix second)


def by_second(items: Iterable[Item], *, using: str) -> tuple[list[Item], Outcomes]:
    """One item per (customer, metric, second), carrying the second's whole figure; and the
    outcomes of rows that can't be sent this way."""
    merged: dict[Second, Item] = {}
    refused: Outcomes = []
    for item in items:
        if item.event.value < 0:
            refused.append((item.members, _negative(item.event)))
            continue
        first = item.members[0]
        key = (first.customer_id, first.metric_id, _second(item.event.timestamp))
        if key in merged:
            same = merged[key]
            same.members = [*same.members, *item.members]
            same.event = replace(same.event, value=same.event.value + item.event.value)
        else:
            merged[key] = item
    sent = _sent(merged, using)
    for key, item in merged.items():
        item.event = replace(item.event, second_total=sent.get(key, 0) + item.event.value)
    return list(merged.values()), refused


def _sent(seconds: Iterable[Second], using: str) -> dict[Second, int]:
    """What the ledger already sent at each of ``seconds``, by the time Stripe files it (a
    delivery group's for aggregated rows)."""
    keys = set(seconds)
    if not keys:
        return {}
    stamps = [second for _, _, second in keys]
    rows = (
        UsageEvent.objects.using(using)
        .filter(
            one_of("customer_id", {customer for customer, _, _ in keys}, using),
            metric_id__in={metric for _, metric, _ in keys},
            status=UsageEvent.Status.SENT,
        )
        .billed_between(_moment(min(stamps)), _moment(max(stamps) + 1))
        .annotate(second=TruncSecond("billed_at"))
        .values_list("customer_id", "metric_id", "second")
        .annotate(total=Sum("value"))
    )
    totals = {
        (customer, metric, _second(second)): total for customer, metric, second, total in rows
    }
    return {key: total for key, total in totals.items() if key in keys}


def _second(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(second: int) -> datetime:
    return datetime.fromtimestamp(second, tz=UTC)


def _negative(event: MeterEvent) -> Result:
    return Result(
        event.identifier,
        Outcome.FAILED,
        NEGATIVE_CODE,
        f"Legacy usage records can't be negative ({event.value}), so it was not sent: correct "
        "the period with a credit note, or move the price to a Billing Meter, which takes "
        "negative events.",
    )
