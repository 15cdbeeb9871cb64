"""``limited``: a view decorator that counts each request against a plan limit.

Over a hard limit the view does not run: the answer is a 429 with the IETF draft's
``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` headers (reset: seconds
until the billing period ends) and a JSON body saying which limit and when it resets. Under
it the view runs and its response gets the same headers. Sync and async views alike.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeAlias

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from billflow_usage.exceptions import LimitExceeded
from billflow_usage.ledger import record_usage
from billflow_usage.usage_limits.checking import LimitStatus, check_limit

CustomerOf: TypeAlias = Callable[[HttpRequest], Any]


def limited(
    metric: str, customer: CustomerOf, value: int = 1, *, record: bool = True
) -> Callable[[Any], Any]:
    """Count ``value`` units of ``metric`` for ``customer(request)`` per request.

    With ``record=True`` (the default) the units are recorded with ``enforce_limit=True``
    before the view runs (checked and recorded atomically). With ``record=False`` the
    request is only checked, for views whose usage a tracker records. A request whose
    ``customer(request)`` is None runs unlimited and uncounted.
    """

    def decorator(view: Any) -> Any:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                admitted = await sync_to_async(_admit)(request, metric, customer, value, record)
                if isinstance(admitted, HttpResponse):
                    return admitted
                return _with_headers(await view(request, *args, **kwargs), admitted)

            return async_wrapper

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            admitted = _admit(request, metric, customer, value, record)
            if isinstance(admitted, HttpResponse):
                return admitted
            return _with_headers(view(request, *args, **kwargs), admitted)

        return wrapper

    return decorator


def _admit(
    request: HttpRequest, metric: str, customer: CustomerOf, value: int, record: bool
) -> LimitStatus | HttpResponse | None:
    """The status to put in the headers once the view ran, or the 429 that replaces it."""
    who = customer(request)
    if who is None:
        return None
    if not record:
        status = check_limit(metric, who, value)
        return too_many(status) if status.refuses else status
    try:
        record_usage(metric, who, value, enforce_limit=True)
    except LimitExceeded as exc:
        return too_many(exc.status)
    return check_limit(metric, who, 0)


def too_many(status: LimitStatus) -> HttpResponse:
    response = JsonResponse(
        {
            "error": "usage_limit_exceeded",
            "detail": f"The {status.metric} limit of this billing period is used up.",
            "metric": status.metric,
            "limit": status.limit,
            "used": status.used,
            "resets_at": status.period_end.isoformat(),
        },
        status=429,
    )
    response["Retry-After"] = str(_reset_seconds(status))
    return _with_headers(response, status)


def _with_headers(response: HttpResponse, status: LimitStatus | None) -> HttpResponse:
    if status is None or status.limit is None:
        return response
    response["RateLimit-Limit"] = str(status.limit)
    response["RateLimit-Remaining"] = str(status.remaining)
    response["RateLimit-Reset"] = str(_reset_seconds(status))
    return response


def _reset_seconds(status: LimitStatus) -> int:
    return max(math.ceil((status.period_end - timezone.now()).total_seconds()), 0)
