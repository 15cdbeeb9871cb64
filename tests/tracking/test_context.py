"""tracking_disabled(): a block or function without trackers, per thread and per task."""

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync, sync_to_async

import billflow_usage
from billflow_usage.tracking import tracking_is_disabled
from tests.factories import MemberFactory, OrderFactory
from tests.testapp.models import Member, Order
from tests.tracking.helpers import active_members, values, workspace_customer


@pytest.fixture
def tracked(tracker_registry, orders):
    tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, on=("create", "delete")
    )


def test_as_a_context_manager(tracked):
    with billflow_usage.tracking_disabled():
        assert tracking_is_disabled()
        OrderFactory().delete()
    OrderFactory()

    assert not tracking_is_disabled()
    assert values() == [1]


def test_as_a_decorator_and_reentrant(tracked):
    quiet = billflow_usage.tracking_disabled()

    @quiet
    def import_orders(depth):
        OrderFactory()
        if depth:
            import_orders(depth - 1)
        return tracking_is_disabled()

    with quiet:
        assert import_orders(2)
    assert not tracking_is_disabled()
    assert values() == []


def test_seat_trackers_are_disabled_too(tracker_registry, seats, workspace):
    tracker_registry.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=active_members
    )
    with billflow_usage.tracking_disabled():
        MemberFactory(workspace=workspace)

    assert not seats.subscription_items.exists()


def test_a_disabled_block_in_one_thread_does_not_disable_another(tracked, workspace):
    entered, release = threading.Event(), threading.Event()
    seen_there = []

    def hold_disabled():
        with billflow_usage.tracking_disabled():
            seen_there.append(tracking_is_disabled())
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=hold_disabled)
    thread.start()
    try:
        assert entered.wait(10)
        OrderFactory(workspace=workspace)  # here, in the test's thread
    finally:
        release.set()
        thread.join()

    assert seen_there == [True]
    assert values() == [1]


def test_a_thread_started_while_disabled_keeps_tracking(tracked):
    seen = []
    with billflow_usage.tracking_disabled():
        thread = threading.Thread(target=lambda: seen.append(tracking_is_disabled()))
        thread.start()
        thread.join()

    assert seen == [False]


def test_asyncio_tasks_disable_only_themselves(tracked, workspace):
    create = sync_to_async(lambda: Order.objects.create(workspace=workspace))
    quiet_entered, loud_done = asyncio.Event(), asyncio.Event()

    async def quiet():
        with billflow_usage.tracking_disabled():
            quiet_entered.set()
            await create()
            await loud_done.wait()  # stay disabled while the loud tasks save
            await create()

    async def loud():
        await quiet_entered.wait()
        await create()

    async def main():
        async def louds():
            await asyncio.gather(loud(), loud())
            loud_done.set()

        await asyncio.gather(quiet(), louds())

    async_to_sync(main)()  # sync_to_async then runs on this thread and its connection

    assert Order.objects.count() == 4
    assert values() == [1, 1]


def test_decorating_a_coroutine_function_covers_its_whole_run(tracked, workspace):
    create = sync_to_async(lambda: Order.objects.create(workspace=workspace))

    @billflow_usage.tracking_disabled()
    async def import_orders():
        await asyncio.sleep(0)
        await create()
        return tracking_is_disabled()

    assert async_to_sync(import_orders)() is True
    assert values() == []
