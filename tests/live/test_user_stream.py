"""The user-data stream against the simulator server: events parsed, listenKey expiry and -1125 replace the key
and report the interruption, a dropped connection reports it too, and no fill is missed across an expiry."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from live.user_stream import UserStream
from tests.live.conftest import StaticListenKeys
from utils.binance_parse import OrderUpdate, UserEvent
from utils.domain import OrderIntent, OrderType, Side

FAST = {"initial_backoff_sec": 0.05, "max_backoff_sec": 0.2}


class Collected:
    def __init__(self) -> None:
        self.events: list[UserEvent] = []
        self.interruptions: list[str] = []

    async def event(self, event: UserEvent) -> None:
        self.events.append(event)

    def interrupted(self, reason: str) -> None:
        self.interruptions.append(reason)

    def fills(self) -> list[int]:
        return [e.fill.trade_id for e in self.events if isinstance(e, OrderUpdate) and e.fill is not None]


async def _until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def _market(cid: str, side: Side = Side.BUY) -> OrderIntent:
    return OrderIntent(client_order_id=cid, symbol="BTCUSDT", side=side, order_type=OrderType.MARKET,
                       quantity=Decimal("0.010"))


async def _started(sim_server, gateway, got: Collected, **options) -> tuple[UserStream, asyncio.Task[None]]:
    stream = UserStream(gateway, sim_server.private_ws_url, on_event=got.event, on_interrupted=got.interrupted,
                        **{**FAST, **options})
    task = asyncio.create_task(stream.run())
    await stream.wait_connected(5)
    return stream, task


async def test_order_events_arrive_parsed(sim_server, gateway):
    got = Collected()
    stream, task = await _started(sim_server, gateway, got)
    order = await gateway.place_order(_market("u-1"))
    await _until(lambda: len(got.fills()) == 1)
    updates = [e for e in got.events if isinstance(e, OrderUpdate)]
    assert updates[-1].order.client_order_id == "u-1" and updates[-1].order.order_id == order.order_id
    assert got.interruptions == [] and stream.status().listen_keys_created == 1
    await stream.stop()
    await asyncio.wait_for(task, 5)
    assert stream.listen_key is None


async def test_listen_key_expiry_recreates_the_key_and_reports_the_interruption(sim_server, gateway):
    got = Collected()
    stream, task = await _started(sim_server, gateway, got)
    first_key = stream.listen_key
    await gateway.place_order(_market("e-1"))
    await _until(lambda: len(got.fills()) == 1)
    assert sim_server.faults.expire_listen_key() == 1
    await _until(lambda: got.interruptions == ["listenKeyExpired"])
    await stream.wait_connected(5)
    assert stream.listen_key not in (None, first_key) and stream.status().listen_keys_created == 2
    await gateway.place_order(_market("e-2", Side.SELL))  # a fill after the expiry still arrives
    await _until(lambda: len(got.fills()) == 2)
    await stream.stop()
    await asyncio.wait_for(task, 5)


async def test_a_fill_while_the_key_is_dead_is_found_by_the_reconciliation_it_triggers(sim_server, gateway):
    got = Collected()
    stream, task = await _started(sim_server, gateway, got)
    sim_server.faults.expire_listen_key()
    order = await gateway.place_order(_market("gap-1"))  # fills while the stream may not hear it
    await _until(lambda: got.interruptions == ["listenKeyExpired"])
    # What the shell does on the interruption: read the fills over REST (the core's reconciliation).
    trades = await gateway.user_trades("BTCUSDT", start_time=0)
    assert [t.order_id for t in trades] == [order.order_id] and trades[0].quantity == Decimal("0.010")
    assert set(got.fills()) <= {t.trade_id for t in trades}
    await stream.stop()
    await asyncio.wait_for(task, 5)


async def test_keepalive_minus_1125_replaces_the_key(sim_server, gateway):
    got = Collected()
    stream, task = await _started(sim_server, gateway, got, keepalive_sec=0.2)
    await _until(lambda: stream.status().keepalives >= 1)
    await gateway.delete_listen_key(stream.listen_key)
    await _until(lambda: got.interruptions == ["listenKey invalid (-1125)"])
    await stream.wait_connected(5)
    assert stream.status().listen_keys_created == 2
    await gateway.place_order(_market("k-1"))
    await _until(lambda: len(got.fills()) == 1)
    await stream.stop()
    await asyncio.wait_for(task, 5)


async def test_a_dropped_connection_reconnects_and_reports_the_interruption(sim_server, gateway):
    got = Collected()
    stream, task = await _started(sim_server, gateway, got)
    assert sim_server.faults.drop_connections("private") == 1
    await _until(lambda: len(got.interruptions) == 1)
    assert got.interruptions[0].startswith("reconnected")
    await stream.wait_connected(5)
    assert stream.status().connection.reconnects == 1 and stream.status().listen_keys_created == 1
    await gateway.place_order(_market("d-1"))
    await _until(lambda: len(got.fills()) == 1)
    await stream.stop()
    await asyncio.wait_for(task, 5)


async def test_unknown_and_malformed_events_are_skipped_and_the_stream_carries_on():
    got = Collected()
    stream = UserStream(StaticListenKeys(), "ws://127.0.0.1:1/private", on_event=got.event, on_interrupted=got.interrupted)
    await stream._on_frame('{"e": "SURPRISE", "E": 1}')
    await stream._on_frame('{"e": "SURPRISE", "E": 2}')
    await stream._on_frame('{"e": "MARGIN_CALL", "E": 3, "cw": "1", "p": []}')
    for bad in ('{"e": "ORDER_TRADE_UPDATE", "E": 4, "o": {"x": "NEW"}}', "[]", "nope"):
        try:
            await stream._on_frame(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"{bad!r} should not parse")
    assert [type(e).__name__ for e in got.events] == ["OtherUserEvent"]
    assert stream.unknown_events == {"SURPRISE": 2} and stream.status().events == 1
