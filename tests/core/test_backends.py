import io
from datetime import UTC, datetime

import pytest

from billflow_usage.backends import get_backend, locmem
from billflow_usage.backends.base import (
    BaseBackend,
    Cancellation,
    MeterEvent,
    Outcome,
    QuantityPush,
)
from billflow_usage.backends.console import ConsoleBackend
from billflow_usage.backends.locmem import LocMemBackend

EVENT = MeterEvent("e-1", "orders", "cus_A", 3, datetime(2026, 11, 1, tzinfo=UTC))
PUSH = QuantityPush("si_1", 5, "none", "si_1:v2")


def test_get_backend_uses_setting(settings):
    settings.BILLFLOW_USAGE = {"BACKEND": "billflow_usage.backends.console.ConsoleBackend"}
    assert isinstance(get_backend(), ConsoleBackend)
    assert isinstance(get_backend("billflow_usage.backends.locmem.LocMemBackend"), LocMemBackend)


def test_interface_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        BaseBackend()  # type: ignore[abstract]


def test_locmem_keeps_what_it_would_send(usage_outbox):
    backend = LocMemBackend()
    [result] = backend.send_meter_events([EVENT])
    assert (result.key, result.outcome) == ("e-1", Outcome.DELIVERED)
    assert backend.push_quantity(PUSH).outcome == Outcome.DELIVERED
    backend.cancel_meter_event(Cancellation("orders", "e-1"))
    assert usage_outbox == [EVENT, PUSH, Cancellation("orders", "e-1")]
    assert usage_outbox is locmem.outbox


def test_outbox_is_emptied_between_tests_part_one():
    LocMemBackend().send_meter_events([EVENT])
    assert len(locmem.outbox) == 1


def test_outbox_is_emptied_between_tests_part_two():
    assert locmem.outbox == []


def test_console_prints_one_line_per_item():
    stream = io.StringIO()
    backend = ConsoleBackend(stream=stream)
    backend.send_meter_events([EVENT, EVENT])
    backend.push_quantity(PUSH)
    backend.cancel_meter_event(Cancellation("orders", "e-1"))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "meter event e-1: orders +3 for cus_A at 2026-11-01T00:00:00+00:00"
    assert lines[2] == "quantity si_1 = 5 (proration: none)"
    assert lines[3] == "cancel e-1 (orders)"
