"""The example SaaS: workspaces pay per member (seats) and per API call (metered)."""

from django.db import models
from django.utils import timezone


class Workspace(models.Model):
    """A customer account; dj-stripe links it to a Stripe customer (its subscriber)."""

    name = models.CharField(max_length=100)
    email = models.EmailField()

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    """A seat: every active member of a workspace is billed."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="members")
    email = models.EmailField()
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.email


class ApiCall(models.Model):
    """One served API request: each is one unit of the "api-calls" meter."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_calls")
    endpoint = models.CharField(max_length=200)
    #: When the call was served: what its usage is stamped with (the demo backdates calls).
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.endpoint} ({self.workspace})"
