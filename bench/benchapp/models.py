"""Two identical models: one tracked by billflow_usage, one not."""

from django.db import models


class TrackedOrder(models.Model):
    customer_id = models.CharField(max_length=64)
    amount = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"tracked order {self.pk}"


class PlainOrder(models.Model):
    customer_id = models.CharField(max_length=64)
    amount = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"plain order {self.pk}"
