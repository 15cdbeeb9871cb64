"""What a metric lacks as declared, before Stripe is asked: shared by the system check
(``billflow_usage.W301``, ``W302``) and ``billflow_setup``."""

from __future__ import annotations

from dataclasses import dataclass

from billflow_usage.models import Metric

SETUP = "python manage.py billflow_setup"


@dataclass(frozen=True)
class Lack:
    id: str
    message: str
    fix: str


def price_fix(metric: Metric) -> str:
    return (
        f"store the Stripe price on the metric: in the admin (Usage billing > Metrics > "
        f'{metric.key}), or python manage.py shell -c "from billflow_usage.models import '
        f"Metric; Metric.objects.filter(key='{metric.key}').update(stripe_price_id='price_...')\""
    )


def declared_lacks(metric: Metric, *, legacy: bool) -> list[Lack]:
    """Why ``metric``'s usage can't reach an invoice as it is declared (empty: nothing)."""
    if not metric.active or metric.stripe_price_id:
        return []
    if not metric.is_metered:
        return [
            Lack(
                "billflow_usage.W301",
                f"Licensed metric {metric.key!r} has no Stripe price (stripe_price_id), so no "
                "subscription item is found for it and its seat counts never reach Stripe.",
                price_fix(metric),
            )
        ]
    if legacy:
        return [
            Lack(
                "billflow_usage.W302",
                f"Metered metric {metric.key!r} has no Stripe price (stripe_price_id): with "
                "METER_API 'legacy' its usage records go to the item of that price, so none "
                "can be sent.",
                price_fix(metric),
            )
        ]
    if not metric.stripe_meter_id:
        return [
            Lack(
                "billflow_usage.W302",
                f"Metered metric {metric.key!r} has neither a Stripe meter (stripe_meter_id) "
                "nor a price (stripe_price_id), so Stripe refuses its usage.",
                f"{SETUP} creates the meter and says what else is missing.",
            )
        ]
    return []
