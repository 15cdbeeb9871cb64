"""The benchmarks' models: one order model saved three ways (untracked, tracked by
billflow_usage, tracked by django-simple-history), and workspaces whose members are seats."""

from django.db import models

try:
    from simple_history.models import HistoricalRecords
except ImportError:  # the bench extra isn't installed: hot_path says it skips the reference
    HistoricalRecords = None


class BenchOrder(models.Model):
    customer_id = models.CharField(max_length=64)
    amount = models.PositiveIntegerField(default=1)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class PlainOrder(BenchOrder):
    """Untracked."""


class TrackedOrder(BenchOrder):
    """Tracked by ``billflow_usage.track()`` while the hot path benchmark runs."""


if HistoricalRecords is not None:

    class HistoryOrder(BenchOrder):
        """Tracked by django-simple-history: a row in its history table per save."""

        history = HistoricalRecords()


class Workspace(models.Model):
    """A Stripe customer whose members are billed as seats."""

    stripe_customer_id = models.CharField(max_length=64, unique=True)

    def __str__(self) -> str:
        return self.stripe_customer_id


class Member(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="members")
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"member {self.pk} of {self.workspace_id}"
