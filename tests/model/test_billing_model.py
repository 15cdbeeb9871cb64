"""The model-based test: Hypothesis drives every actor of :mod:`tests.model.machine` against
the real library, the database and the fake Stripe over HTTP.

CI runs a bounded number of examples, derandomised so a failure reproduces; set
``BILLFLOW_MODEL_EXAMPLES`` (and ``BILLFLOW_MODEL_STEPS``) to explore longer, with a fresh
random seed each run. Shrunk failures found along the way are kept below as regression tests.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from billflow_usage.testing.fake_stripe import FakeStripe
from tests.model.machine import BillingMachine

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("BILLFLOW_MODEL_EXAMPLES", "0"))
STEPS = int(os.environ.get("BILLFLOW_MODEL_STEPS", "40"))


@pytest.fixture
def machine(fake_stripe_server: FakeStripe, explored: Counter[str]) -> type[BillingMachine]:
    return type("Billing", (BillingMachine,), {"fake": fake_stripe_server, "explored": explored})


def test_stripe_bills_exactly_what_was_recorded(machine: type[BillingMachine]) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES or 25,
            stateful_step_count=STEPS,
            derandomize=not EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
