"""A settable clock, so tests can simulate the passage of days without sleeping."""

from __future__ import annotations

import threading
import time


class Clock:
    """Real time plus an adjustable offset; simulated time keeps flowing after ``set``."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current simulated time, unix seconds."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Jump forward (or back, if negative) by ``seconds``."""
        with self._lock:
            self._offset += seconds

    def set(self, ts: float) -> None:
        """Make ``now()`` return ``ts`` at this instant."""
        with self._lock:
            self._offset = ts - time.time()

    def reset(self) -> None:
        """Return to real time."""
        with self._lock:
            self._offset = 0.0
