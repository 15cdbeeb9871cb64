"""A miniature SaaS: workspaces (dj-stripe subscribers), their members (seats) and orders."""

from django.db import models


class Workspace(models.Model):
    name = models.CharField(max_length=100)
    email = models.EmailField(blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="members")
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="orders")
    quantity = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"order {self.pk}"
