"""A meter error report finds rows by their own identifier or their delivery group's, through
the indexes: never a scan of the whole ledger."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.utils import timezone

from billflow_usage.models import DeliveryGroup, UsageEvent
from billflow_usage.webhooks import _named, mark_meter_errors
from tests.factories import UsageEventFactory
from tests.reconcile.test_webhooks import error_report

pytestmark = pytest.mark.django_db


def grouped(identifier: str, members: int, metric: object) -> list[UsageEvent]:
    group = DeliveryGroup.objects.create(
        identifier=identifier,
        metric=metric,
        customer_id="cus_Grouped",
        value=members,
        occurred_at=timezone.now(),
    )
    return UsageEventFactory.create_batch(members, metric=metric, group=group, sent=True)


def test_rows_are_found_by_their_own_identifier_and_by_their_group(metric: object) -> None:
    alone = UsageEventFactory(metric=metric, identifier="alone", sent=True)
    members = grouped("group-1", 3, metric)
    # Named by its own identifier while Stripe knows it by its group's: not this row.
    member_named_alone = members[0].identifier
    UsageEventFactory(metric=metric, identifier="unnamed", sent=True)

    named = ["alone", "group-1", member_named_alone]
    found = set(UsageEvent.objects.filter(_named(named, "default")).values_list("pk", flat=True))

    assert found == {alone.pk, *(m.pk for m in members)}
    assert mark_meter_errors(error_report("group-1")) == 3
    assert DeliveryGroup.objects.get(identifier="group-1").status == DeliveryGroup.Status.FAILED


def test_no_group_named_still_finds_rows_by_their_own_identifier(metric: object) -> None:
    alone = UsageEventFactory(metric=metric, identifier="alone", sent=True)

    found = list(UsageEvent.objects.filter(_named(["alone"], "default")).values_list("pk"))

    assert found == [(alone.pk,)]


def test_the_lookup_scans_no_part_of_the_ledger(metric: object) -> None:
    """With sequential scans priced out, a query that can't use an index still shows one."""
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's plan; run with DATABASE_URL=postgres://... to include it")
    UsageEventFactory.create_batch(5, metric=metric, sent=True)
    grouped("group-1", 2, metric)
    rows = UsageEvent.objects.filter(_named(["test-event-0", "group-1"], "default"))

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = rows.explain()

    assert "Seq Scan" not in plan, plan
