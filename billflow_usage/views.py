"""``meter_error_webhook``: the Event Destination endpoint for Stripe's meter error reports.

Add it to your URLconf and point a Stripe Event Destination (thin events
``v1.billing.meter.error_report_triggered`` and ``v1.billing.meter.no_meter_found``) at it,
with its signing secret in ``BILLFLOW_USAGE["METER_WEBHOOK_SECRET"]``::

    path("stripe/meter-errors/", billflow_usage.views.meter_error_webhook)

Checks run cheapest first, and a request is refused by the first that fails, before any
further work:

1. a signing secret is configured (else 503: nothing is accepted);
2. the ``Stripe-Signature`` matches (any of its ``v1`` signatures, compared in constant time)
   and was made at most ``METER_WEBHOOK_TOLERANCE`` seconds ago (300): an older request is
   a replay, refused with a 400;
3. the body is shaped like Stripe's event (400 naming the field otherwise);
4. the event was not applied already (one SELECT; a replay within the tolerance or Stripe's
   own duplicate delivery is answered 200 and changes nothing).

Refused requests cost no Stripe request and no database query (but step 4's). Then the thin
event's data is fetched from Stripe through the configured backend, and the event recorded
and its rows marked in one transaction (:func:`billflow_usage.webhooks.apply_once`).
"""

from __future__ import annotations

import json
import logging
import time

import stripe
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billflow_usage.backends import get_backend
from billflow_usage.checks import VALUE_RULES
from billflow_usage.conf import SETTINGS_NAME, billflow_settings
from billflow_usage.exceptions import MalformedEvent
from billflow_usage.meter_errors import ErrorReport, EventNotice, parse_notice, parse_report
from billflow_usage.webhooks import already_applied, apply_once

logger = logging.getLogger("billflow_usage")


@csrf_exempt
@require_POST
def meter_error_webhook(request: HttpRequest) -> HttpResponse:
    secret = billflow_settings.METER_WEBHOOK_SECRET
    if not secret:
        return HttpResponse(f"{SETTINGS_NAME}['METER_WEBHOOK_SECRET'] is not set.", status=503)
    tolerance = billflow_settings.METER_WEBHOOK_TOLERANCE
    is_valid, expected = VALUE_RULES["METER_WEBHOOK_TOLERANCE"]
    if not is_valid(tolerance):
        message = f"{SETTINGS_NAME}['METER_WEBHOOK_TOLERANCE'] must be {expected}."
        return HttpResponse(message, status=503)
    payload = request.body.decode("utf-8", errors="replace")
    header = request.headers.get("Stripe-Signature", "")
    refusal = _signature_refusal(payload, header, secret, tolerance)
    if refusal is not None:
        return _refuse(refusal)
    try:
        body = json.loads(payload)
        notice = parse_notice(body)
        if not notice.is_meter_error:
            return JsonResponse({"marked": 0, "ignored": True})
        report = None if notice.data is None else parse_report(body)
    except ValueError as exc:  # MalformedEvent, or not JSON
        problem = str(exc) if isinstance(exc, MalformedEvent) else "the body is not JSON"
        return _refuse(f"Malformed meter error event: {problem}.")
    if already_applied(notice.id):
        return _already_applied(notice)
    if report is None:
        fetched = _fetch(notice)
        if isinstance(fetched, HttpResponse):
            return fetched
        report = fetched
    marked = apply_once(report)
    if marked is None:
        return _already_applied(notice)
    return JsonResponse({"marked": marked})


def _signature_refusal(payload: str, header: str, secret: str, tolerance: float) -> str | None:
    """Why the request's signature is refused, or None.

    stripe-python compares every ``v1`` signature of the header in constant time; then the
    timestamp, which the signature covers, is read as it reads it (the first ``t=``).
    """
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret)
    except stripe.SignatureVerificationError:
        return "Invalid signature."
    fields = [item.split("=", 2) for item in header.split(",")]
    signed_at = int(next(field[1] for field in fields if field[0] == "t"))
    if time.time() - signed_at <= tolerance:
        return None
    return (
        f"The signature is older than {tolerance:g} seconds "
        f"({SETTINGS_NAME}['METER_WEBHOOK_TOLERANCE']): a replayed request. Stripe signs each "
        "of its retries anew: if its deliveries get this answer, check this server's clock."
    )


def _refuse(reason: str) -> HttpResponse:
    logger.warning("billflow_usage: meter error webhook refused a request: %s", reason)
    return HttpResponse(reason, status=400)


def _already_applied(notice: EventNotice) -> HttpResponse:
    logger.warning(
        "billflow_usage: meter error webhook ignored event %s, applied already (a duplicate "
        "delivery or a replay)",
        notice.id,
    )
    return JsonResponse({"marked": 0, "already_processed": True})


def _fetch(notice: EventNotice) -> ErrorReport | HttpResponse:
    """The thin event's full data from Stripe, or the 502 that makes Stripe deliver it again
    later (nothing was recorded)."""
    backend = get_backend()
    try:
        event = backend.fetch_event(notice.id)
    except Exception:
        logger.exception("billflow_usage: could not fetch meter error event %s", notice.id)
        return HttpResponse("Could not fetch the event; Stripe will retry.", status=502)
    finally:
        backend.close()
    try:
        return parse_report(event)
    except MalformedEvent as exc:
        logger.error(
            "billflow_usage: Stripe's meter error event %s is malformed: %s", notice.id, exc
        )
        return HttpResponse(f"Stripe's event is malformed: {exc}.", status=502)
