"""Input rules shared by the ledger API and the trackers (pure functions, no database)."""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from billflow_usage.exceptions import InvalidUsage
from billflow_usage.identifiers import reserved_prefix
from billflow_usage.models import Metric
from billflow_usage.models.limits import IDENTIFIER_MAX_LENGTH, MAX_VALUE

# Re-exported: Stripe's window, which the models need too (they can't import this module).
from billflow_usage.models.limits import STRIPE_HISTORY as STRIPE_HISTORY
from billflow_usage.redaction import described, excerpt, shown

#: Stripe rejects meter events timestamped further ahead than this.
MAX_FUTURE = timedelta(minutes=5)
#: The code of a row kept failed for being older than ``STRIPE_HISTORY`` (Stripe's own code
#: for such an event), whether the ledger or the delivery found it too old.
TOO_OLD_CODE = "timestamp_too_far_in_past"

#: What an identifier may contain. It is Stripe's meter event identifier and part of the
#: v1 request's ``Idempotency-Key`` header, which only carries printable ASCII (anything
#: else fails before the request is sent); space, quotes, commas, semicolons, backslashes
#: and angle brackets are left out too, being read as structure by headers and logs.
IDENTIFIER_CHARACTERS = "letters, digits and - _ . : / @ # + = ~ |"
IDENTIFIER_RE = re.compile(r"[A-Za-z0-9_.:/@#+=~|-]+")

WHOLE_NUMBER_HINT = "pass an int, or a Decimal or float with no fractional part"
#: ``MAX_VALUE``'s digits and bits: a number with more is too large, told without converting.
MAX_DIGITS = len(str(MAX_VALUE))
MAX_VALUE_BITS = MAX_VALUE.bit_length()


def whole_number(value: Any, *, name: str = "value", minimum: int | None = None) -> int:
    """Return ``value`` as an int, or raise InvalidUsage saying why it is not a billable one.

    The size is checked before any conversion, and only the base types' own operations run
    (a subclass's methods, or those of an object that is no number, are never called), so
    any value is answered at once: ``Decimal("1e1000000")`` would take minutes to convert.
    """
    if isinstance(value, bool):
        raise InvalidUsage(
            f"{name} must be a whole number, not a bool ({value!r}); {WHOLE_NUMBER_HINT}."
        )
    if isinstance(value, int):
        number = _bounded_int(int.__int__(value), name)
    elif isinstance(value, float):
        number = _float_int(float.__float__(value), name)
    elif isinstance(value, Decimal):
        number = _decimal_int(Decimal(value), name)
    else:
        raise InvalidUsage(
            f"{name} must be a whole number, got {described(value)}; {WHOLE_NUMBER_HINT}."
        )
    if minimum is not None and number < minimum:
        raise InvalidUsage(f"{name} must be at least {minimum}, got {number}.")
    return number


def _bounded_int(number: int, name: str) -> int:
    if number.bit_length() > MAX_VALUE_BITS or abs(number) > MAX_VALUE:
        raise _too_many_digits(number, name)
    return number


def _float_int(number: float, name: str) -> int:
    if not math.isfinite(number):
        raise _not_finite(number, name)
    if not number.is_integer():
        raise _fractional(number, name)
    if abs(number) > MAX_VALUE:
        raise _too_many_digits(number, name)
    return int(number)


def _decimal_int(number: Decimal, name: str) -> int:
    """Sized by its exponent (``adjusted()``, the power of ten of its first digit), which
    costs nothing, before it is compared or converted."""
    if not number.is_finite():
        raise _not_finite(number, name)
    if number.is_zero():
        return 0
    if number.adjusted() >= MAX_DIGITS:
        raise _too_many_digits(number, name)
    if number.adjusted() < 0 or number != number.to_integral_value():
        raise _fractional(number, name)
    return _bounded_int(int(number), name)


def _not_finite(value: float | Decimal, name: str) -> InvalidUsage:
    return InvalidUsage(
        f"{name} must be a finite whole number, got {shown(value)}; {WHOLE_NUMBER_HINT}."
    )


def _fractional(value: float | Decimal, name: str) -> InvalidUsage:
    return InvalidUsage(
        f"{name} must be a whole number, got {shown(value)} with a fractional part; "
        "Stripe bills whole units, so round it (or record a smaller unit) first."
    )


def _too_many_digits(value: int | float | Decimal, name: str) -> InvalidUsage:
    return InvalidUsage(
        f"{name} {shown(value)} has more than {MAX_DIGITS} digits, which Stripe rejects; "
        "split it into several events or bill a larger unit."
    )


