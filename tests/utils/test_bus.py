"""Event bus: routing by pattern, back-pressure on lossless channels, counted drops on lossy ones."""

from __future__ import annotations

import asyncio

import pytest

from utils.bus import EventBus, consume


async def test_pattern_subscriptions_route_by_channel() -> None:
    bus = EventBus()
    signals = bus.subscribe("signal.*", name="signals")
    everything = bus.subscribe("*", name="all")
    orders = bus.subscribe("order.update", name="orders")
    await bus.publish("signal.ema_crossover", {"side": "LONG"})
    await bus.publish("order.update", {"status": "NEW"})
    await bus.publish("market.kline", {"close": "1"})

    assert [e.channel for e in (signals.get_nowait(),)] == ["signal.ema_crossover"]
    assert signals.get_nowait() is None
    assert orders.get_nowait().payload == {"status": "NEW"}
    assert [everything.get_nowait().channel for _ in range(3)] == ["signal.ema_crossover", "order.update",
                                                                   "market.kline"]


async def test_sequence_numbers_grow_and_order_is_kept() -> None:
    bus = EventBus()
    sub = bus.subscribe("order.*")
    for i in range(50):
        await bus.publish("order.request", i)
    events = [sub.get_nowait() for _ in range(50)]
    assert [e.payload for e in events] == list(range(50))
    assert [e.sequence for e in events] == sorted(e.sequence for e in events)


async def test_lossless_channel_applies_back_pressure_and_drops_nothing() -> None:
    bus = EventBus(default_maxsize=2, lossy=("market.*",))
    sub = bus.subscribe("order.update", maxsize=2)
    received: list[int] = []

    async def slow_consumer() -> None:
        for _ in range(10):
            event = await sub.get()
            await asyncio.sleep(0)
            received.append(event.payload)
        sub.ack()

    consumer = asyncio.create_task(slow_consumer())
    for i in range(10):
        await bus.publish("order.update", i)  # must wait whenever the queue is full
        assert sub.depth <= 2
    await consumer
    assert received == list(range(10))
    assert sub.dropped == 0


async def test_lossless_publish_nowait_refuses_rather_than_drop() -> None:
    bus = EventBus()
    sub = bus.subscribe("order.*", maxsize=1)
    bus.publish_nowait("order.request", 1)
    with pytest.raises(asyncio.QueueFull):
        bus.publish_nowait("order.request", 2)
    assert sub.get_nowait().payload == 1
    assert sub.dropped == 0


async def test_lossy_market_channel_drops_oldest_and_counts() -> None:
    bus = EventBus(lossy=("market.*",))
    slow = bus.subscribe("market.kline", name="slow-strategy", maxsize=3)
    for i in range(10):
        await bus.publish("market.kline", i)  # never waits
    assert slow.dropped == 7
    assert [slow.get_nowait().payload for _ in range(3)] == [7, 8, 9]  # the freshest survive
    assert bus.stats()["slow-strategy"]["dropped"] == 7
    assert bus.stats()["slow-strategy"]["delivered"] == 10


def test_order_signal_account_channels_can_never_be_lossy() -> None:
    for pattern in ("*", "order.*", "signal.*", "account.*", "order.update", "*.update"):
        with pytest.raises(ValueError, match="never dropped"):
            EventBus(lossy=(pattern,))
    EventBus(lossy=("market.*",))


async def test_bad_channel_name_is_refused() -> None:
    bus = EventBus()
    for name in ("", "order.", ".x", "a..b"):
        with pytest.raises(ValueError, match="bad channel name"):
            await bus.publish(name, None)


async def test_consume_isolates_a_failing_handler_and_drain_waits(caplog) -> None:
    bus = EventBus()
    sub = bus.subscribe("signal.*", name="executor")
    handled: list[int] = []

    async def handler(event) -> None:
        if event.payload == 2:
            raise RuntimeError("boom")
        await asyncio.sleep(0)
        handled.append(event.payload)

    task = asyncio.create_task(consume(sub, handler))
    for i in range(5):
        await bus.publish("signal.x", i)
    await asyncio.wait_for(bus.drain(), 2)
    assert handled == [0, 1, 3, 4]
    assert any("handler failed" in r.getMessage() and r.exc_info for r in caplog.records)
    task.cancel()


