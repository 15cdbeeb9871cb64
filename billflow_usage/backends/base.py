"""The interface every delivery sink implements.

Backends take and return plain data: they never import models, the registry or the ledger,
so adding a sink (Lago, OpenMeter, Metronome) is one new module and the ledger never calls
the network. What only a sink knows is asked of its class, never of a module of it: how its
errors read (:meth:`BaseBackend.result_for_error`), its payloads
(:meth:`BaseBackend.parse_subscription`) and its settings (:meth:`BaseBackend.check`). The
rest of the app imports no backend module but this one (an import contract checks it).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from billflow_usage.conf import DEFAULTS, SETTINGS_NAME
from billflow_usage.redaction import redact

if TYPE_CHECKING:
    from django.core.checks import CheckMessage


@dataclass(frozen=True)
class MeterEvent:
    """One ledger row (or an aggregate of several) as the sink should receive it."""

    identifier: str
    event_name: str
    customer_id: str
    value: int
    timestamp: datetime
    #: Only the ``legacy`` usage-record API needs the customer's subscription item.
    subscription_item_id: str = ""
    #: Attempts already made, and the claim (a token) sending it now: sinks derive
    #: idempotency keys from both, so a retry after an error and a redo by another worker
    #: after a crash are new requests. A stored answer is only ever replayed to the claim it
    #: was given to, never one from before a fix (a meter reactivated, a customer created);
    #: the identifier is what keeps a resend from counting twice.
    attempt: int = 0
    claim: str = ""
    #: For sinks that keep one figure per customer, meter and second, which each request
    #: overwrites (:attr:`BaseBackend.sets_totals_per_second`): everything the ledger holds
    #: for this customer and meter at this event's whole second, already sent or in this
    #: request. None elsewhere (a caller that doesn't say sends ``value`` as that figure).
    second_total: int | None = None


@dataclass(frozen=True)
class QuantityPush:
    """Set a licensed subscription item's quantity (absolute, so a retry is harmless)."""

    subscription_item_id: str
    quantity: int
    proration_behavior: str
    idempotency_key: str


@dataclass(frozen=True)
class Cancellation:
    """Cancel a meter event Stripe received less than 24 hours ago."""

    event_name: str
    identifier: str


@dataclass(frozen=True)
class RemoteItem:
    """A subscription item as the sink reports it (reads for ``billflow_sync``)."""

    id: str
    price_id: str
    #: The meter of a metered price (``price.recurring.meter``), else "".
    meter_id: str = ""
    #: ``licensed`` or ``metered`` ("" for one-time prices).
    usage_type: str = ""
    #: None on metered items, which have no quantity.
    quantity: int | None = None
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None


@dataclass(frozen=True)
class RemoteSubscription:
    """A customer's subscription and its items."""

    id: str
    customer_id: str
    status: str
    items: tuple[RemoteItem, ...] = ()
    livemode: bool = False

    #: Statuses whose items still bill (``canceled`` and ``incomplete_expired`` don't).
    LIVE_STATUSES = frozenset({"active", "trialing", "past_due", "unpaid", "paused", "incomplete"})

    @property
    def live(self) -> bool:
        return self.status in self.LIVE_STATUSES


@dataclass(frozen=True)
class RemoteMeter:
    """A billing meter: what aggregates the events of one event name."""

    id: str
    event_name: str
    formula: str
    status: str = "active"
    display_name: str = ""


@dataclass(frozen=True)
class RemotePrice:
    """A price as the sink reports it (``billflow_setup`` checks each metric's)."""

    id: str
    #: ``licensed`` or ``metered`` ("" for one-time prices).
    usage_type: str = ""
    #: The meter of a metered price (``recurring.meter``), else "".
    meter_id: str = ""
    active: bool = True


@dataclass(frozen=True)
class UsageQuery:
    """A customer's aggregated usage on one meter over ``[start, end)`` (minute-aligned)."""

    meter_id: str
    event_name: str
    formula: str
    customer_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class UsageTotal:
    """The sink's aggregate for a :class:`UsageQuery`, and how many requests it took."""

    value: int
    requests: int = 1


