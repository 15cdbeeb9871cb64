"""The per-customer usage page, rendered for the ledger's admin and for host admins
(``UsageAdminMixin``) alike: only the breadcrumbs differ."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.admin import AdminSite
from django.db.models.options import Options
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.text import capfirst

from billflow_usage.admin.usage_chart import build_chart
from billflow_usage.customers import customer_id as checked_customer_id
from billflow_usage.exceptions import InvalidUsage
from billflow_usage.services.usage_figures import customer_usage
from billflow_usage.usage_limits.overview import customer_limits

TEMPLATE = "admin/billflow_usage/customer_usage.html"
#: The URL name (in the admin site's namespace) of the page under the ledger's admin.
URL_NAME = "billflow_usage_customer_usage"

Breadcrumbs = list[tuple[str, str]]


def customer_usage_url(customer_id: str, *, site_name: str) -> str:
    return reverse(f"{site_name}:{URL_NAME}", args=[customer_id])


def model_breadcrumbs(admin_site: AdminSite, opts: Options[Any]) -> Breadcrumbs:
    """Home, the app and the model's list, as the admin's own pages lead to an object."""
    site = admin_site.name
    return [
        ("Home", reverse(f"{site}:index")),
        (str(opts.app_config.verbose_name), reverse(f"{site}:app_list", args=[opts.app_label])),
        (
            capfirst(str(opts.verbose_name_plural)),
            reverse(f"{site}:{opts.app_label}_{opts.model_name}_changelist"),
        ),
    ]


def render_customer_usage(
    request: HttpRequest, admin_site: AdminSite, customer_id: str, *, breadcrumbs: Breadcrumbs
) -> TemplateResponse:
    """The page for ``customer_id``, or a 404 page saying what is wrong with the ID.

    ``breadcrumbs`` are (label, URL) pairs leading to this page; the page's own crumb is added.
    """
    request.current_app = admin_site.name
    context = {
        **admin_site.each_context(request),
        "title": f"Usage of {customer_id}",
        "breadcrumbs": [*breadcrumbs, ("Usage", "")],
        "customer_id": customer_id,
    }
    try:
        checked_customer_id(customer_id)
    except InvalidUsage as exc:
        context |= {"title": "Not a Stripe customer ID", "error": str(exc)}
        return TemplateResponse(request, TEMPLATE, context, status=404)
    usage = customer_usage(customer_id)
    context |= {
        "usage": usage,
        "limits": customer_limits(customer_id),
        "chart": build_chart(customer_id, usage.daily, usage.days) if usage.daily else None,
        "ledger_url": reverse(f"{admin_site.name}:billflow_usage_usageevent_changelist")
        + "?"
        + urlencode({"q": customer_id}),
    }
    return TemplateResponse(request, TEMPLATE, context)
