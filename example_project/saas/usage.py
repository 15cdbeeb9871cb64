"""What this SaaS bills, declared once: found by billflow_usage like admin.py."""

import billflow_usage
from saas.models import ApiCall, Member


def active_members(customer_id: str) -> int:
    """The seats source of truth: active members of the workspace billed as ``customer_id``."""
    return Member.objects.filter(workspace__djstripe_customers__id=customer_id, active=True).count()


# Each served API call is one unit of the "api-calls" meter, billed to its workspace at the
# time the call was served.
billflow_usage.track(
    ApiCall,
    metric="api-calls",
    customer=lambda call: call.workspace,
    timestamp=lambda call: call.created_at,
)

# Seats: whenever members change, the workspace's quantity is recounted after commit.
billflow_usage.track_quantity(
    Member, metric="seats", customer=lambda member: member.workspace, quantity=active_members
)
