import pytest

from tests.factories import MetricFactory

CUSTOMER = "cus_Limits000001"


@pytest.fixture
def api_calls(db):
    return MetricFactory(key="api-calls")


@pytest.fixture
def fold():
    """Run the folding step as workers do."""
    from billflow_usage.usage_limits.folding import fold_usage

    return fold_usage
