"""Fault injection: per-route plans of errors, latency, dropped answers and outages.

A rule fires on the next ``times`` matching requests, on a random ``rate`` of them (drawn from
a seeded ``random.Random``), or on every matching request when neither is given. Latency rules
add up; of the other kinds at most one fires per request: counted rules first, then a single
draw against the rate rules' stacked probabilities, so 20% 5xx plus 5% 429 really is 25%
faulted.

Most faults strike before the endpoint runs (a load balancer's 503, a dropped connection), so
Stripe keeps nothing under the idempotency key. The ``stored_error`` kinds strike once the
endpoint began executing, which Stripe remembers: the 5xx is stored under the key and replayed
to every retry with it for 24 hours. They are chosen separately, only for requests that reach
the endpoint (not for replays).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from typing import Any

#: The endpoint failed without effect / took effect and then failed; the 5xx is stored.
STORED_ERROR = "stored_error"
STORED_ERROR_AFTER_EFFECT = "stored_error_after_effect"
STORED_KINDS = (STORED_ERROR, STORED_ERROR_AFTER_EFFECT)
KINDS = ("status", "drop_after_processing", "latency", "outage", *STORED_KINDS)


@dataclass
class FaultRule:
    """One configured fault; see :meth:`Faults.add` for the fields."""

    kind: str
    route: str = "*"
    method: str | None = None
    times: int | None = None
    rate: float | None = None
    status: int = 500
    should_retry: bool | None = None
    code: str | None = None
    latency: tuple[float, float] = (0.0, 0.0)

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule covers the request (``route`` is an fnmatch pattern)."""
        return (self.method is None or self.method == method) and (
            self.route == "*" or fnmatchcase(path, self.route)
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON form, as accepted by :meth:`Faults.configure`."""
        return asdict(self)

    @property
    def name(self) -> str:
        """How counters and the request log name it: ``status_503``, ``stored_error_500``."""
        if self.kind == "status" or self.kind in STORED_KINDS:
            return f"{self.kind}_{self.status}"
        return self.kind


@dataclass(frozen=True)
class Decision:
    """What to do to one request."""

    delay: float = 0.0
    status: FaultRule | None = None
    drop: bool = False
    outage: bool = False


NO_FAULT = Decision()


class Faults:
    """The fault plan of one fake; thread-safe."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._rng = random.Random(seed)
        self._release = threading.Event()
        self.counters: Counter[str] = Counter()

    def add(
        self,
        kind: str,
        *,
        route: str = "*",
        method: str | None = None,
        times: int | None = None,
        rate: float | None = None,
        status: int | None = None,
        should_retry: bool | None = None,
        code: str | None = None,
        latency: float | tuple[float, float] | list[float] = 0.0,
    ) -> FaultRule:
        """Add a rule.

        ``kind``: ``status`` (answer ``status`` instead of handling: 5xx is an ``api_error``
        with ``Stripe-Should-Retry: true`` unless ``should_retry`` is False; 429 is a rate
        limit with error ``code`` (default ``rate_limit``, e.g. ``lock_timeout``) and
        ``Stripe-Should-Retry`` only when ``should_retry`` is set), ``drop_after_processing``
        (handle and store, then close the socket unanswered), ``latency`` (sleep ``latency``
        seconds, or uniformly within a ``(low, high)`` range), ``outage`` (close the
        connection without handling), ``stored_error`` (the endpoint fails without effect
        and its 5xx ``status`` is stored under the idempotency key) or
        ``stored_error_after_effect`` (the endpoint's change takes effect, then a 5xx is
        stored: the indeterminate case Stripe warns about). ``route`` is an fnmatch pattern
        on the path, ``method`` an optional HTTP method.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {KINDS}")
        if times is not None and rate is not None:
            raise ValueError("give either times or rate, not both")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if status is None:
            status = 500
        elif kind in STORED_KINDS:
            if not 500 <= status <= 599:
                raise ValueError(f"a {kind} fault stores a 5xx: status must be 500 to 599")
        elif kind != "status" or not (status == 429 or 500 <= status <= 599):
            raise ValueError("status applies to kind 'status' and must be 429 or 5xx")
        low, high = (latency, latency) if isinstance(latency, int | float) else latency
        if not 0.0 <= low <= high:
            raise ValueError("latency must be a non-negative number or (low, high) range")
        rule = FaultRule(
            kind,
            route,
            method.upper() if method else None,
            times,
            rate,
            status,
            should_retry,
            code,
            (float(low), float(high)),
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def configure(self, spec: Mapping[str, Any]) -> list[FaultRule]:
        """Add rules from JSON: ``{"seed": 7, "faults": [{"kind": ..., ...}, ...]}`` or one
        rule object; the same fields as :meth:`add`."""
        if "seed" in spec:
            self.seed(int(spec["seed"]))
        raw = spec.get("faults", [spec] if "kind" in spec else [])
        if not isinstance(raw, list):
            raise ValueError("faults must be a list of fault objects")
        return [self.add(**rule) for rule in raw]

    def seed(self, seed: int) -> None:
        """Restart the random sequence, for reproducible runs."""
        with self._lock:
            self._seed = seed
            self._rng.seed(seed)

    def clear(self) -> None:
        """Remove every rule and cut short requests sleeping in injected latency."""
        with self._lock:
            self._rules.clear()
            self._release.set()
            self._release = threading.Event()

    def reset(self) -> None:
        """Clear rules and counters and restart the random sequence."""
        self.clear()
        with self._lock:
            self.counters.clear()
            self._rng.seed(self._seed)

    @property
    def rules(self) -> list[FaultRule]:
        """A snapshot of the active rules."""
        with self._lock:
            return list(self._rules)

    def decide(self, method: str, path: str) -> Decision:
        """Pick the faults that strike before handling one request, and count them."""
        if not self._rules:
            return NO_FAULT
        with self._lock:
            matching = [
                r for r in self._rules if r.kind not in STORED_KINDS and r.matches(method, path)
            ]
            delay = sum(
                self._latency(r) for r in matching if r.kind == "latency" and self._fires(r)
            )
            chosen = self._choose([r for r in matching if r.kind != "latency"])
            if delay:
                self.counters["latency"] += 1
            if chosen is None:
                return Decision(delay=delay) if delay else NO_FAULT
            self.counters[chosen.name] += 1
            return Decision(
                delay=delay,
                status=chosen if chosen.kind == "status" else None,
                drop=chosen.kind == "drop_after_processing",
                outage=chosen.kind == "outage",
            )

    def decide_stored(self, method: str, path: str) -> FaultRule | None:
        """The ``stored_error`` rule striking a request that reached its endpoint, if any."""
        if not self._rules:
            return None
        with self._lock:
            chosen = self._choose(
                [r for r in self._rules if r.kind in STORED_KINDS and r.matches(method, path)]
            )
            if chosen is not None:
                self.counters[chosen.name] += 1
            return chosen

    def sleep(self, seconds: float) -> None:
        """Injected latency; :meth:`clear` wakes sleepers early."""
        self._release.wait(seconds)

    def _choose(self, rules: list[FaultRule]) -> FaultRule | None:
        """At most one of ``rules``: a counted one first, else one draw against the stacked
        rates (lock held)."""
        chosen = next((r for r in rules if r.rate is None and self._fires(r)), None)
        rated = [r for r in rules if r.rate is not None]
        if chosen is None and rated:
            draw, stacked = self._rng.random(), 0.0
            for rule in rated:
                stacked += rule.rate or 0.0
                if draw < stacked:
                    return rule
        return chosen

    def _fires(self, rule: FaultRule) -> bool:
        """Consume one use of a counted rule, or roll for a rate rule (lock held)."""
        if rule.times is not None:
            rule.times -= 1
            if rule.times == 0:
                self._rules.remove(rule)
            return True
        return rule.rate is None or self._rng.random() < rule.rate

    def _latency(self, rule: FaultRule) -> float:
        low, high = rule.latency
        return low if low == high else self._rng.uniform(low, high)
