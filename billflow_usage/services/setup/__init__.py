"""``billflow_setup``: from the declared metrics to ready (meters, prices, links), saying
what is missing and the command that fixes it."""

from billflow_usage.services.setup.report import Finding, SetupReport, State
from billflow_usage.services.setup.run import run_setup

__all__ = ["Finding", "SetupReport", "State", "run_setup"]
