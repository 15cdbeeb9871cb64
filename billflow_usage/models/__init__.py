"""The ledger's tables: what is billed, where it is billed, and every unit recorded."""

from billflow_usage.models.delivery_group import DeliveryGroup
from billflow_usage.models.installation import Installation
from billflow_usage.models.metric import Metric
from billflow_usage.models.processed_event import ProcessedMeterErrorEvent
from billflow_usage.models.subscription_item import SubscriptionItemLink
from billflow_usage.models.sync_report import SyncReport
from billflow_usage.models.usage_event import UsageEvent
from billflow_usage.models.usage_limit import UsageGate, UsageLimit, UsageThresholdCrossing
from billflow_usage.models.usage_rollup import UsageRollup
from billflow_usage.models.usage_total import UsageHourTotal

__all__ = [
    "DeliveryGroup",
    "Installation",
    "Metric",
    "ProcessedMeterErrorEvent",
    "SubscriptionItemLink",
    "SyncReport",
    "UsageEvent",
    "UsageGate",
    "UsageHourTotal",
    "UsageLimit",
    "UsageRollup",
    "UsageThresholdCrossing",
]