class ReadNotSupported(NotImplementedError):
    """The backend can't answer this read; ``billflow_sync`` reports it and skips the step."""


class Outcome(StrEnum):
    DELIVERED = "delivered"
    #: Try again later (network, 5xx, 429, lock timeouts, expired sessions, and credentials
    #: the sink refused: see :data:`CREDENTIAL_CODES`).
    RETRY = "retry"
    #: Will not succeed as it is: keep the code and message for a human.
    FAILED = "failed"
    #: Never sent: the caller's deadline passed first (see :meth:`BaseBackend.within`).
    #: Nothing happened, so the rows are given back without counting an attempt.
    NOT_SENT = "not_sent"


#: Result codes (with :attr:`Outcome.RETRY`) saying the sink refused our credentials, not the
#: item: a key it doesn't know, revoked or missing (401), or a restricted key without the
#: permission (403). Nothing is wrong with the item and nothing goes through until the
#: credentials are fixed, so rows wait as in an outage without using up their attempts, and
#: every batch says so loudly. Sinks answer these codes with a message saying what to fix.
CREDENTIALS_REJECTED = "credentials_rejected"
PERMISSION_DENIED = "permission_denied"
CREDENTIAL_CODES = frozenset({CREDENTIALS_REJECTED, PERMISSION_DENIED})


@dataclass(frozen=True)
class Result:
    """What happened to one item; ``key`` is its identifier or subscription item ID."""

    key: str
    outcome: Outcome
    code: str = ""
    message: str = ""
    #: Seconds the sink asked us to wait before the next attempt, when it said.
    retry_after: float | None = None

    @property
    def rejects_credentials(self) -> bool:
        """The sink refused our credentials rather than this item."""
        return self.outcome == Outcome.RETRY and self.code in CREDENTIAL_CODES


