"""Django admin for the ledger: metrics, subscription items (seat quantities), usage events,
reconciliation reports, the per-customer usage page, the health summary on the index, and
``UsageAdminMixin`` for the host project's own admin."""

from django.contrib import admin

from billflow_usage.admin.index import show_health_on_index
from billflow_usage.admin.metrics import MetricAdmin
from billflow_usage.admin.subscription_items import SubscriptionItemLinkAdmin
from billflow_usage.admin.sync_reports import SyncReportAdmin
from billflow_usage.admin.usage_events import UsageEventAdmin
from billflow_usage.admin.usage_limits import UsageLimitAdmin, UsageThresholdCrossingAdmin
from billflow_usage.admin.usage_mixin import UsageAdminMixin

show_health_on_index(admin.site)

__all__ = [
    "MetricAdmin",
    "SubscriptionItemLinkAdmin",
    "SyncReportAdmin",
    "UsageAdminMixin",
    "UsageEventAdmin",
    "UsageLimitAdmin",
    "UsageThresholdCrossingAdmin",
]
