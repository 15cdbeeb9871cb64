"""Turn what callers pass as a customer into a Stripe customer ID."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from billflow_usage.conf import billflow_settings
from billflow_usage.exceptions import InvalidUsage
from billflow_usage.models.limits import STRIPE_ID_MAX_LENGTH
from billflow_usage.redaction import described, shown

CUSTOMER_ID_RE = re.compile(r"cus_[A-Za-z0-9]+")


@dataclass(frozen=True)
class ResolvedCustomer:
    id: str
    #: From the dj-stripe Customer when one was given; None means "decide from the API key".
    livemode: bool | None = None


def customer_id(value: Any) -> str:
    """Check a raw Stripe customer ID."""
    if isinstance(value, str) and len(value) > STRIPE_ID_MAX_LENGTH:
        raise InvalidUsage(f"customer ID is longer than {STRIPE_ID_MAX_LENGTH} characters.")
    if not isinstance(value, str) or not CUSTOMER_ID_RE.fullmatch(value):
        raise InvalidUsage(
            f"customer ID {shown(value)} is not a Stripe customer ID; expected 'cus_' "
            "followed by letters and digits, e.g. 'cus_NffrFeUfNV2Hib'."
        )
    return value


def resolve_customer(value: Any) -> ResolvedCustomer:
    """Accept a ``cus_...`` ID, a dj-stripe ``Customer``, or a dj-stripe subscriber object
    (or what this function returned for one, so resolving again costs no query)."""
    if isinstance(value, str):
        return ResolvedCustomer(customer_id(value))
    if isinstance(value, ResolvedCustomer):
        return ResolvedCustomer(customer_id(value.id), value.livemode)

    from djstripe.models import Customer
    from djstripe.settings import djstripe_settings

    if isinstance(value, Customer):
        return ResolvedCustomer(customer_id(value.id), value.livemode)
    subscriber_model = djstripe_settings.get_subscriber_model()
    if isinstance(value, subscriber_model):
        return _customer_of_subscriber(value)
    raise InvalidUsage(
        f"customer must be a Stripe customer ID ('cus_...'), a dj-stripe Customer or a "
        f"{subscriber_model._meta.label} (the DJSTRIPE_SUBSCRIBER_MODEL); "
        f"got {described(value)}."
    )


def billable_customers() -> QuerySet[Any]:
    """dj-stripe Customers usage can be billed to: in the configured mode, not purged."""
    from djstripe.models import Customer

    livemode = billflow_settings.livemode
    customers: QuerySet[Any] = Customer.objects.filter(
        Q(livemode=livemode) | Q(livemode__isnull=True), date_purged__isnull=True
    )
    return customers


def _customer_of_subscriber(subscriber: Any) -> ResolvedCustomer:
    mode = "live" if billflow_settings.livemode else "test"
    matches = list(
        billable_customers().filter(subscriber=subscriber).values_list("id", "livemode")[:2]
    )
    if not matches:
        raise InvalidUsage(
            f"{subscriber!r} has no dj-stripe Customer in {mode} mode; create one with "
            "djstripe.models.Customer.get_or_create(subscriber) or pass a 'cus_...' ID."
        )
    if len(matches) > 1:
        raise InvalidUsage(
            f"{subscriber!r} has several dj-stripe Customers in {mode} mode, so which one to "
            "bill is ambiguous; pass the 'cus_...' ID or the Customer explicitly."
        )
    found_id, found_livemode = matches[0]
    return ResolvedCustomer(customer_id(found_id), found_livemode)
