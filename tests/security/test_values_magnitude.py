"""A value is refused by its size before any conversion: no hostile number stalls a worker,
and no error message spells one out."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import billflow_usage
from billflow_usage import validation
from billflow_usage.exceptions import InvalidUsage
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.models.limits import MAX_VALUE
from tests.factories import OrderFactory
from tests.testapp.models import Order
from tests.tracking.helpers import workspace_customer

#: CPU seconds one refusal may take: generous for a loaded CI machine, and still about a
#: thousand times below what the worst of them took before the size was checked first.
BOUND = 0.05
#: Wall-clock seconds the child process gets for all of them (Decimal("1e1000000") alone
#: took 96 to 122 s of CPU before).
CHILD_TIMEOUT = 30

#: Source of the values the child process tries (``eval``-ed there, built outside the clock).
HOSTILE = [
    'Decimal("1e1000000")',
    'Decimal("-1e1000000")',
    'Decimal("9e999999")',
    'Decimal("1e-1000000")',
    'Decimal("1." + "0" * 200000 + "1")',
    'Decimal("9" * 200000)',
    "10 ** 100000",
    "-(10 ** 5000)",
    "2 ** 4_000_000",
    "float('1e308')",
    "-float('inf')",
    "'9' * 1_000_000",
    "b'1' * 1_000_000",
    "[1] * 1_000_000",
]

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from decimal import Decimal
    import django
    django.setup()
    from billflow_usage import record_usage
    from billflow_usage.exceptions import InvalidUsage
    from billflow_usage.models import Metric

    # An unsaved metric: the value is refused before any query, so no database is needed.
    metric = Metric(key="api_calls", kind="metered", aggregation="sum", active=True)
    for source in json.loads(sys.argv[1]):
        value = eval(source)
        started = time.process_time()
        try:
            record_usage(metric, "cus_A1", value)
        except InvalidUsage as exc:
            outcome, message = "InvalidUsage", str(exc)
        except Exception as exc:
            outcome, message = type(exc).__name__, str(exc)
        else:
            outcome, message = "accepted", ""
        took = time.process_time() - started
        print(json.dumps([source, outcome, took, len(message), message[:200]]), flush=True)
    """
)


def test_hostile_values_are_refused_fast_in_a_child_process() -> None:
    """Each value in a child process with a time limit, so a regression fails the test
    instead of hanging the suite."""
    root = Path(__file__).resolve().parents[2]  # this checkout's code, not an installed one
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(root)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(HOSTILE)],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            env=env,
            cwd=root,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        finished = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout
        pytest.fail(f"still refusing after {CHILD_TIMEOUT} s; finished: {finished!r}")
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [source for source, *_ in results] == HOSTILE
    for source, outcome, took, length, message in results:
        assert outcome == "InvalidUsage", (source, outcome, message)
        assert took < BOUND, (source, took)
        assert length < 400, (source, message)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (10**5000, "value (a whole number of about 5001 digits) has more than 15 digits"),
        (-(10**5000), "value (a whole number of about 5001 digits) has more than 15 digits"),
        (2**100, "value 1267650600228229401496703205376 has more than 15 digits"),
        (Decimal("1e1000000"), "value (a number of 1000001 digits) has more than 15 digits"),
        (Decimal("-1e400"), "value (a number of 401 digits) has more than 15 digits"),
        (Decimal("1e-1000000"), "got 1e-1000000 with a fractional part"),
        (Decimal("1." + "0" * 100 + "1"), "got about 1.0000000000000000000 with a fractional"),
        (float("1e308"), "value 1e+308 has more than 15 digits"),
    ],
    ids=[
        "int",
        "negative-int",
        "int-128-bits",
        "Decimal",
        "negative-Decimal",
        "tiny-Decimal",
        "long-Decimal",
        "float",
    ],
)
def test_a_number_too_large_is_named_by_its_size(value: Any, said: str) -> None:
    with pytest.raises(InvalidUsage) as raised:
        validation.whole_number(value)

    assert said in str(raised.value)
    assert len(str(raised.value)) < 400


