"""The RabbitMQ broker of the tests that run real Celery workers, and a queue of each test's own
(a test run never takes another's tasks, nor leaves a queue behind)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from celery import Celery

BROKER_URL = os.environ.get("BILLFLOW_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def broker() -> Iterator[Celery]:
    """A Celery app on the test's own RabbitMQ queue (``conf.task_default_queue``), to watch
    the workers; the queue (and its exchange) is deleted afterwards. Not made the current app:
    the test process enqueues nothing. Without a broker the test is skipped, saying why,
    except under CI (``CI`` set)."""
    app = Celery("billflow_usage_test_control", broker=BROKER_URL, set_as_current=False)
    app.conf.task_default_queue = f"bfu-test-{uuid.uuid4().hex[:12]}"
    try:
        with app.connection_for_write() as probe:
            probe.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        app.close()
        reason = f"needs RabbitMQ at {BROKER_URL} (BILLFLOW_TEST_BROKER_URL): {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; .ci/run starts it")  # CI must run this test, not skip it
        pytest.skip(reason)
    yield app
    with app.connection_for_write() as cleanup:
        cleanup.default_channel.queue_delete(app.conf.task_default_queue)
        cleanup.default_channel.exchange_delete(app.conf.task_default_queue)
    app.close()
