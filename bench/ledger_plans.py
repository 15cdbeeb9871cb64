"""The plans of the queries that read the usage table, on a ledger of millions of rows, with
the indexes before migration 0007 (the lean indexes) and after it (PostgreSQL;
docs/benchmarks.md shows them).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billflow_plans \\
        python -m bench.ledger_plans [rows]

The database is created by ``migrate``, filled once with ``generate_series`` (default 3,000,000
rows: 2,000 customers, 3 metrics, 60 days; 90% sent, 5% pending, 3% failed, 2% cancelled; 1% in
delivery groups; half with a source object), analysed, and explained at 0006 and at 0007.
Prints each query's plan at both, the planner's estimated cost and the time of one run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import django

QUERIES: dict[str, Callable[[], Any]] = {}


def query(name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    def register(build: Callable[[], Any]) -> Callable[[], Any]:
        QUERIES[name] = build
        return build

    return register


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from django.core.management import call_command

    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000
    call_command("migrate", verbosity=0)
    _fill(rows)
    _register_queries()
    plans = {}
    for target in ("0006", "0007"):
        call_command("migrate", "billflow_usage", target, verbosity=0)
        _analyse()
        plans[target] = {name: _explain(build()) for name, build in QUERIES.items()}
    for name in QUERIES:
        print(f"### {name}")
        for target in ("0006", "0007"):
            plan, took = plans[target][name]
            print(f"-- at {target} ({took * 1000:.1f} ms):\n{plan}\n")
    return 0


def _fill(rows: int) -> None:
    from django.db import connection

    from billflow_usage.models import DeliveryGroup, Metric, UsageEvent

    if UsageEvent.objects.count() >= rows:
        return
    UsageEvent.objects.all().delete()
    DeliveryGroup.objects.all().delete()
    metrics = [
        Metric.objects.get_or_create(key=f"plans-{n}", defaults={"display_name": f"m{n}"})[0].pk
        for n in range(3)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billflow_usage_deliverygroup "
            "(identifier, metric_id, customer_id, value, occurred_at, status, created_at) "
            "SELECT 'bfug_' || g, %s, 'cus_' || (g %% 2000), 1, now(), 'sent', now() "
            "FROM generate_series(1, 10000) g",
            [metrics[0]],
        )
        cursor.execute("SELECT min(id) FROM billflow_usage_deliverygroup")
        first_group = cursor.fetchone()[0]
        cursor.execute("SELECT id FROM django_content_type LIMIT 1")
        content_type = cursor.fetchone()[0]
        cursor.execute(
            """
            INSERT INTO billflow_usage_usageevent
              (metric_id, customer_id, value, occurred_at, identifier, source_content_type_id,
               source_object_id, livemode, status, attempts, next_attempt_at, claimed_until,
               group_id, last_error_code, last_error_message, sent_at, created_at)
            SELECT (ARRAY[%s, %s, %s])[1 + g %% 3], 'cus_' || (g %% 2000), 1 + g %% 7, at,
                   'bft_' || md5(g::text) || md5((g * 7)::text),
                   CASE WHEN g %% 2 = 0 THEN %s END, CASE WHEN g %% 2 = 0 THEN g::text ELSE '' END,
                   false, status, 1, at, NULL,
                   CASE WHEN g %% 100 = 0 THEN %s + (g / 100) %% 10000 END,
                   CASE status WHEN 'failed' THEN 'resource_missing' ELSE '' END, '',
                   CASE status WHEN 'sent' THEN at END, at
            FROM (
              SELECT g, now() - (g %% 86400) * interval '1 minute' AS at,
                     CASE WHEN g %% 100 < 90 THEN 'sent' WHEN g %% 100 < 95 THEN 'pending'
                          WHEN g %% 100 < 98 THEN 'failed' ELSE 'cancelled' END AS status
              FROM generate_series(1, %s) g
            ) s
            """,
            [*metrics, content_type, first_group, rows],
        )


def _analyse() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billflow_usage_usageevent")


def _explain(queryset: Any) -> tuple[str, float]:
    from django.db import transaction

    with transaction.atomic():  # the claim locks its rows
        started = time.perf_counter()
        list(queryset)
        took = time.perf_counter() - started
        return queryset.explain(), took


def _register_queries() -> None:
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import Count, Q
    from django.utils import timezone

    from billflow_usage.delivery.claim import _claimable
    from billflow_usage.identifiers import CORRECTION_PREFIX
    from billflow_usage.models import Metric, UsageEvent

    now = timezone.now()
    metric = Metric.objects.filter(key="plans-0").get()
    metrics = list(Metric.objects.filter(key__startswith="plans-"))
    customers = [f"cus_{n}" for n in range(500)]
    events = UsageEvent.objects

    query("claim: due pending events, oldest first (SKIP LOCKED)")(
        lambda: (
            events.filter(_claimable(now))
            .select_for_update(skip_locked=True)
            .order_by("next_attempt_at")[:1000]
        )
    )
    query("reconcile: one metric, 500 customers, the period (billflow_sync)")(
        lambda: (
            events.filter(metric=metric, customer_id__in=customers)
            .billed_between(now - timedelta(days=30), now)
            .filter(status=UsageEvent.Status.SENT)
            .usage()
            .order_by()
            .values("customer_id")
            .annotate(n=Count("pk"))
        )
    )
    query("usage page: one customer, every metric, the period (admin)")(
        lambda: (
            events.filter(customer_id="cus_7", status__in=["pending", "sent"])
            .usage()
            .billed_between(now - timedelta(days=30), now)
            .values_list("metric_id", "value")
        )
    )
    query("admin search: a customer ID or an identifier")(
        lambda: events.filter(Q(customer_id="cus_7") | Q(identifier="bft_x")).order_by("-pk")[:100]
    )
    query("admin filter: one metric, newest first")(
        lambda: events.filter(metric=metric).order_by("-pk")[:100]
    )
    query("failed rows of the metrics (billflow_sync's report)")(
        lambda: (
            events.filter(
                Q(metric__in=metrics) | Q(metric__isnull=True),
                status=UsageEvent.Status.FAILED,
                occurred_at__gte=now - timedelta(days=35),
            )
            .order_by()
            .values("customer_id", "metric_id")
            .annotate(n=Count("pk"))
        )
    )
    query("a delivery group's members (retry, cancel, marking)")(
        lambda: events.filter(group_id__in=[1, 2, 3])
    )
    query("a deleted object's usage (reverse_on_delete)")(
        lambda: events.filter(
            metric=metric,
            source_content_type=ContentType.objects.order_by("pk").first(),
            source_object_id="1000",
        )
    )
    query("an identifier (a repeated record_usage, the meter error webhook)")(
        lambda: events.filter(
            Q(group__isnull=True, identifier__in=["bft_a", "bft_b"])
            | Q(group__identifier__in=["bft_a"])
        )
    )
    query("corrections awaiting (billflow_sync)")(
        lambda: events.filter(metric=metric, customer_id__in=customers[:50]).filter(
            identifier__startswith=CORRECTION_PREFIX, status=UsageEvent.Status.PENDING
        )
    )
    query("a metric's rows (deleting a metric: PROTECT)")(
        lambda: events.filter(metric__in=[metric])[:1]
    )


if __name__ == "__main__":
    sys.exit(main())
