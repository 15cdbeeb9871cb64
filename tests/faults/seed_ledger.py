"""Record usage into the ledger that worker subprocesses drain, from a process of their own.

``python -m tests.faults.seed_ledger EVENT_NAME EVENTS CUSTOMER...`` with the worker settings:
creates the tables a fresh SQLite file lacks (existing ones are kept), a metered metric for
``EVENT_NAME``, and ``EVENTS`` usage events spread over the customers (values 1 to 5).
"""

from __future__ import annotations

import sys

import django


def seed(event_name: str, events: int, customers: list[str]) -> None:
    from django.core.management import call_command

    import billflow_usage
    from billflow_usage.models import Metric

    call_command("migrate", run_syncdb=True, verbosity=0)
    metric = Metric.objects.create(key=event_name, event_name=event_name)
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage(metric, customers[n % len(customers)], n % 5 + 1)
        for n in range(events)
    )


if __name__ == "__main__":
    django.setup()
    name, count, *ids = sys.argv[1:]
    seed(name, int(count), ids)
