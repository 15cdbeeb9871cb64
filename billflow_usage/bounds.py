"""The ranges of the numeric command options, shared with the settings they stand in for.

argparse's ``type=float`` takes ``nan``, ``inf`` and negatives: ``--idle-sleep nan`` made the
worker busy-loop, ``inf`` raised ``OverflowError``, ``--rate-limit -1`` switched throttling
off. Each option is a :class:`Bounded` range, used three ways: as the argparse ``type`` (the
command line, and ``call_command(name, "--option", "value")``); by :func:`check_options` for
values given as keywords (``call_command(name, option=value)``, which argparse never sees);
and by :mod:`billflow_usage.checks` for the setting an option overrides, so both follow one
rule. A range is finite, and 0 means "off" only where the range says so (``off``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from django.core.management.base import CommandError

from billflow_usage.validation import STRIPE_HISTORY


@dataclass(frozen=True)
class Bounded:
    """A finite number from ``minimum`` to ``maximum`` (a whole one when ``whole``), or 0 too
    when ``off`` says what 0 means."""

    what: str
    minimum: float
    maximum: float
    whole: bool = False
    off: str = ""

    @property
    def expected(self) -> str:
        """What a good value looks like, for error messages and check hints."""
        text = f"{self.what} from {_shown(self.minimum)} to {_shown(self.maximum)}"
        return f"{text}, or 0 for {self.off}" if self.off else text

    def accepts(self, value: object) -> TypeGuard[int | float]:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.whole and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        return bool(self.off and value == 0) or self.minimum <= value <= self.maximum

    def check(self, value: object, *, shown: str | None = None) -> int | float:
        if not self.accepts(value):
            raise argparse.ArgumentTypeError(f"{shown or repr(value)} is not {self.expected}")
        return value

    def __call__(self, text: str) -> int | float:
        """argparse's ``type``: the number written in ``text``, or why it is refused."""
        try:
            value: int | float = int(text) if self.whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.expected}") from None
        return self.check(value, shown=repr(text))


def check_options(options: MutableMapping[str, Any], bounds: Mapping[str, Bounded]) -> None:
    """Check (and parse, when text) the options given as keywords, as argparse would have;
    None means "not given"."""
    for dest, bound in bounds.items():
        value = options.get(dest)
        if value is None:
            continue
        try:
            options[dest] = bound(value) if isinstance(value, str) else bound.check(value)
        except argparse.ArgumentTypeError as refused:
            raise CommandError(f"--{dest.replace('_', '-')}: {refused}.") from None


def _shown(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


#: Events claimed per batch (``--batch-size``, ``BATCH_SIZE``): one claim reads and marks them
#: in a few statements whose parameters must stay below SQLite's limit (32,766).
BATCH_SIZE = Bounded("a whole number of events", 1, 10_000, whole=True)
#: ``billflow_prune --older-than``: compacted days are at least Stripe's window old (nothing
#: younger can be sent, cancelled or compared any more); 100 years is "never".
PRUNE_AGE = Bounded("a whole number of days", STRIPE_HISTORY.days, 36_500, whole=True)
#: ``billflow_prune --batch-size``: rows compacted per transaction, so each holds its row
#: locks for a moment only.
PRUNE_BATCH_SIZE = Bounded("a whole number of rows", 1, 10_000, whole=True)
#: Batches in flight in one worker (``--concurrency``): a thread and a connection each.
WORKER_THREADS = Bounded("a whole number of threads", 1, 64, whole=True)
#: Seconds an idle worker waits before looking again (``--idle-sleep``): 0 would be a busy
#: loop on the database (bench/draining.py polls every 0.05 s).
IDLE_SLEEP = Bounded("a number of seconds", 0.01, 3600)
#: Recent seconds left out of billflow_sync's comparison (``--settling-window``,
#: ``SETTLING_WINDOW``): a longer one would leave out all of Stripe's history.
SETTLING_WINDOW = Bounded("a number of seconds", 0, STRIPE_HISTORY.total_seconds())
#: Stripe requests per second during billflow_sync (``--rate-limit``, ``SYNC_RATE_LIMIT``).
RATE_LIMIT = Bounded("a number of requests per second", 0.1, 1000, off="no limit")
#: billflow_status: seconds the oldest pending row may wait (``--max-lag``,
#: ``STATUS_MAX_LAG``), and seconds of failing with nothing delivered before Stripe counts as
#: unreachable (``--unreachable-after``, ``STATUS_UNREACHABLE_AFTER``): up to Stripe's 35 days.
STATUS_SECONDS = Bounded("a number of seconds", 1, STRIPE_HISTORY.total_seconds())
#: billflow_status: failed rows tolerated (``--max-failed``, ``STATUS_MAX_FAILED``).
STATUS_MAX_FAILED = Bounded("a whole number of failed rows", 0, 1_000_000_000, whole=True)
