"""``{% billflow_usage_health %}``: the summary ``billflow_status`` prints, as an admin box.

The admin index shows it (``admin/billflow_usage/index.html``, which
:func:`billflow_usage.admin.index.show_health_on_index` makes the default site's index
template); a project with its own index template or admin site puts the tag in it.
"""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.db import DatabaseError

from billflow_usage.services.health import check_health

logger = logging.getLogger("billflow_usage.admin")
register = template.Library()

#: Who sees the box: the same permission as the ledger's rows.
PERMISSION = "billflow_usage.view_usageevent"


@register.inclusion_tag("admin/billflow_usage/includes/health.html", takes_context=True)
def billflow_usage_health(context: template.Context) -> dict[str, Any]:
    """The health box for users who may view the ledger; nothing for others."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm(PERMISSION):
        return {"shown": False}
    try:
        health = check_health()
    except DatabaseError:
        logger.exception("billflow_usage: the admin's health summary could not read the ledger")
        return {"shown": True, "error": "The ledger could not be read: check the database."}
    return {
        "shown": True,
        "health": health,
        "figures": health.figures,
        "state": health.state.name.lower(),
    }
