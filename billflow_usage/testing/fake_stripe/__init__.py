"""A fake Stripe API server for tests and benchmarks (standard library only, no Django).

It speaks real HTTP, so ``stripe.StripeClient`` exercises its full stack against it: the
billing-meter, meter-event (v1, v2 and the v2 stream), subscription, seat and legacy
usage-record endpoints, with Stripe's rules (35-day/5-minute timestamps, 24-hour duplicate
identifiers and cancellations, 15-minute stream sessions, 100 events per stream request, no
quantity on metered prices, 200 quantity updates per hour per subscription, the 2025-03-31
usage-record cut-off), idempotency keys, Stripe's error shapes and fault injection.

Start it and point a client at it::

    from billflow_usage.testing.fake_stripe import FakeStripe

    with FakeStripe() as fake:  # or fake = FakeStripe(port=12111).start(); fake.stop()
        client = stripe.StripeClient(
            "sk_test_123",
            base_addresses={"api": fake.url, "meter_events": fake.url},
            max_network_retries=0,
        )
        customer = fake.create_customer(email="a@example.com")  # setup without HTTP
        fake.create_meter("api_calls", formula="sum")
        client.v1.billing.meter_events.create(
            {"event_name": "api_calls", "payload": {"stripe_customer_id": customer["id"],
                                                    "value": "3"}}
        )
        assert fake.meter_event_total("api_calls", customer["id"]) == 3

From another process: ``python -m billflow_usage.testing.fake_stripe --port 12111`` prints
its URL and serves until Ctrl-C/SIGTERM; with ``--state FILE`` it starts from FILE and saves
back to it on exit. ``fake.save_state(path)`` / ``fake.load_state(path)`` do the same from
Python: Stripe's objects, meter events and quantity changes, as JSON.

Time: ``fake.clock.now()``, ``fake.clock.advance(seconds)``, ``fake.clock.set(ts)`` move the
fake's clock (real time by default), which all time rules use.

Faults (applied before handling, except ``drop_after_processing`` and the stored errors)::

    fake.faults.add("status", status=503, route="/v1/billing/meter_events", times=2)
    fake.faults.add("status", status=429, code="lock_timeout", should_retry=True, rate=0.05)
    fake.faults.add("drop_after_processing", rate=0.05)   # stored, then hang up
    fake.faults.add("latency", latency=(0.0, 0.05))       # seconds, fixed or a range
    fake.faults.add("outage", route="/v2/*")              # hang up at once, until cleared
    fake.faults.add("stored_error", times=1)              # 500 without effect, kept under the key
    fake.faults.add("stored_error_after_effect", times=1) # the change is made, then a kept 500
    fake.faults.seed(7); fake.faults.counters; fake.faults.clear()

``route`` is an fnmatch pattern on the path (default every route), ``method`` optional; a rule
fires ``times`` times, on a ``rate`` fraction (seeded ``random.Random``) or always.

Idempotency keys, as Stripe keeps them: a POST's first answer is stored for 24 hours of the
fake's clock, whatever it was (5xx included) once the endpoint began executing, and replayed
with ``Idempotent-Replayed: true`` to a retry with the same key and parameters.

Credentials: ``fake.keys.revoke(key)`` / ``fake.keys.restore(key)`` (a revoked key gets 401
``Invalid API Key provided: sk_test_****abcd``), ``fake.keys.deny(key, route, method)`` /
``fake.keys.allow(key)`` (403, a restricted key without the permission), and
``fake.forget_sessions()`` (a restarted Stripe: stream requests with an old session token get
a 401).

Meter error events: the stream accepts events that break a rule and files error reports, as
Stripe validates asynchronously. ``fake.emit_meter_error_events("whsec_...")`` turns the
reports filed since its last call into Stripe's thin events (one
``v1.billing.meter.error_report_triggered`` per meter, one ``v1.billing.meter.no_meter_found``
for names no meter counts), served in full at ``GET /v2/core/events/{id}`` for 30 days, and
returns each as an Event Destination receives it: ``delivery.body`` with
``delivery.headers`` (a valid ``Stripe-Signature``); ``delivery.signed(timestamp)`` signs it
at another time, for replay tests::

    for delivery in fake.emit_meter_error_events(SECRET):
        django_client.post(url, delivery.body, content_type="application/json",
                           headers={"Stripe-Signature": delivery.signature})

Inspection: ``meter_event_total``, ``meter_events``, ``duplicate_identifier_rejections``,
``duplicate_identifiers_ignored``, ``error_reports``, ``subscription_item``,
``quantity_updates``, ``seat_rate_limit_hits``, ``usage_record_totals``, ``request_log``,
``request_count``, ``max_concurrency_per_customer_meter``, ``summary()``; ``reset()`` forgets
everything including faults.

Control endpoints (no auth, never faulted): ``GET /_fake/state`` (the ``summary()``),
``POST /_fake/reset``, ``GET|POST|DELETE /_fake/faults`` (POST takes
``{"seed": 7, "faults": [{"kind": "status", "status": 500, "rate": 0.2}, ...]}`` or a single
rule object, with the fields of ``faults.add``), ``GET|POST /_fake/clock`` (POST
``{"advance": 3600}`` or ``{"set": 1700000000}``), ``GET|POST /_fake/keys`` (POST
``{"revoke": key}``, ``{"restore": key}``, ``{"deny": key, "route": "/v1/*", "method":
"POST"}`` or ``{"allow": key}``), ``DELETE /_fake/sessions`` (forget every session),
``POST /_fake/meter_error_events`` (``{"secret": "whsec_...", "max_samples": 3}``; answers
``{"events": [{"id", "type", "body", "signed_at", "signature"}]}``).
"""

from .events import EventDelivery
from .fake import FakeStripe
from .faults import FaultRule, Faults
from .state import RequestRecord

__all__ = ["EventDelivery", "FakeStripe", "FaultRule", "Faults", "RequestRecord"]
