"""What ``track()`` and ``track_quantity()`` take, typed once: the registry's overloads, its
implementation and the trackers all use these.

A type checker reads them through ``Unpack``; at run time a missing or unknown option is a
``TypeError`` at the call (:meth:`Signature.require`), as for any function, while a bad *value* is
reported by the system checks (``billflow_usage.E101``...), since declarations run at import
time and must never break it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypedDict

#: What a tracker records: an object's creation, its updates, its deletion.
Action = Literal["create", "update", "delete"]
#: A number billed as it is: an int, or a Decimal or float with no fraction.
Number = int | float | Decimal

# Every function below may also be given as the dotted path "package.module.function" to
# one, imported on first use. ``Any`` is the tracked model's instance.


class _Declared(TypedDict):
    #: The key of the Metric billed.
    metric: str
    #: ``customer(instance)``: a ``cus_...`` ID, a dj-stripe ``Customer``, a dj-stripe
    #: subscriber, or None to record nothing for this object.
    customer: Callable[[Any], object] | str


class TrackOptions(_Declared, total=False):
    """The options of ``track()`` (metered metrics); ``metric`` and ``customer`` are needed."""

    #: A whole number (default 1), or ``value(instance)`` returning one (None skips).
    value: Number | Callable[[Any], Number | None] | str
    #: Any of the actions, or one (default ``("create",)``).
    on: Action | Collection[Action]
    #: ``when(instance, created)``: record only when it returns true.
    when: Callable[[Any, bool], object] | str | None
    #: ``timestamp(instance)``: when the usage happened (default: when it was saved).
    timestamp: Callable[[Any], datetime | None] | str | None
    #: ``identifier(instance)``: the object's own idempotency key (None: its pk is used).
    identifier: Callable[[Any], str | None] | str | None
    #: A numeric field whose change is recorded instead of ``value``.
    delta: str | None
    #: Deleting the object undoes what it billed, instead of recording a delete.
    reverse_on_delete: bool


class TrackQuantityOptions(_Declared):
    """The options of ``track_quantity()`` (licensed metrics): all three are needed."""

    #: ``quantity(customer_id)``: the customer's seat count, a whole number >= 0.
    quantity: Callable[[str], int] | str


@dataclass(frozen=True)
class Signature:
    """The options a declaring function takes (its TypedDict's keys), checked at run time."""

    function: str
    required: frozenset[str]
    optional: frozenset[str]

    def require(self, given: Mapping[str, object]) -> None:
        """Raise ``TypeError`` for an option the function doesn't take, or one it needs."""
        known = self.required | self.optional
        unknown = sorted(set(given) - known)
        if unknown:
            raise TypeError(
                f"{self.function}() got an unexpected keyword argument {unknown[0]!r}; it "
                f"takes {', '.join(sorted(known))}."
            )
        missing = sorted(self.required - set(given))
        if missing:
            raise TypeError(
                f"{self.function}() missing required keyword argument(s): "
                f"{', '.join(map(repr, missing))}."
            )


TRACK = Signature("track", TrackOptions.__required_keys__, TrackOptions.__optional_keys__)
TRACK_QUANTITY = Signature(
    "track_quantity",
    TrackQuantityOptions.__required_keys__,
    TrackQuantityOptions.__optional_keys__,
)
