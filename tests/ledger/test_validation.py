"""Each input rule of the ledger, checked without a database."""

import math
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billflow_usage import validation
from billflow_usage.customers import customer_id
from billflow_usage.exceptions import InvalidUsage


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1),
        (0, 0),
        (-5, -5),
        (3.0, 3),
        (Decimal("7"), 7),
        (Decimal("7.000"), 7),
        (10**15 - 1, 10**15 - 1),
        (-(10**15 - 1), -(10**15 - 1)),
    ],
)
def test_whole_numbers_accepted(value, expected):
    assert validation.whole_number(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "not a bool"),
        (False, "not a bool"),
        (1.5, "fractional part"),
        (Decimal("2.25"), "fractional part"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        (Decimal("NaN"), "finite"),
        ("3", "got str '3'"),
        (None, "got NoneType"),
        (10**15, "more than 15 digits"),
        (-(10**15), "more than 15 digits"),
        (Decimal("1e15"), "more than 15 digits"),
    ],
)
def test_bad_values_rejected_with_reason(value, message):
    with pytest.raises(InvalidUsage, match=message):
        validation.whole_number(value)


def test_minimum_enforced():
    with pytest.raises(InvalidUsage, match="at least 0, got -1"):
        validation.whole_number(-1, name="quantity", minimum=0)


@pytest.mark.parametrize("good", ["a", "x" * 100, "order-42:create"])
def test_identifiers_accepted(good):
    assert validation.identifier(good) == good


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 101, "101 characters"),
        (42, "must be a string"),
    ],
)
def test_bad_identifiers_rejected(bad, message):
    with pytest.raises(InvalidUsage, match=message):
        validation.identifier(bad)


def test_timestamp_rules():
    now = timezone.now()
    assert validation.timestamp(now + timedelta(minutes=4, seconds=59), now=now)
    assert validation.timestamp(now - timedelta(days=400), now=now)
    with pytest.raises(InvalidUsage, match="more than 5 minutes in the future"):
        validation.timestamp(now + timedelta(minutes=5, seconds=1), now=now)
    with pytest.raises(InvalidUsage, match="naive"):
        validation.timestamp(datetime(2026, 1, 1, 12, 0), now=now)
    with pytest.raises(InvalidUsage, match="timezone-aware datetime"):
        validation.timestamp(1767225600, now=now)


def test_stripe_history_window():
    now = timezone.now()
    assert validation.too_old_for_stripe(now - timedelta(days=35, seconds=1), now=now)
    assert not validation.too_old_for_stripe(now - timedelta(days=34), now=now)


@pytest.mark.parametrize("bad", ["", "cus_", "cust_123", "sub_123", "cus_12 3", "cus_ab-c", 123])
def test_customer_ids(bad):
    assert customer_id("cus_NffrFeUfNV2Hib") == "cus_NffrFeUfNV2Hib"
    with pytest.raises(InvalidUsage, match="not a Stripe customer ID"):
        customer_id(bad)
