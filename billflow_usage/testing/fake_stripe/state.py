"""The in-memory store: every collection the fake keeps, guarded by one lock.

Handlers run with ``lock`` held and mutate these collections directly; nothing in here takes
the lock itself except ``reset``, ``dump``, ``load`` and the small helpers named for it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .clock import Clock

JSON = dict[str, Any]
Key = tuple[str, str]  # (event_name, customer)

DUMP_FORMAT = 3
# What a dump keeps: Stripe's objects and what was billed. Request logs, sessions, rate-limit
# windows and concurrency peaks describe one run of the server and start afresh.
DUMPED_COLLECTIONS = (
    "customers",
    "products",
    "prices",
    "meters",
    "active_meters",
    "subscriptions",
    "items",
    "error_reports",
    "error_reports_emitted",
    "v2_events",
    "quantity_updates",
    "usage_records",
)


@dataclass(slots=True)
class MeterEvent:
    """One accepted meter event (slots: benchmarks keep millions)."""

    identifier: str
    event_name: str
    meter: str
    customer: str
    value: int
    timestamp: int
    created: float
    source: str
    cancelled: bool = False

    def as_dict(self) -> JSON:
        """A plain copy for the inspection API."""
        return {
            "identifier": self.identifier,
            "event_name": self.event_name,
            "meter": self.meter,
            "customer": self.customer,
            "value": self.value,
            "timestamp": self.timestamp,
            "created": self.created,
            "source": self.source,
        }


class RequestRecord(NamedTuple):
    """One API request as the fake saw it; ``status`` 0 means no answer was sent."""

    method: str
    path: str
    route: str | None
    status: int
    fault: str | None


@dataclass
class State:
    """Everything the fake remembers between requests."""

    clock: Clock
    lock: threading.Lock = field(default_factory=threading.Lock)
    customers: dict[str, JSON] = field(default_factory=dict)
    products: dict[str, JSON] = field(default_factory=dict)
    prices: dict[str, JSON] = field(default_factory=dict)
    meters: dict[str, JSON] = field(default_factory=dict)
    active_meters: dict[str, str] = field(default_factory=dict)  # event_name -> meter id
    subscriptions: dict[str, JSON] = field(default_factory=dict)
    items: dict[str, JSON] = field(default_factory=dict)
    events_by_identifier: dict[str, MeterEvent] = field(default_factory=dict)
    events_by_key: defaultdict[Key, list[MeterEvent]] = field(
        default_factory=lambda: defaultdict(list)
    )
    duplicate_identifier_rejections: int = 0
    duplicate_identifiers_ignored: int = 0
    error_reports: list[JSON] = field(default_factory=list)
    #: How many of ``error_reports`` were turned into v2 events already.
    error_reports_emitted: int = 0
    #: v2 events (meter error reports) by id, as ``GET /v2/core/events/{id}`` serves them.
    v2_events: dict[str, JSON] = field(default_factory=dict)
    sessions: dict[str, float] = field(default_factory=dict)  # token -> expires_at
    quantity_updates: list[JSON] = field(default_factory=list)
    quantity_update_times: defaultdict[str, deque[float]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    seat_rate_limit_hits: list[JSON] = field(default_factory=list)
    #: Legacy usage: item -> unix timestamp (as text, as JSON keeps it) -> quantity.
    usage_records: dict[str, dict[str, int]] = field(default_factory=dict)
    request_log: list[RequestRecord] = field(default_factory=list)
    in_flight: defaultdict[Key, int] = field(default_factory=lambda: defaultdict(int))
    max_concurrency: dict[Key, int] = field(default_factory=dict)

    def now(self) -> int:
        """The fake clock in whole seconds, as Stripe timestamps are."""
        return int(self.clock.now())

    def reset(self) -> None:
        """Forget everything (the clock is reset by its owner)."""
        self._become(State(self.clock, self.lock))

    def _become(self, other: State) -> None:
        """Take every collection of ``other`` at once."""
        with self.lock:
            for name in self.__dataclass_fields__:
                if name not in ("clock", "lock"):
                    setattr(self, name, getattr(other, name))

    def dump(self) -> str:
        """Stripe's objects and meter events as JSON text, for ``load``."""
        with self.lock:
            data: JSON = {name: getattr(self, name) for name in DUMPED_COLLECTIONS}
            data["meter_events"] = [
                dataclasses.asdict(ev) for events in self.events_by_key.values() for ev in events
            ]
            return json.dumps({"format": DUMP_FORMAT, **data})

    def load(self, text: str) -> None:
        """Replace everything with what ``dump`` wrote, sharing objects as when they were made.

        Raises ValueError saying what is wrong when ``text`` is not such a dump.
        """
        loaded = State(self.clock, self.lock)
        try:
            data = json.loads(text)
            if data["format"] != DUMP_FORMAT:
                raise ValueError(f"format {data['format']!r}, expected {DUMP_FORMAT}")
            for name in DUMPED_COLLECTIONS:
                setattr(loaded, name, data[name])
            for sub in loaded.subscriptions.values():  # a subscription lists its item dicts
                sub["items"]["data"] = [loaded.items[item["id"]] for item in sub["items"]["data"]]
            events = [MeterEvent(**fields) for fields in data["meter_events"]]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"not a fake Stripe state dump ({exc!r})") from None
        for ev in sorted(events, key=lambda ev: ev.created):  # a reused identifier: the latest
            loaded.events_by_identifier[ev.identifier] = ev
            loaded.events_by_key[(ev.event_name, ev.customer)].append(ev)
        self._become(loaded)

    def enter_flight(self, key: Key) -> None:
        """Count a meter-event request for ``key`` as in flight; remember the peak."""
        with self.lock:
            count = self.in_flight[key] + 1
            self.in_flight[key] = count
            if count > self.max_concurrency.get(key, 0):
                self.max_concurrency[key] = count

    def exit_flight(self, key: Key) -> None:
        """The request for ``key`` has been answered."""
        with self.lock:
            self.in_flight[key] -= 1

    def log_request(self, record: RequestRecord) -> None:
        """Append to the request log (list.append is atomic; no lock needed)."""
        self.request_log.append(record)