def test_text_is_named_by_its_start() -> None:
    with pytest.raises(InvalidUsage) as raised:
        validation.whole_number("9" * 1_000_000)

    assert "got str '9999" in str(raised.value)
    assert "(1000000 characters)" in str(raised.value)
    assert len(str(raised.value)) < 400


class Hostile:
    """An object that does something (here: records the call) whenever it is asked to be a
    number or text."""

    calls: list[str] = []

    def _called(self, name: str) -> Any:
        Hostile.calls.append(name)
        raise AssertionError(f"{name} was called")

    def __int__(self) -> int:
        return self._called("__int__")

    def __index__(self) -> int:
        return self._called("__index__")

    def __float__(self) -> float:
        return self._called("__float__")

    def __repr__(self) -> str:
        return self._called("__repr__")

    def __str__(self) -> str:
        return self._called("__str__")

    def __format__(self, spec: str) -> str:
        return self._called("__format__")

    def __eq__(self, other: object) -> bool:
        return self._called("__eq__")

    __hash__ = None  # type: ignore[assignment]


class HostileInt(int):
    """An int whose own methods lie; only int's should be used."""

    def __abs__(self) -> int:
        raise AssertionError("__abs__ was called")

    def __gt__(self, other: object) -> bool:
        raise AssertionError("__gt__ was called")

    def __lt__(self, other: object) -> bool:
        raise AssertionError("__lt__ was called")

    def __repr__(self) -> str:
        raise AssertionError("__repr__ was called")

    def __str__(self) -> str:
        raise AssertionError("__str__ was called")

    def __int__(self) -> int:
        raise AssertionError("__int__ was called")

    def __index__(self) -> int:
        raise AssertionError("__index__ was called")

    def bit_length(self) -> int:
        raise AssertionError("bit_length was called")


class HostileDecimal(Decimal):
    def adjusted(self) -> int:
        raise AssertionError("adjusted was called")

    def as_tuple(self) -> Any:
        raise AssertionError("as_tuple was called")

    def __repr__(self) -> str:
        raise AssertionError("__repr__ was called")


class HostileFloat(float):
    def __float__(self) -> float:
        raise AssertionError("__float__ was called")

    def __abs__(self) -> float:
        raise AssertionError("__abs__ was called")

    def __repr__(self) -> str:
        raise AssertionError("__repr__ was called")


def test_an_object_that_is_not_a_number_is_refused_without_calling_its_methods() -> None:
    Hostile.calls.clear()

    with pytest.raises(InvalidUsage, match="got Hostile object"):
        validation.whole_number(Hostile())

    assert Hostile.calls == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (HostileInt(7), 7),
        (HostileDecimal("8"), 8),
        (HostileFloat(9.0), 9),
    ],
    ids=["int", "Decimal", "float"],
)
def test_a_number_subclass_is_read_through_its_base_type(value: Any, expected: int) -> None:
    number = validation.whole_number(value)

    assert (number, type(number)) == (expected, int)


@pytest.mark.parametrize(
    "value",
    [HostileInt(10**15), HostileDecimal("1e20"), HostileFloat(1e20), HostileInt(-1)],
    ids=["int", "Decimal", "float", "negative"],
)
def test_a_number_subclass_is_refused_through_its_base_type(value: Any) -> None:
    with pytest.raises(InvalidUsage):
        validation.whole_number(value, minimum=0)


def test_an_int_enum_is_its_int() -> None:
    class Size(IntEnum):
        LARGE = 3

    assert type(validation.whole_number(Size.LARGE)) is int


#: Every kind of value a caller might pass: numbers of any size (Decimals with any exponent
#: Python's context takes quickly to build), text, bools, None, containers and objects.
values = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**5000), max_value=10**5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.builds(
        lambda sign, digits, exponent: Decimal((sign, digits, exponent)),
        st.integers(0, 1),
        st.lists(st.integers(0, 9), min_size=1, max_size=40).map(tuple),
        st.integers(-20000, 20000),
    ),
    st.text(max_size=30),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.builds(Hostile),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values)