def meter_value(value: Any, *, aggregation: str, legacy: bool) -> int:
    """Return ``value`` as an int Stripe bills as asked on a metric of ``aggregation``.

    A count meter counts every event as one, whatever its value, so it takes 1 only: a
    negative event would count one more, not one less. Legacy usage records (``legacy``)
    can't be negative.
    """
    number = whole_number(value)
    if aggregation == Metric.Aggregation.COUNT and number < 0:
        raise InvalidUsage(
            f"value {number} on a count metric: a count meter counts every event as one, so it "
            "can't take back usage with a negative event: cancel the event instead (the "
            "admin's cancel action, within Stripe's 24 hours), or credit the customer."
        )
    if aggregation == Metric.Aggregation.COUNT and number != 1:
        raise InvalidUsage(
            f"value {number} on a count metric: a count meter counts this event as one, "
            "whatever its value. Record one event per unit (value=1), record nothing when "
            "there is nothing to count, or bill amounts with a sum metric."
        )
    if legacy and number < 0:
        raise InvalidUsage(
            f"value {number}: legacy usage records can't be negative (METER_API is "
            "'legacy'); correct a period in Stripe instead (a credit note), or move to "
            "Billing Meters, which take negative corrections on sum meters."
        )
    return number


def identifier(value: Any) -> str:
    """Check a caller-supplied identifier: 1-100 characters (Stripe's limit) of
    :data:`IDENTIFIER_CHARACTERS`, not under one of the library's reserved prefixes."""
    if not isinstance(value, str):
        raise InvalidUsage(f"identifier must be a string, got {described(value)}.")
    text = str.__str__(value)  # what is checked is what is stored
    if len(text) > IDENTIFIER_MAX_LENGTH:
        raise InvalidUsage(
            f"identifier is {len(text)} characters long; Stripe allows at most "
            f"{IDENTIFIER_MAX_LENGTH}. Shorten it (e.g. hash the long part)."
        )
    if not text.strip():
        raise InvalidUsage("identifier must not be empty; omit it to have one generated.")
    if not IDENTIFIER_RE.fullmatch(text):
        position, character = next(
            (i, c) for i, c in enumerate(text) if not IDENTIFIER_RE.fullmatch(c)
        )
        raise InvalidUsage(
            f"identifier {excerpt(text)} has {_character_name(character)} at position "
            f"{position}; an identifier may only contain {IDENTIFIER_CHARACTERS}, since it is "
            "sent to Stripe in an HTTP header, which carries nothing else reliably. Replace "
            "that character, or hash the part that has it (e.g. hashlib.sha256)."
        )
    prefix = reserved_prefix(value)
    if prefix is not None:
        raise InvalidUsage(
            f"identifier {text!r} starts with {prefix!r}, which billflow_usage reserves for "
            "the identifiers it makes itself, so yours could collide with one of them. Use "
            "another prefix (e.g. 'order-42'), or omit identifier to have one generated."
        )
    return text


def _character_name(character: str) -> str:
    """How an error message names a character: escaped, and by its Unicode name."""
    name = unicodedata.name(character, "")
    return f"{character!a} ({name})" if name else ascii(character)


def timestamp(value: Any, *, now: datetime | None = None, legacy: bool = False) -> datetime:
    """Check that a usage timestamp is an aware datetime no more than 5 minutes ahead (not
    ahead at all for ``legacy`` usage records)."""
    if not isinstance(value, datetime):
        raise InvalidUsage(
            f"timestamp must be a timezone-aware datetime, got {described(value)}; pass one "
            "such as django.utils.timezone.now(), or parse text into one first."
        )
    if timezone.is_naive(value):
        raise InvalidUsage(
            f"timestamp {value.isoformat()} is naive (no timezone), so the moment it names is "
            "ambiguous; use django.utils.timezone.now() or attach a tzinfo."
        )
    now = now or timezone.now()
    if value > now + MAX_FUTURE:
        raise InvalidUsage(
            f"timestamp {value.isoformat()} is more than 5 minutes in the future "
            f"(now is {now.isoformat()}); Stripe rejects such events. Check the clock or "
            "the timezone you built it with."
        )
    if legacy and value > now:
        raise InvalidUsage(
            f"timestamp {value.isoformat()} is after now ({now.isoformat()}), and legacy usage "
            "records can't be in the future (METER_API is 'legacy'); record it once it has "
            "happened, or leave timestamp out."
        )
    return value


def too_old_for_stripe(value: datetime, *, now: datetime | None = None) -> bool:
    return value < (now or timezone.now()) - STRIPE_HISTORY


def too_old_message(occurred_at: datetime, *, now: datetime) -> str:
    """The message of a row kept failed with :data:`TOO_OLD_CODE`."""
    days = STRIPE_HISTORY.days
    return (
        f"occurred_at {occurred_at.isoformat()} is more than {days} days before "
        f"{now.isoformat()}, and Stripe only accepts meter events from the past {days} days: "
        "it is kept in the ledger and never sent. Bill it with an invoice item or a credit "
        "note instead."
    )
