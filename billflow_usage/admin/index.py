"""The health summary on the admin index (``{% billflow_usage_health %}``)."""

from __future__ import annotations

from django.contrib import admin

#: Extends ``admin/index.html`` (so a project's own override of it still applies) and puts
#: the summary above the app list.
INDEX_TEMPLATE = "admin/billflow_usage/index.html"


def show_health_on_index(site: admin.AdminSite) -> None:
    """Make ``site``'s index show the summary, unless the project chose an index template."""
    if site.index_template is None:
        site.index_template = INDEX_TEMPLATE