async def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    sub = bus.subscribe("order.*")
    sub.close()
    assert await bus.publish("order.update", 1) == 0
    assert sub.closed


async def test_one_subscription_on_several_patterns_keeps_publish_order() -> None:
    bus = EventBus()
    sub = bus.subscribe(("market.kline", "signal.*"), name="executor")
    await bus.publish("market.kline", 1)
    await bus.publish("order.update", 2)
    await bus.publish("signal.ema", 3)
    await bus.publish("market.kline", 4)
    assert [sub.get_nowait().payload for _ in range(3)] == [1, 3, 4]
    assert sub.get_nowait() is None
    assert bus.stats()["executor"]["pattern"] == "market.kline,signal.*"


# --------------------------------------------------------------------------------------- direct subscriptions
async def test_direct_handlers_run_during_publish_first_in_first_out() -> None:
    """A handler's own publication is delivered after every handler has seen the event in hand, whatever the
    order of subscription: the core sees the candle before the signal the strategy made of it."""
    bus = EventBus()
    seen: list[tuple[str, str, object]] = []

    def strategy(event) -> None:  # subscribed first, publishes a signal for every candle
        seen.append(("strategy", event.channel, event.payload))
        bus.publish_nowait("signal.s", f"signal-of-{event.payload}")

    def core(event) -> None:
        seen.append(("core", event.channel, event.payload))

    bus.subscribe_direct("market.kline", strategy, name="strategies")
    bus.subscribe_direct(("market.*", "signal.*"), core, name="core")
    queued = bus.subscribe("*", name="recorder")
    delivered = await bus.publish("market.kline", 1)
    assert delivered == 3
    assert seen == [("strategy", "market.kline", 1), ("core", "market.kline", 1),
                    ("core", "signal.s", "signal-of-1")]
    # the queued subscription gets both, in publish order, with growing sequence numbers
    first, second = queued.get_nowait(), queued.get_nowait()
    assert (first.channel, second.channel) == ("market.kline", "signal.s")
    assert first.sequence < second.sequence


async def test_a_failing_direct_handler_is_isolated_and_counted(caplog) -> None:
    bus = EventBus()
    got: list[int] = []

    def broken(event) -> None:
        if event.payload == 2:
            raise RuntimeError("strategy bug")

    bus.subscribe_direct("market.kline", broken, name="broken")
    bus.subscribe_direct("market.kline", lambda event: got.append(event.payload), name="fine")
    for i in range(4):
        bus.publish_nowait("market.kline", i)
    assert got == [0, 1, 2, 3]
    stats = bus.stats()
    assert stats["broken"]["failures"] == 1 and stats["broken"]["delivered"] == 4
    assert stats["fine"] == {"pattern": "market.kline", "direct": 1, "depth": 0, "maxsize": 0, "delivered": 4,
                             "dropped": 0, "failures": 0}
    assert "direct handler failed" in caplog.text and "strategy bug" in caplog.text
    # and the bus is not left mid-dispatch: later publications are delivered as usual
    bus.publish_nowait("market.kline", 9)
    assert got[-1] == 9


def test_a_direct_handler_must_be_synchronous() -> None:
    bus = EventBus()

    async def handler(event) -> None:
        return None

    with pytest.raises(TypeError, match="must be synchronous"):
        bus.subscribe_direct("market.kline", handler)


async def test_direct_unsubscribe_stops_delivery_even_for_events_already_in_the_deque() -> None:
    bus = EventBus()
    got: list[object] = []
    late = None

    def first(event) -> None:
        if event.channel == "market.kline":
            bus.publish_nowait("signal.s", "x")  # queued behind this event
            late.close()  # and its subscriber leaves before it is delivered

    bus.subscribe_direct("market.kline", first)
    late = bus.subscribe_direct(("market.*", "signal.*"), lambda event: got.append(event.channel))
    bus.publish_nowait("market.kline", 1)
    assert got == []  # closed before its turn for the kline, and before the signal
    bus.publish_nowait("signal.s", "y")
    assert got == []
