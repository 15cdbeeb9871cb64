import uuid
from datetime import timedelta

import factory
from django.utils import timezone
from djstripe.models import Customer

from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent, UsageLimit
from tests.testapp.models import Member, Order, Workspace


class MetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Metric
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"metric-{n}")
    display_name = factory.LazyAttribute(lambda o: o.key.title())
    kind = Metric.Kind.METERED


class LicensedMetricFactory(MetricFactory):
    key = factory.Sequence(lambda n: f"seats-{n}")
    kind = Metric.Kind.LICENSED
    stripe_price_id = factory.Sequence(lambda n: f"price_seats{n}")

    class Params:
        #: Declared without its Stripe price (``billflow_usage.W301``).
        without_price = factory.Trait(stripe_price_id="")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    email = factory.LazyAttribute(lambda o: f"{o.name.lower().replace(' ', '')}@example.com")
    stripe_customer_id = factory.Sequence(lambda n: f"cus_Test{n:06d}")


class CustomerFactory(factory.django.DjangoModelFactory):
    """A dj-stripe Customer as dj-stripe stores one after a sync."""

    class Meta:
        model = Customer

    id = factory.Sequence(lambda n: f"cus_Dj{n:06d}")
    livemode = False
    subscriber = factory.SubFactory(WorkspaceFactory)
    stripe_data = factory.LazyAttribute(lambda o: {"id": o.id, "object": "customer"})


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"member {n}")


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    workspace = factory.SubFactory(WorkspaceFactory)


class SubscriptionItemLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubscriptionItemLink

    customer_id = factory.Sequence(lambda n: f"cus_Link{n:06d}")
    metric = factory.SubFactory(LicensedMetricFactory)
    stripe_subscription_id = factory.Sequence(lambda n: f"sub_Link{n:06d}")
    stripe_subscription_item_id = factory.Sequence(lambda n: f"si_Link{n:06d}")


class UsageEventFactory(factory.django.DjangoModelFactory):
    """A ledger row; pending by default. A trait puts it in another state with the fields
    delivery (or the admin) leaves with that state: ``UsageEventFactory(sent=True)``."""

    class Meta:
        model = UsageEvent

    metric = factory.SubFactory(MetricFactory)
    customer_id = factory.Sequence(lambda n: f"cus_Event{n:06d}")
    value = 1
    identifier = factory.Sequence(lambda n: f"test-event-{n}")

    class Params:
        #: Recorded, due, held by no worker: what ``record_usage`` stores.
        pending = factory.Trait(
            status=UsageEvent.Status.PENDING, attempts=0, claimed_until=None, claim_token=None
        )
        #: Pending and held by a worker that is sending it now (its lease runs 5 minutes).
        claimed = factory.Trait(
            status=UsageEvent.Status.PENDING,
            claimed_until=factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=5)),
            claim_token=factory.LazyFunction(uuid.uuid4),
        )
        #: Accepted by Stripe at its first attempt.
        sent = factory.Trait(
            status=UsageEvent.Status.SENT,
            attempts=1,
            sent_at=factory.LazyFunction(timezone.now),
        )
        #: Failed in Stripe (a permanent error), as delivery leaves a row.
        failed = factory.Trait(
            status=UsageEvent.Status.FAILED,
            attempts=1,
            last_error_code="meter_event_customer_not_found",
            last_error_message="No such customer",
        )
        #: Cancelled before it was sent: it never reaches Stripe.
        cancelled = factory.Trait(status=UsageEvent.Status.CANCELLED)
        #: Kept failed by a tracker whose metric doesn't exist (a mistyped key): never sent.
        unknown_metric = factory.Trait(
            metric=None,
            status=UsageEvent.Status.FAILED,
            last_error_code="unknown_metric",
            last_error_message="No metric with key 'api-cals'",
        )
        #: Kept failed by a tracker whose resolver raised: never sent, never to be.
        tracker_error = factory.Trait(
            status=UsageEvent.Status.FAILED,
            customer_id="cus_unresolved",
            last_error_code="tracker_error",
            last_error_message="It would have been recorded as 'abc': fix the cause, then "
            "record it with record_usage(..., identifier='abc').",
        )


class UsageLimitFactory(factory.django.DjangoModelFactory):
    """A hard limit for everyone; ``soft=True`` only warns, ``customer_id=`` or
    ``stripe_price_id=`` narrows the scope."""

    class Meta:
        model = UsageLimit

    metric = factory.SubFactory(MetricFactory)
    limit = 10
    kind = UsageLimit.Kind.HARD

    class Params:
        soft = factory.Trait(kind=UsageLimit.Kind.SOFT)
