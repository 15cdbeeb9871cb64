"""Record usage as a web process does, with ``DELIVERY = "celery"``: each committed
transaction enqueues one ``deliver_usage`` task (``transaction.on_commit``).

``python -m tests.faults.celery_producer TRANSACTIONS PER_TRANSACTION METRIC,... CUSTOMER...``
with the settings of :mod:`tests.faults.celery_settings`: the metrics must exist. Values are 1
to 5, metrics and customers taken in turn.
"""

from __future__ import annotations

import sys
import time

import django

#: Between transactions, so commits keep coming while the workers drain.
PAUSE = 0.05


def produce(transactions: int, per_transaction: int, metrics: list[str], customers: list[str]):
    from django.db import transaction

    import billflow_usage
    import tests.faults.celery_app  # noqa: F401 (the app that delay() sends through)

    n = 0
    for _ in range(transactions):
        with transaction.atomic():
            for _ in range(per_transaction):
                metric = metrics[n % len(metrics)]
                customer = customers[n // len(metrics) % len(customers)]
                billflow_usage.record_usage(metric, customer, n % 5 + 1)
                n += 1
        time.sleep(PAUSE)


if __name__ == "__main__":
    django.setup()
    count, size, names, *ids = sys.argv[1:]
    produce(int(count), int(size), names.split(","), ids)
