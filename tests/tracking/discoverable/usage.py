"""Found by billflow_usage's autodiscovery, like admin.py."""

import billflow_usage

billflow_usage.track(
    "testapp.Order", metric="discovered", customer="tests.tracking.helpers.workspace_customer"
)
