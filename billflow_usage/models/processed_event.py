from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billflow_usage.models.limits import STRIPE_ID_MAX_LENGTH


class ProcessedMeterErrorEvent(models.Model):
    """A Stripe meter error event (``evt_...``) the webhook applied to the ledger.

    The unique ``event_id`` makes each event count once: a replayed or duplicate delivery
    finds its row and changes nothing, and of two deliveries racing, the second INSERT fails
    and takes its marking back with it. Rows are kept for :attr:`RETENTION` (Stripe retries a
    delivery for up to 3 days and serves an event for 30), then pruned a few at a time as
    new events are recorded.
    """

    RETENTION = timedelta(days=30)

    event_id = models.CharField(max_length=STRIPE_ID_MAX_LENGTH, unique=True)
    event_type = models.CharField(max_length=100)
    #: Stripe's ``created``: rows sent at or after it are not what the event is about.
    created_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("processed meter error event")

    def __str__(self) -> str:
        return f"{self.event_id} ({self.event_type}), processed {self.received_at:%Y-%m-%d %H:%M}"