class CredentialsRejected(Exception):
    """A read (``billflow_sync``, the admin) refused for our credentials: ``code`` is one of
    :data:`CREDENTIAL_CODES`, the message says what to fix. The same call succeeds once the
    credentials work."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BaseBackend(abc.ABC):
    """A sink for usage. One instance may serve many batches; ``close()`` releases it.

    Every backend takes ``timeout``, the seconds one request to the sink may take (None: the
    sink's own default; sinks that make no requests ignore it), and whatever options of its
    own it documents. :meth:`within` bounds calls by a deadline instead.
    """

    #: The sink takes one call at a time per customer and meter (Stripe's v1 meter events):
    #: workers then never hold events of the same customer and meter at once. Sinks without
    #: such a rule set it False, so workers claim freely and in parallel.
    one_call_per_customer_meter: bool = True
    #: The sink needs :attr:`MeterEvent.subscription_item_id` (legacy usage records); it is
    #: looked up for each batch only when this is True.
    needs_subscription_items: bool = True
    #: The sink has no identifier to deduplicate a resent event, and keeps one figure per
    #: customer, meter and second that a request overwrites (legacy usage records with
    #: ``action=set``): the engine then sends each second once per batch, carrying the whole
    #: second (:attr:`MeterEvent.second_total`), so a resend can never count twice.
    sets_totals_per_second: bool = False

    def __init__(self, *, timeout: float | None = None, **options: Any) -> None:
        self.timeout = timeout
        self.options = options

    # -- what only the sink knows, asked of its class ------------------------------------

    @classmethod
    def check(cls, **kwargs: Any) -> list[CheckMessage]:
        """System check messages about this sink's own configuration (credentials, address),
        run with the settings checks while it is the configured backend; like Django's
        ``Model.check()``. None by default."""
        return []

    @classmethod
    def result_for_error(cls, key: str, exc: Exception) -> Result:
        """Classify an exception a call on the item ``key`` raised instead of answering a
        :class:`Result` (a read, or a call of a sink that raises): credentials the sink
        refused, else "try again later" with the exception's type and redacted message.
        Sinks that can tell more from their own errors override it."""
        if isinstance(exc, CredentialsRejected):
            return Result(key, Outcome.RETRY, exc.code, exc.message)
        return Result(key, Outcome.RETRY, type(exc).__name__, redact(str(exc) or repr(exc)))

    @classmethod
    def meter_event_identifier(cls, name: str) -> str:
        """The meter event identifier a report of the sink names as ``name`` (for the Stripe
        backend, a request's idempotency key stands for the identifier it was made from);
        ``name`` itself by default."""
        return name

    @classmethod
    def parse_subscription(cls, data: Mapping[str, Any]) -> RemoteSubscription:
        """A subscription given as the sink's own JSON (for the Stripe backend: dj-stripe's
        webhook payloads and stored ``stripe_data``). Sinks that have no such payloads raise
        :class:`ReadNotSupported` (the default)."""
        raise cls._unsupported("read subscription payloads")

    @abc.abstractmethod
    def send_meter_events(self, events: Sequence[MeterEvent]) -> list[Result]:
        """Send events; return one Result per event, in any order, keyed by identifier."""

    @abc.abstractmethod
    def push_quantity(self, push: QuantityPush) -> Result:
        """Set a subscription item's quantity."""

    @abc.abstractmethod
    def cancel_meter_event(self, cancellation: Cancellation) -> Result:
        """Cancel a recently sent event."""

    def is_outage(self, result: Result) -> bool:
        """Whether ``result`` says the sink itself is unavailable (or refuses our
        credentials) rather than something about this event: rows waiting on such answers
        are retried as soon as the sink answers again (see ``delivery/recovery.py``). Sinks
        that can't tell more than the credentials answer this default."""
        return result.rejects_credentials

    def within(self, deadline: float | None) -> BaseBackend:
        """This sink with its calls bounded by ``deadline`` (a ``time.monotonic()`` instant;
        None: unbounded), for a caller that must not wait past it (the in-request attempt):
        no request starts after it (those events answer :attr:`Outcome.NOT_SENT`) and each
        request's timeout is capped by the time left. It shares this sink's connections;
        close this sink, not the view. Sinks that can't bound their calls return
        themselves (the default)."""
        return self

    def close(self) -> None:  # noqa: B027 - optional hook, most sinks hold nothing
        """Release connections or sessions."""

    # -- reads for reconciliation (billflow_sync); optional --------------------------------

    def list_subscriptions(self, customer_id: str | None = None) -> Iterator[RemoteSubscription]:
        """A customer's subscriptions that are not canceled (every customer's without one)."""
        raise self._unsupported("list subscriptions")

    def list_meters(self) -> list[RemoteMeter]:
        """Every billing meter, active or not."""
        raise self._unsupported("list meters")

    def create_meter(self, *, event_name: str, formula: str, display_name: str) -> RemoteMeter:
        """Create a billing meter for ``event_name`` aggregating with ``formula``."""
        raise self._unsupported("create meters")

    def retrieve_price(self, price_id: str) -> RemotePrice | None:
        """The price ``price_id``, or None when the sink has no such price."""
        raise self._unsupported("read prices")

    def usage_total(self, query: UsageQuery) -> UsageTotal:
        """A customer's usage on a meter over a minute-aligned period, as the sink bills it."""
        raise self._unsupported("read usage totals")

    def fetch_event(self, event_id: str) -> dict[str, Any]:
        """The full payload of a (thin) event, by ID."""
        raise self._unsupported("fetch events")

    @classmethod
    def _unsupported(cls, what: str) -> ReadNotSupported:
        return ReadNotSupported(
            f"{cls.__name__} cannot {what}; billflow_sync needs a backend that can: set "
            f"{SETTINGS_NAME}['BACKEND'] to one (the default, {DEFAULTS['BACKEND']!r}, can)."
        )
