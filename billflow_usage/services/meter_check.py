"""Does each metered metric's Stripe meter exist, is it active, and does it count the events
the metric sends? Checked against the backend's ``list_meters()``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from billflow_usage.backends.base import RemoteMeter
from billflow_usage.models import Metric
from billflow_usage.services.backend_access import describe_failure, request_backend


@dataclass(frozen=True)
class MeterCheck:
    ok: bool
    message: str


class MetersUnavailable(Exception):
    """Stripe's meters could not be listed; the message says why."""


def stripe_meters() -> list[RemoteMeter]:
    """Every meter of the Stripe account (one request per 100 meters)."""
    try:
        with request_backend() as backend:
            return backend.list_meters()
    except Exception as exc:
        raise MetersUnavailable(
            f"Could not check the meters: {describe_failure(exc).message}"
        ) from None


def check_meter(metric: Metric, meters: Sequence[RemoteMeter]) -> MeterCheck:
    """What Stripe has for ``metric``, and what is wrong with it if anything."""
    if not metric.is_metered:
        return MeterCheck(True, "Seat metrics have no meter: Stripe bills the item's quantity.")
    event_name = metric.meter_event_name
    if not metric.stripe_meter_id:
        found = [m for m in meters if m.event_name == event_name and m.status == "active"]
        if found:
            return MeterCheck(
                False,
                f"No meter ID stored; Stripe's active meter {found[0].id} counts "
                f"'{event_name}' events: run manage.py billflow_setup to store it.",
            )
        return MeterCheck(
            False,
            f"No meter in Stripe counts '{event_name}' events: create one with "
            "manage.py billflow_setup.",
        )
    meter = next((m for m in meters if m.id == metric.stripe_meter_id), None)
    if meter is None:
        return MeterCheck(
            False,
            f"Stripe has no meter {metric.stripe_meter_id}: fix the meter ID, or clear it and "
            "run manage.py billflow_setup to find the meter by event name.",
        )
    problems = []
    if meter.status != "active":
        problems.append(f"it is {meter.status}, so Stripe refuses its events: reactivate it")
    if meter.event_name != event_name:
        problems.append(
            f"it counts '{meter.event_name}' events but the metric sends '{event_name}'"
        )
    if meter.formula != metric.aggregation:
        problems.append(
            f"it aggregates with '{meter.formula}' but the metric says '{metric.aggregation}'"
        )
    if problems:
        return MeterCheck(False, f"Meter {meter.id}: " + "; ".join(problems) + ".")
    return MeterCheck(
        True,
        f"Meter {meter.id} exists in Stripe, is active and counts '{event_name}' events "
        f"({meter.formula}).",
    )
