"""Django admin for the ledger: metrics, subscription items (seat quantities), usage events."""

from billflow_usage.admin.metrics import MetricAdmin
from billflow_usage.admin.subscription_items import SubscriptionItemLinkAdmin
from billflow_usage.admin.sync_reports import SyncReportAdmin
from billflow_usage.admin.usage_events import UsageEventAdmin

__all__ = ["MetricAdmin", "SubscriptionItemLinkAdmin", "SyncReportAdmin", "UsageEventAdmin"]
