"""``python -m billflow_usage.testing.fake_stripe`` serves the fake to other processes, and its
state can be saved and loaded so Stripe's objects outlive one run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe
from tests.fake_stripe.helpers import API_KEY, http, make_client

ROOT = Path(__file__).resolve().parents[2]

#: The served fakes run in subprocesses, on the real clock.
pytestmark = pytest.mark.wall_clock


def serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "billflow_usage.testing.fake_stripe", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def url_of(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:")
    return url


def client_for(url: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        API_KEY, base_addresses={"api": url, "meter_events": url}, max_network_retries=0
    )


def test_cli_serves_until_terminated() -> None:
    process = serve()
    try:
        url = url_of(process)
        assert client_for(url).v1.customers.create({}).id.startswith("cus_")
        status, body, _ = http(url, "GET", "/_fake/state")
        assert status == 200
        assert body["requests"]["by_route"] == {"POST /v1/customers": 1}
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


@pytest.fixture
def billed(fake: FakeStripe) -> dict[str, Any]:
    """A customer with a seat item (quantity changed once) and 7 units on a sum meter."""
    client = make_client(fake)
    customer = fake.create_customer(email="ada@example.com")["id"]
    fake.create_meter("api_calls")
    seats = fake.create_price(unit_amount=1500)["id"]
    item = fake.create_subscription(customer, seats, quantity=2)["items"]["data"][0]["id"]
    client.v1.subscription_items.update(item, {"quantity": 4, "proration_behavior": "none"})
    for identifier, value in (("first", 3), ("second", 4)):
        client.v1.billing.meter_events.create(
            {
                "event_name": "api_calls",
                "identifier": identifier,
                "payload": {"stripe_customer_id": customer, "value": str(value)},
            }
        )
    return {"customer": customer, "item": item}


def test_saved_state_loads_into_a_new_fake(
    fake: FakeStripe, billed: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "stripe.json"
    fake.save_state(path)
    with FakeStripe() as restored:
        restored.load_state(path)
        client = make_client(restored)
        assert restored.meter_event_total("api_calls", billed["customer"]) == 7
        assert restored.subscription_item(billed["item"])["quantity"] == 4
        assert restored.quantity_updates == fake.quantity_updates
        with pytest.raises(stripe.InvalidRequestError):  # identifiers are still remembered
            client.v1.billing.meter_events.create(
                {
                    "event_name": "api_calls",
                    "identifier": "first",
                    "payload": {"stripe_customer_id": billed["customer"], "value": "3"},
                }
            )
        client.v1.subscription_items.update(billed["item"], {"quantity": 5})
        subscription = client.v1.subscriptions.list({"customer": billed["customer"]}).data[0]
        assert subscription["items"]["data"][0]["quantity"] == 5  # one item object, as before
        assert restored.request_count() == 3  # request logs start afresh


def test_loading_replaces_what_the_fake_had(
    fake: FakeStripe, billed: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "stripe.json"
    fake.save_state(path)
    fake.reset()
    fake.create_customer(id="cus_made_after_the_save")
    fake.load_state(path)
    assert [c["id"] for c in make_client(fake).v1.customers.list().data] == [billed["customer"]]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "Expecting property name"),
        ('{"format": 99}', "format 99, expected 3"),
        ('{"format": 3, "customers": {}}', "KeyError('products')"),
        ("[]", "TypeError"),
    ],
)
def test_a_file_that_is_not_a_state_dump_is_refused(
    fake: FakeStripe, tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "stripe.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="not a fake Stripe state dump") as exc:
        fake.load_state(path)
    assert str(path) in str(exc.value)
    assert problem in str(exc.value)


def test_cli_state_file_is_loaded_at_start_and_saved_on_exit(
    fake: FakeStripe, billed: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "stripe.json"
    fake.save_state(path)
    process = serve("--state", str(path))
    try:
        client = client_for(url_of(process))
        assert client.v1.subscription_items.retrieve(billed["item"]).quantity == 4
        client.v1.subscription_items.update(billed["item"], {"quantity": 9})
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    with FakeStripe() as restarted:
        restarted.load_state(path)
        assert restarted.subscription_item(billed["item"])["quantity"] == 9
        assert restarted.meter_event_total("api_calls", billed["customer"]) == 7


def test_cli_starts_empty_without_a_state_file_and_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "stripe.json"
    process = serve("--state", str(path))
    try:
        customer = client_for(url_of(process)).v1.customers.create({}).id
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    with FakeStripe() as restarted:
        restarted.load_state(path)
        assert make_client(restarted).v1.customers.retrieve(customer).id == customer


def test_cli_refuses_a_broken_state_file(tmp_path: Path) -> None:
    path = tmp_path / "stripe.json"
    path.write_text("{not json")
    process = serve("--state", str(path))
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 2
    assert f"{path}: not a fake Stripe state dump" in stderr
    assert "delete the file to start empty" in stderr
