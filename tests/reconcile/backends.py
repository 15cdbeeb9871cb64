"""A locmem backend that answers ``fetch_event`` from a dict, for the thin-event path."""

from __future__ import annotations

from typing import Any

from billflow_usage.backends.locmem import LocMemBackend


class EventsBackend(LocMemBackend):
    events: dict[str, dict[str, Any]] = {}

    def fetch_event(self, event_id: str) -> dict[str, Any]:
        return self.events[event_id]
