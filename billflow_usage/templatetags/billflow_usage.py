"""``{% load billflow_usage %}``: show customers their usage.

``{% usage_meter customer "api-calls" %}`` renders an HTML ``<meter>`` of the period's usage
against the customer's limit, labelled for screen readers, with the figures as text too.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from billflow_usage.customers import resolve_customer
from billflow_usage.metrics import get_metric
from billflow_usage.models import Metric
from billflow_usage.usage_limits.checking import status_in
from billflow_usage.usage_limits.usage import billing_period

register = template.Library()


@register.inclusion_tag("billflow_usage/usage_meter.html")
def usage_meter(customer: Any, metric: str) -> dict[str, Any]:
    found = get_metric(metric, kind=Metric.Kind.METERED)
    customer_id = resolve_customer(customer).id
    period = billing_period(found, customer_id, timezone.now())
    status = status_in(found, customer_id, period, 0)
    high = None
    if status.limit is not None and status.thresholds:
        high = status.limit * status.thresholds[0] // 100
    return {
        "name": str(found),
        "element_id": f"bfu-meter-{found.key}",
        "status": status,
        "high": high,
    }
