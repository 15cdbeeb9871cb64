"""``python -m billflow_usage.testing.fake_stripe`` serves the fake to other processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import stripe

from tests.fake_stripe.helpers import API_KEY, http

ROOT = Path(__file__).resolve().parents[2]


def test_cli_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "billflow_usage.testing.fake_stripe", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = stripe.StripeClient(
            API_KEY, base_addresses={"api": url, "meter_events": url}, max_network_retries=0
        )
        assert client.v1.customers.create({}).id.startswith("cus_")
        status, body, _ = http(url, "GET", "/_fake/state")
        assert status == 200
        assert body["requests"]["by_route"] == {"POST /v1/customers": 1}
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
