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
