"""``meter_error_webhook``: the Event Destination endpoint for Stripe's meter error reports.

Add it to your URLconf and point a Stripe Event Destination (thin events
``v1.billing.meter.error_report_triggered`` and ``v1.billing.meter.no_meter_found``) at it,
with its signing secret in ``BILLFLOW_USAGE["METER_WEBHOOK_SECRET"]``::

    path("stripe/meter-errors/", billflow_usage.views.meter_error_webhook)

The signature is verified (``Stripe-Signature``, 5 minutes tolerance); a thin event is fetched
from Stripe through the configured backend, then the named ledger rows are marked failed.
"""

from __future__ import annotations

import json
import logging

import stripe
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billflow_usage.backends import get_backend
from billflow_usage.conf import billflow_settings
from billflow_usage.webhooks import METER_ERROR_EVENTS, mark_meter_errors

logger = logging.getLogger("billflow_usage")


@csrf_exempt
@require_POST
def meter_error_webhook(request: HttpRequest) -> HttpResponse:
    secret = billflow_settings.METER_WEBHOOK_SECRET
    if not secret:
        return HttpResponse("BILLFLOW_USAGE['METER_WEBHOOK_SECRET'] is not set.", status=503)
    payload = request.body.decode("utf-8", errors="replace")
    try:
        stripe.WebhookSignature.verify_header(
            payload, request.headers.get("Stripe-Signature", ""), secret
        )
    except stripe.SignatureVerificationError:
        return HttpResponse("Invalid signature.", status=400)
    try:
        event = json.loads(payload)
    except ValueError:
        return HttpResponse("Invalid JSON.", status=400)
    if not isinstance(event, dict) or event.get("type") not in METER_ERROR_EVENTS:
        return JsonResponse({"marked": 0, "ignored": True})
    if "data" not in event:  # a thin event: fetch its data
        backend = get_backend()
        try:
            event = backend.fetch_event(str(event.get("id")))
        except Exception:
            logger.exception("billflow_usage: could not fetch meter error event")
            return HttpResponse("Could not fetch the event; Stripe will retry.", status=502)
        finally:
            backend.close()
    return JsonResponse({"marked": mark_meter_errors(event)})
