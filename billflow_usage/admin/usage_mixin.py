"""``UsageAdminMixin``: a customer's usage, and a dry reconciliation, from the host project's
own admin (say, the workspace admin), the way django-auditlog's ``AuditlogHistoryAdminMixin``
adds an object's history: a view through ``get_urls`` and a link column."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.core import checks
from django.core.exceptions import PermissionDenied
from django.db.models import Model, Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from billflow_usage.admin.reconciliation import can_reconcile, dry_reconciliation
from billflow_usage.admin.usage_page import model_breadcrumbs, render_customer_usage
from billflow_usage.customers import billable_customers, resolve_customer
from billflow_usage.exceptions import InvalidUsage

logger = logging.getLogger("billflow_usage.admin")

#: Where the object's dj-stripe Customers are prefetched for the change list.
PREFETCHED_CUSTOMERS = "_billflow_usage_customers"
VIEW_USAGE = "billflow_usage.view_usageevent"

if TYPE_CHECKING:
    _Base = admin.ModelAdmin[Any]
else:
    _Base = object


class UsageAdminMixin(_Base):
    """Mix into the ModelAdmin of the model that stands for a Stripe customer::

        @admin.register(Workspace)
        class WorkspaceAdmin(UsageAdminMixin, admin.ModelAdmin):
            list_display = ["name", "usage_link"]

    It adds a "Usage" column (``usage_link``) and a "Usage" button on the change form, both
    leading to the customer's usage page (``<object_id>/usage/``), and the action "Dry-run
    reconciliation for the selected customers".

    An object's customer is found the way trackers find it: by default the object must be
    the dj-stripe subscriber (``DJSTRIPE_SUBSCRIBER_MODEL``) and its dj-stripe Customer is
    used; set ``usage_customer_field`` to a field or ``__`` path holding a ``"cus_..."`` ID,
    a dj-stripe Customer or a subscriber, or override :meth:`usage_customer_id`. Objects
    without a Stripe customer show "-".
    """

    #: A field (or ``__`` path) of the object holding its customer; None: the object itself.
    usage_customer_field: str | None = None
    #: Add ``usage_link`` to the change list when ``list_display`` doesn't name it.
    show_usage_link = True
    #: Extend this template if you set your own ``change_form_template``.
    change_form_template = "admin/billflow_usage/usage_change_form.html"

    def usage_customer_id(self, obj: Model) -> str | None:
        """The Stripe customer ID billed for ``obj``, or None when it has none."""
        if self.usage_customer_field is not None:
            value: Any = obj
            for name in self.usage_customer_field.split("__"):
                value = getattr(value, name, None)
        else:
            prefetched = getattr(obj, PREFETCHED_CUSTOMERS, None)
            # Like resolve_customer(): exactly one billable Customer, else none.
            value = obj if prefetched is None else (prefetched[0] if len(prefetched) == 1 else None)
        if value is None or value == "":
            return None
        try:
            return resolve_customer(value).id
        except InvalidUsage as exc:
            logger.debug("No Stripe customer for %r: %s", obj, exc)
            return None

    @admin.display(description="Usage")
    def usage_link(self, obj: Model) -> str:
        customer = self.usage_customer_id(obj)
        if customer is None:
            return "-"
        return format_html(
            '<a href="{}" title="Usage of {} this billing period">Usage</a>',
            self._usage_url(obj),
            customer,
        )

    @admin.action(
        description="Dry-run reconciliation for the selected customers",
        permissions=["billflow_reconcile"],
    )
    def reconcile_usage_dry_run(
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> HttpResponse | None:
        """``billflow_sync --dry-run`` for the selected objects' customers."""
        found = [self.usage_customer_id(obj) for obj in queryset]
        without = found.count(None)
        if without:
            self.message_user(
                request,
                f"{without} selected object(s) have no Stripe customer and were left out.",
                messages.WARNING,
            )
        return dry_reconciliation(self, request, (c for c in found if c is not None))

    def has_billflow_reconcile_permission(self, request: HttpRequest) -> bool:
        return can_reconcile(request)

    def usage_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The usage page of ``object_id``'s customer, among this admin's breadcrumbs."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with ID {object_id!r}.")
        if not (
            self.has_view_or_change_permission(request, obj) and request.user.has_perm(VIEW_USAGE)
        ):
            raise PermissionDenied
        change_url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[obj.pk],
        )
        customer = self.usage_customer_id(obj)
        if customer is None:
            self.message_user(
                request,
                f"{obj} has no Stripe customer, so no usage is billed to it.",
                messages.WARNING,
            )
            return HttpResponseRedirect(change_url)
        breadcrumbs = [
            *model_breadcrumbs(self.admin_site, self.opts),
            (Truncator(str(obj)).words(18), change_url),
        ]
        return render_customer_usage(request, self.admin_site, customer, breadcrumbs=breadcrumbs)

    # -- ModelAdmin hooks ----------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        usage = path(
            "<path:object_id>/usage/",
            self.admin_site.admin_view(self.usage_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_usage",
        )
        return [usage, *super().get_urls()]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        """Prefetch subscribers' dj-stripe Customers: one query for a whole change list."""
        queryset = super().get_queryset(request)
        if self.usage_customer_field is None and _is_subscriber_model(self.model):
            from djstripe.models import Customer

            accessor = Customer._meta.get_field("subscriber").remote_field.get_accessor_name()
            queryset = queryset.prefetch_related(
                Prefetch(accessor, queryset=billable_customers(), to_attr=PREFETCHED_CUSTOMERS)
            )
        return queryset

    def get_list_display(self, request: HttpRequest) -> Any:
        """``usage_link`` for staff who may see usage, and only for them."""
        declared = list(super().get_list_display(request))
        columns = [c for c in declared if c != "usage_link"]
        wanted = self.show_usage_link or "usage_link" in declared
        if wanted and request.user.has_perm(VIEW_USAGE):
            columns.append("usage_link")
        return columns

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if (
            self.actions is not None
            and IS_POPUP_VAR not in request.GET
            and self.has_billflow_reconcile_permission(request)
        ):
            action = self.get_action("reconcile_usage_dry_run")
            assert action is not None
            actions["reconcile_usage_dry_run"] = action
        return actions

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Model | None = None,
    ) -> HttpResponse:
        if obj is not None and request.user.has_perm(VIEW_USAGE) and self.usage_customer_id(obj):
            context["billflow_usage_url"] = self._usage_url(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        overridden = type(self).usage_customer_id is not UsageAdminMixin.usage_customer_id
        if (
            self.usage_customer_field is None
            and not overridden
            and not _is_subscriber_model(self.model)
        ):
            errors.append(
                checks.Error(
                    f"{type(self).__name__} uses UsageAdminMixin, but {self.model._meta.label} "
                    "is not the dj-stripe subscriber model, so its Stripe customer can't be "
                    "found.",
                    hint="Set usage_customer_field to the field holding the customer ('cus_...' "
                    "ID, dj-stripe Customer or subscriber), or override usage_customer_id(obj).",
                    obj=type(self),
                    id="billflow_usage.E201",
                )
            )
        return errors

    def _usage_url(self, obj: Model) -> str:
        return reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_usage",
            args=[obj.pk],
        )


def _is_subscriber_model(model: type[Model]) -> bool:
    from djstripe.settings import djstripe_settings

    subscriber: type[Model] = djstripe_settings.get_subscriber_model()
    return model._meta.concrete_model is subscriber._meta.concrete_model
