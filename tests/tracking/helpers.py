"""Resolvers and declarations the tracking tests name by dotted path."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

import billflow_usage
from billflow_usage.models import UsageEvent
from tests.testapp.models import Member, Order


def workspace_customer(obj: Order | Member) -> str:
    return obj.workspace.stripe_customer_id


def active_members(customer_id: str) -> int:
    return Member.objects.filter(workspace__stripe_customer_id=customer_id, active=True).count()


def declare_order_trackers() -> None:
    """A ``BILLFLOW_USAGE["TRACKERS"]`` entry."""
    billflow_usage.track(Order, metric="orders", customer=workspace_customer)


def ledger() -> list[UsageEvent]:
    return list(UsageEvent.objects.order_by("id"))


def values() -> list[int]:
    return list(UsageEvent.objects.order_by("id").values_list("value", flat=True))


class RolledBack(Exception):
    pass


def rolled_back(work: Callable[[], object]) -> None:
    """Run ``work`` in an atomic block (a savepoint, when nested) that then fails."""
    try:
        with transaction.atomic():
            work()
            raise RolledBack
    except RolledBack:
        pass
