import factory
from djstripe.models import Customer

from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
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
    class Meta:
        model = UsageEvent

    metric = factory.SubFactory(MetricFactory)
    customer_id = factory.Sequence(lambda n: f"cus_Event{n:06d}")
    value = 1
    identifier = factory.Sequence(lambda n: f"test-event-{n}")

    class Params:
        #: Failed in Stripe (a permanent error), as delivery leaves a row.
        failed = factory.Trait(
            status=UsageEvent.Status.FAILED,
            attempts=1,
            last_error_code="meter_event_customer_not_found",
            last_error_message="No such customer",
        )
        #: Kept failed by a tracker whose resolver raised: never sent, never to be.
        tracker_error = factory.Trait(
            status=UsageEvent.Status.FAILED,
            customer_id="cus_unresolved",
            last_error_code="tracker_error",
            last_error_message="It would have been recorded as 'abc': fix the cause, then "
            "record it with record_usage(..., identifier='abc').",
        )
