"""Finding the project's trackers when the app is ready: settings first, then ``usage.py``.

``BILLFLOW_USAGE["TRACKERS"]`` lists dotted paths to functions that declare trackers, and with
``BILLFLOW_USAGE["AUTODISCOVER"]`` every installed app's ``usage`` module is imported, like
``admin.py``. A path that can't be imported is logged and skipped here and reported by the
system checks (``billflow_usage.E108``), so a typo never stops the project from starting.
"""

from __future__ import annotations

import logging

from django.utils.module_loading import autodiscover_modules

from billflow_usage.conf import SETTINGS_NAME, billflow_settings
from billflow_usage.tracking.registry import registry
from billflow_usage.tracking.resolvers import Resolver

logger = logging.getLogger(__name__)

#: The module autodiscovery imports from every installed app.
MODULE_NAME = "usage"


def settings_declarers() -> list[Resolver]:
    """The functions ``BILLFLOW_USAGE["TRACKERS"]`` names (malformed settings: none)."""
    paths = billflow_settings.TRACKERS
    if not isinstance(paths, list | tuple):
        return []
    return [Resolver(path) for path in paths if isinstance(path, str)]


def discover() -> None:
    """Connect and declare the project's trackers; ``BillflowUsageConfig.ready()`` calls it."""
    registry.connect_pending()
    for declarer in settings_declarers():
        problem = declarer.problem()
        if problem is None:
            declarer()
        else:
            logger.error("%s['TRACKERS'] entry skipped: %s", SETTINGS_NAME, problem)
    if billflow_settings.AUTODISCOVER:
        autodiscover_modules(MODULE_NAME)
