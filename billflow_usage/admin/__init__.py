"""Django admin for the ledger: metrics, subscription items (seat quantities), usage events,
reconciliation reports, the per-customer usage page, and ``UsageAdminMixin`` for the host
project's own admin."""

from billflow_usage.admin.metrics import MetricAdmin
from billflow_usage.admin.subscription_items import SubscriptionItemLinkAdmin
from billflow_usage.admin.sync_reports import SyncReportAdmin
from billflow_usage.admin.usage_events import UsageEventAdmin
from billflow_usage.admin.usage_limits import UsageLimitAdmin, UsageThresholdCrossingAdmin
from billflow_usage.admin.usage_mixin import UsageAdminMixin

__all__ = [
    "MetricAdmin",
    "SubscriptionItemLinkAdmin",
    "SyncReportAdmin",
    "UsageAdminMixin",
    "UsageEventAdmin",
    "UsageLimitAdmin",
    "UsageThresholdCrossingAdmin",
]
