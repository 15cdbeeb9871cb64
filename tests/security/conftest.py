"""The delivery tests' fixtures, for the security tests that deliver to the fake Stripe."""

from tests.admin.conftest import account  # noqa: F401
from tests.delivery.conftest import api_calls, configure, customer  # noqa: F401 (fixtures)
from tests.tracking.conftest import _fresh_metric_cache, tracker_registry  # noqa: F401
