from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class SyncReport(models.Model):
    """One run of ``manage.py billflow_sync``: what was checked, found and changed.

    ``report`` holds the machine-readable report (the ``--json`` output, schema in
    :mod:`billflow_usage.reconcile.report`) with each list capped (its ``left_out`` counts
    what was dropped); ``summary`` its full counts and ``changes`` what the run wrote (links,
    meters, ledger corrections, Stripe cancellations), capped the same way, for the admin.
    """

    class Mode(models.TextChoices):
        DRY_RUN = "dry_run", _("Dry run (nothing changed)")
        CHECK = "check", _("Check (links refreshed, pending delivered)")
        APPLY = "apply", _("Apply (drift repaired)")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    options = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    summary = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    report = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    changes = models.JSONField(default=list, encoder=DjangoJSONEncoder)
    drift_remaining = models.PositiveIntegerField(default=0)
    error_message = models.TextField(blank=True)

    class Meta:
        verbose_name = _("sync report")
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(mode__in=["dry_run", "check", "apply"]),
                name="bfu_syncreport_mode_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["running", "completed", "failed"]),
                name="bfu_syncreport_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"billflow_sync {self.mode} at {self.started_at:%Y-%m-%d %H:%M} ({self.status})"
