"""Is each metric's Stripe price the kind that bills it: licensed for a seat metric,
metered on the metric's own meter for a metered one (a meterless metered price only with
``METER_API = "legacy"``)?"""

from __future__ import annotations

from billflow_usage.backends.base import RemotePrice
from billflow_usage.models import Metric
from billflow_usage.services.setup.declared import price_fix


def price_problem(
    metric: Metric, price: RemotePrice | None, *, meter_id: str, legacy: bool
) -> str | None:
    """What is wrong with ``price`` as ``metric``'s price, or None when it bills it."""
    if price is None:
        return f"Stripe has no price {metric.stripe_price_id}."
    if not price.active:
        return f"Price {price.id} is archived in Stripe: new subscriptions can't use it."
    if not metric.is_metered:
        if price.usage_type != "licensed":
            return (
                f"Price {price.id} is {price.usage_type or 'not recurring'}, but a seat metric "
                "needs a licensed (per-unit, recurring) price whose quantity is set."
            )
        return None
    if price.usage_type != "metered":
        return (
            f"Price {price.id} is {price.usage_type or 'not recurring'}, but a metered metric "
            "needs a metered price."
        )
    if legacy:
        return None
    if not price.meter_id:
        return (
            f"Price {price.id} is metered without a meter: Stripe bills only meter events "
            "through a meter (usage records need METER_API 'legacy')."
        )
    if meter_id and price.meter_id != meter_id:
        return (
            f"Price {price.id} bills meter {price.meter_id}, but the metric's usage goes to "
            f"meter {meter_id}: none of it would be invoiced."
        )
    return None


def price_ok(metric: Metric, price: RemotePrice) -> str:
    if not metric.is_metered:
        return f"Price {price.id} is licensed: billflow_usage sets its items' quantity."
    on = f" on meter {price.meter_id}" if price.meter_id else ""
    return f"Price {price.id} is metered{on}."


def wrong_price_fix(metric: Metric) -> str:
    kind = "a licensed price" if not metric.is_metered else "a metered price on its meter"
    return f"make {kind} in Stripe, then {price_fix(metric)}"
