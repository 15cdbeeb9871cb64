"""Builders for the JSON objects the fake returns.

Shapes follow Stripe's canonical fixtures (``fixtures3.json`` from stripe/openapi), trimmed to
the fields a billing integration reads, with test-mode values (``livemode: false``). Each
builder makes a fresh dict, so nothing is copied per request.
"""

from __future__ import annotations

import calendar
import uuid
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]


def new_id(prefix: str) -> str:
    """A unique Stripe-looking id such as ``cus_3f9c...``."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def iso(ts: float) -> str:
    """v2 APIs carry times as RFC 3339 strings with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def add_month(ts: int) -> int:
    """The same moment one calendar month later (day clamped to the month's length)."""
    start = datetime.fromtimestamp(ts, UTC)
    year, month = divmod(start.month, 12)
    year, month = start.year + year, month + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def customer(
    object_id: str, created: int, email: str | None, name: str | None, metadata: JSON
) -> JSON:
    """A ``customer``."""
    return {
        "id": object_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": email,
        "invoice_prefix": object_id[-8:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": metadata,
        "name": name,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def product(object_id: str, created: int, name: str, metadata: JSON) -> JSON:
    """A ``product``."""
    return {
        "id": object_id,
        "object": "product",
        "active": True,
        "created": created,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata,
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": created,
        "url": None,
    }


def price(
    object_id: str,
    created: int,
    *,
    product_id: str,
    currency: str,
    unit_amount: int,
    recurring: JSON | None,
    nickname: str | None,
    lookup_key: str | None,
    metadata: JSON,
) -> JSON:
    """A ``price``; ``recurring`` is the nested recurring hash or None for one-time prices."""
    return {
        "id": object_id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": metadata,
        "nickname": nickname,
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def recurring(interval: str, interval_count: int, usage_type: str, meter: str | None) -> JSON:
    """The ``recurring`` hash of a price."""
    return {
        "interval": interval,
        "interval_count": interval_count,
        "meter": meter,
        "trial_period_days": None,
        "usage_type": usage_type,
    }


def plan(price_obj: JSON) -> JSON:
    """The legacy ``plan`` mirror Stripe still embeds in subscription items."""
    rec = price_obj["recurring"] or {}
    return {
        "id": price_obj["id"],
        "object": "plan",
        "active": price_obj["active"],
        "amount": price_obj["unit_amount"],
        "amount_decimal": price_obj["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price_obj["created"],
        "currency": price_obj["currency"],
        "interval": rec.get("interval"),
        "interval_count": rec.get("interval_count"),
        "livemode": False,
        "metadata": price_obj["metadata"],
        "meter": rec.get("meter"),
        "nickname": price_obj["nickname"],
        "product": price_obj["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": rec.get("usage_type", "licensed"),
    }


def meter(
    object_id: str,
    created: int,
    *,
    display_name: str,
    event_name: str,
    formula: str,
    customer_key: str,
    value_key: str,
    event_time_window: str | None,
) -> JSON:
    """A ``billing.meter``."""
    return {
        "id": object_id,
        "object": "billing.meter",
        "created": created,
        "customer_mapping": {"event_payload_key": customer_key, "type": "by_id"},
        "default_aggregation": {"formula": formula},
        "display_name": display_name,
        "event_name": event_name,
        "event_time_window": event_time_window,
        "livemode": False,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": created,
        "value_settings": {"event_payload_key": value_key},
    }


def meter_event(
    event_name: str, identifier: str, payload: JSON, timestamp: int, created: int
) -> JSON:
    """A v1 ``billing.meter_event``."""
    return {
        "object": "billing.meter_event",
        "created": created,
        "event_name": event_name,
        "identifier": identifier,
        "livemode": False,
        "payload": payload,
        "timestamp": timestamp,
    }


def meter_event_v2(
    event_name: str, identifier: str, payload: JSON, timestamp: int, created: float
) -> JSON:
    """A ``v2.billing.meter_event``."""
    return {
        "object": "v2.billing.meter_event",
        "created": iso(created),
        "event_name": event_name,
        "identifier": identifier,
        "livemode": False,
        "payload": payload,
        "timestamp": iso(timestamp),
    }


def meter_event_adjustment(event_name: str, identifier: str) -> JSON:
    """A v1 ``billing.meter_event_adjustment`` (cancellations complete at once here)."""
    return {
        "object": "billing.meter_event_adjustment",
        "cancel": {"identifier": identifier},
        "event_name": event_name,
        "livemode": False,
        "status": "complete",
        "type": "cancel",
    }


def meter_event_adjustment_v2(event_name: str, identifier: str, created: float) -> JSON:
    """A ``v2.billing.meter_event_adjustment``."""
    return {
        "id": new_id("mtradj"),
        "object": "v2.billing.meter_event_adjustment",
        "cancel": {"identifier": identifier},
        "created": iso(created),
        "event_name": event_name,
        "livemode": False,
        "status": "complete",
        "type": "cancel",
    }


def meter_event_session(token: str, created: float, expires_at: float) -> JSON:
    """A ``v2.billing.meter_event_session``."""
    return {
        "id": new_id("mtrses"),
        "object": "v2.billing.meter_event_session",
        "authentication_token": token,
        "created": iso(created),
        "expires_at": iso(expires_at),
        "livemode": False,
    }


def meter_event_summary(object_id: str, meter_id: str, start: int, end: int, value: int) -> JSON:
    """A ``billing.meter_event_summary``."""
    return {
        "id": object_id,
        "object": "billing.meter_event_summary",
        "aggregated_value": value,
        "end_time": end,
        "livemode": False,
        "meter": meter_id,
        "start_time": start,
    }


def subscription_item(
    object_id: str,
    created: int,
    *,
    subscription_id: str,
    price_obj: JSON,
    quantity: int | None,
    period: tuple[int, int],
) -> JSON:
    """A ``subscription_item``; metered items carry no ``quantity`` at all, as in Stripe."""
    item: JSON = {
        "id": object_id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": created,
        "current_period_end": period[1],
        "current_period_start": period[0],
        "discounts": [],
        "metadata": {},
        "plan": plan(price_obj),
        "price": price_obj,
        "subscription": subscription_id,
        "tax_rates": [],
    }
    if quantity is not None:
        item["quantity"] = quantity
    return item


def subscription(
    object_id: str,
    created: int,
    *,
    customer_id: str,
    currency: str,
    items: list[JSON],
    metadata: JSON,
) -> JSON:
    """An active ``subscription`` whose ``items`` list shares the item dicts."""
    return {
        "id": object_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": created,
        "billing_mode": {"type": "classic"},
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency,
        "customer": customer_id,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": list_object(items, f"/v1/subscription_items?subscription={object_id}"),
        "latest_invoice": None,
        "livemode": False,
        "metadata": metadata,
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": created,
        "status": "active",
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }


def usage_record(item_id: str, quantity: int, timestamp: int) -> JSON:
    """A legacy ``usage_record``."""
    return {
        "id": new_id("mbur"),
        "object": "usage_record",
        "livemode": False,
        "quantity": quantity,
        "subscription_item": item_id,
        "timestamp": timestamp,
    }


def list_object(data: list[JSON], url: str, has_more: bool = False) -> JSON:
    """A v1 ``list``."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
