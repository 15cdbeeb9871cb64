"""Decoding of stripe-python's bracketed form encoding."""

from __future__ import annotations

from billflow_usage.testing.fake_stripe.forms import parse_form


def test_nested_hashes_and_lists() -> None:
    parsed = parse_form(
        "customer=cus_1&items[0][price]=p1&items[0][quantity]=2&items[1][price]=p2"
        "&payload[stripe_customer_id]=cus_1&metadata[a]=&expand[]=x&expand[]=y"
    )
    assert parsed == {
        "customer": "cus_1",
        "items": [{"price": "p1", "quantity": "2"}, {"price": "p2"}],
        "payload": {"stripe_customer_id": "cus_1"},
        "metadata": {"a": ""},
        "expand": ["x", "y"],
    }


def test_percent_encoded_brackets() -> None:
    assert parse_form("recurring%5Bmeter%5D=mtr_1") == {"recurring": {"meter": "mtr_1"}}
