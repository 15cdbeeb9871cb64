"""A dry reconciliation of chosen customers from the admin: ``billflow_sync --dry-run
--customer ...``, stored as a ``SyncReport`` like every run and shown right away.

Nothing is written to Stripe, links or the ledger, but a report is stored and it reveals
billing figures, so it takes both permissions below (see ``can_reconcile``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from billflow_usage.models import SyncReport
from billflow_usage.reconcile import SyncOptions, run_sync
from billflow_usage.redaction import redact

logger = logging.getLogger("billflow_usage.admin")

#: Read the stored report, and act in billflow_sync's domain (subscription item links).
PERMISSIONS = ("billflow_usage.view_syncreport", "billflow_usage.change_subscriptionitemlink")
#: One run reads Stripe for each customer while the request waits; more belong in cron.
MAX_CUSTOMERS = 50


def can_reconcile(request: HttpRequest) -> bool:
    return request.user.has_perms(PERMISSIONS)


def dry_reconciliation(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, customer_ids: Iterable[str]
) -> HttpResponse | None:
    """Run it for ``customer_ids``, log it, and redirect to the stored report."""
    customers = sorted(set(customer_ids))
    if not customers:
        model_admin.message_user(
            request,
            "None of the selected objects has a Stripe customer: nothing to reconcile.",
            messages.WARNING,
        )
        return None
    if len(customers) > MAX_CUSTOMERS:
        model_admin.message_user(
            request,
            f"{len(customers)} customers selected; a dry reconciliation from the admin takes "
            f"at most {MAX_CUSTOMERS}. Select fewer, or run manage.py billflow_sync --dry-run.",
            messages.ERROR,
        )
        return None
    try:
        report = run_sync(SyncOptions(dry_run=True, customers=customers))
    except Exception as exc:
        detail = redact(f"{type(exc).__name__}: {exc}")
        logger.warning("Dry reconciliation from the admin failed: %s", detail)
        reports = reverse(f"{model_admin.admin_site.name}:billflow_usage_syncreport_changelist")
        model_admin.message_user(
            request,
            format_html(
                'The dry reconciliation failed ({}). See the <a href="{}">reconciliation '
                "reports</a>.",
                detail,
                reports,
            ),
            messages.ERROR,
        )
        return None
    assert report.report_id is not None  # run_sync stores the report before anything else
    row = SyncReport.objects.get(pk=report.report_id)
    model_admin.log_addition(
        request, row, f"Dry reconciliation from the admin for {', '.join(customers)}."
    )
    summary = report.summary()
    model_admin.message_user(
        request,
        f"Dry reconciliation of {len(customers)} customer(s), nothing changed: "
        f"{summary['metered_checked']} metered figure(s) checked, "
        f"{summary['metered_drift']} drifting; {summary['seats_drift']} seat count(s) "
        f"drifting; {summary['unbilled']} unbilled; {summary['errors']} error(s). "
        f"Stored as report #{row.pk}.",
        messages.WARNING if summary["drift_remaining"] or summary["errors"] else messages.SUCCESS,
    )
    return HttpResponseRedirect(
        reverse(f"{model_admin.admin_site.name}:billflow_usage_syncreport_change", args=[row.pk])
    )
