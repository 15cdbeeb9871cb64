"""Automatic recording: trackers turn model saves and deletes into usage and seat counts.

``track()`` records metered usage, ``track_quantity()`` keeps seat counts, both declared on
the module-level :data:`~billflow_usage.tracking.registry.registry` (in ``usage.py``
modules, ``BILLFLOW_USAGE["TRACKERS"]`` or anywhere at import time) and run by signal
receivers inside the host's transaction.
"""

from billflow_usage.tracking.bulk import bulk_create_with_usage
from billflow_usage.tracking.context import tracking_disabled, tracking_is_disabled
from billflow_usage.tracking.registry import TrackerRegistry, registry

track = registry.track
track_quantity = registry.track_quantity
untrack = registry.untrack

__all__ = [
    "TrackerRegistry",
    "bulk_create_with_usage",
    "registry",
    "track",
    "track_quantity",
    "tracking_disabled",
    "tracking_is_disabled",
    "untrack",
]