def test_any_value_is_a_bounded_int_or_refused_fast(value: Any) -> None:
    started = time.process_time()
    try:
        number: int | None = validation.whole_number(value)
    except InvalidUsage as exc:
        number, message = None, str(exc)
    took = time.process_time() - started

    assert took < BOUND
    if number is None:
        assert len(message) < 400
    else:
        assert type(number) is int
        assert -MAX_VALUE <= number <= MAX_VALUE
        assert number == value
        assert not isinstance(value, bool | str)


# -- every way in --------------------------------------------------------------------------

HUGE = [10**5000, Decimal("1e5000")]


@pytest.mark.django_db
@pytest.mark.parametrize("huge", HUGE, ids=["int", "Decimal"])
def test_record_usage_bulk_and_set_quantity_refuse_them(
    metric: Metric, seats: Metric, huge: Any
) -> None:
    with pytest.raises(InvalidUsage, match=r"usage #1: value \(a .*digits\) has more than 15"):
        billflow_usage.record_usage_bulk(
            [
                billflow_usage.Usage(metric, "cus_A1", 1),
                billflow_usage.Usage(metric, "cus_A1", huge),
            ]
        )
    with pytest.raises(InvalidUsage, match=r"quantity \(a .*digits\) has more than 15"):
        billflow_usage.set_quantity(seats, "cus_A1", huge)

    assert not UsageEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("on", ["create", "update"])
@pytest.mark.parametrize("huge", HUGE, ids=["int", "Decimal"])
def test_a_trackers_value_keeps_a_failed_row_saying_why(
    tracker_registry, metric: Metric, on: str, huge: Any
) -> None:
    """On an update the value is part of the derived identifier: it is checked before it is
    turned into text there."""
    tracker_registry.track(
        Order, metric=metric.key, customer=workspace_customer, value=lambda o: huge, on=(on,)
    )
    order = OrderFactory()
    if on == "update":
        order.quantity = 2
        order.save()

    [row] = UsageEvent.objects.all()
    assert (row.status, row.last_error_code, row.value) == ("failed", "tracker_error", 0)
    assert "InvalidUsage: value (a " in row.last_error_message
    assert "5001 digits) has more than 15 digits" in row.last_error_message


@pytest.mark.django_db
def test_a_delta_too_large_keeps_a_failed_row(tracker_registry, metric: Metric) -> None:
    """(PostgreSQL's integer column can't hold a change of 16 digits: SQLite only.)"""
    if connection.vendor == "postgresql":
        pytest.skip("the quantity column can't hold 2**62 on PostgreSQL")
    tracker_registry.track(
        Order,
        metric=metric.key,
        customer=workspace_customer,
        delta="quantity",
        on=("create", "update"),
    )
    order = OrderFactory(quantity=1)
    UsageEvent.objects.all().delete()

    order.quantity = 2**62
    order.save()

    [row] = UsageEvent.objects.all()
    assert (row.status, row.last_error_code) == ("failed", "tracker_error")
    assert "more than 15 digits" in row.last_error_message
    assert str(2**62 - 1) in row.last_error_message


def test_floats_and_decimals_at_the_bounds() -> None:
    assert validation.whole_number(float(MAX_VALUE)) == MAX_VALUE
    assert validation.whole_number(Decimal(-MAX_VALUE)) == -MAX_VALUE
    assert validation.whole_number(Decimal("1E+14")) == 10**14
    assert validation.whole_number(Decimal("-0")) == 0
    assert validation.whole_number(Decimal("5.000")) == 5
    for refused in (float(MAX_VALUE + 1), Decimal(MAX_VALUE + 1), Decimal("sNaN"), math.inf):
        with pytest.raises(InvalidUsage):
            validation.whole_number(refused)
