"""The customer-facing JSON usage view behind ``billflow_usage.urls`` (``usage/<metric>/``).

It answers for the customer of the signed-in user, found by the callable that
``BILLFLOW_USAGE["CUSTOMER_FOR_REQUEST"]`` names: used, limit, remaining, the billing
period and the usage of each UTC day of it so far. Reads only, from the ledger.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET

from billflow_usage.conf import SETTINGS_NAME, billflow_settings
from billflow_usage.customers import resolve_customer
from billflow_usage.exceptions import InvalidUsage
from billflow_usage.metrics import get_metric
from billflow_usage.models import Metric
from billflow_usage.usage_limits.checking import status_in
from billflow_usage.usage_limits.usage import billing_period, daily_usage

logger = logging.getLogger("billflow_usage.limits")


@require_GET
def usage_view(request: HttpRequest, metric: str) -> JsonResponse:
    path = billflow_settings.CUSTOMER_FOR_REQUEST
    if not path:
        return _error(
            503,
            "not_configured",
            f"{SETTINGS_NAME}['CUSTOMER_FOR_REQUEST'] is not set: name a callable that "
            "returns the request's customer.",
        )
    customer = import_string(path)(request)
    if customer is None:
        return _error(403, "no_customer", "This request has no customer to show usage of.")
    try:
        found = get_metric(metric, kind=Metric.Kind.METERED)
        customer_id = resolve_customer(customer).id
    except InvalidUsage as exc:
        return _error(404, "unknown_metric", str(exc))
    return JsonResponse(_payload(found, customer_id))


def _payload(metric: Metric, customer_id: str) -> dict[str, Any]:
    now = timezone.now()
    period = billing_period(metric, customer_id, now)
    status = status_in(metric, customer_id, period, 0)
    days = daily_usage(metric, customer_id, period)
    return {
        "metric": metric.key,
        "name": str(metric),
        "used": status.used,
        "limit": status.limit,
        "remaining": status.remaining,
        "kind": status.kind,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "daily": [
            {"date": day.isoformat(), "value": days.get(day, 0)} for day in period.days(until=now)
        ],
    }


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)
