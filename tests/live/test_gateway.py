"""BinanceGateway against the simulator server: every ExchangeGateway operation and the start-up calls."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from live.gateway import BinanceGateway
from tests.live.conftest import manual_client
from tests.sim_server import START_MS
from utils.domain import (
    AlgoStatus,
    MarginType,
    OrderIntent,
    OrderPurpose,
    OrderStatus,
    OrderType,
    PositionMode,
    Side,
    TimeInForce,
)
from utils.errors import BinanceError, ErrorKind


def _limit(cid: str, price: str = "20000", quantity: str = "0.010") -> OrderIntent:
    return OrderIntent(client_order_id=cid, symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT,
                       quantity=Decimal(quantity), price=Decimal(price), time_in_force=TimeInForce.GTC)


async def test_exchange_info_parses_the_filters_and_sets_the_rate_limits(gateway, sim_server):
    info = await gateway.exchange_info()
    assert {"BTCUSDT", "ETHUSDT"} <= set(info.symbols)
    assert info.trading("BTCUSDT") and not info.trading("NOPEUSDT")
    assert info.symbols["BTCUSDT"].tick_size > 0
    limits = {(limit.kind, limit.interval_ms): limit.limit for limit in info.rate_limits}
    assert limits[("REQUEST_WEIGHT", 60_000)] == sim_server.config.rate_limits.request_weight_per_minute
    assert gateway.rest.rate_limiter.limits == info.rate_limits
    assert not info.problems


async def test_place_query_cancel_and_list_a_limit_order(gateway, sim_server):
    placed = await gateway.place_order(_limit("live-test-1"))
    assert placed.client_order_id == "live-test-1" and placed.status is OrderStatus.NEW
    assert placed.price == Decimal("20000") and placed.quantity == Decimal("0.010")
    queried = await gateway.query_order("BTCUSDT", "live-test-1")
    assert queried.order_id == placed.order_id
    assert [o.client_order_id for o in await gateway.open_orders("BTCUSDT")] == ["live-test-1"]
    assert [o.client_order_id for o in await gateway.open_orders()] == ["live-test-1"]
    cancelled = await gateway.cancel_order("BTCUSDT", "live-test-1")
    assert cancelled.status is OrderStatus.CANCELED
    assert await gateway.open_orders() == []
    with pytest.raises(BinanceError) as caught:
        await gateway.cancel_order("BTCUSDT", "live-test-1")
    assert caught.value.kind is ErrorKind.REJECTED


async def test_a_market_order_fills_and_shows_in_positions_account_and_trades(gateway, sim_server):
    intent = OrderIntent(client_order_id="live-mkt-1", symbol="BTCUSDT", side=Side.BUY,
                         order_type=OrderType.MARKET, quantity=Decimal("0.010"))
    order = await gateway.place_order(intent)
    assert order.status is OrderStatus.FILLED and order.executed_quantity == Decimal("0.010")
    positions = [p for p in await gateway.positions() if p.amount != 0]
    assert [(p.symbol, p.amount) for p in positions] == [("BTCUSDT", Decimal("0.010"))]
    assert [(p.symbol, p.amount) for p in await gateway.positions("BTCUSDT")] == [("BTCUSDT", Decimal("0.010"))]
    trades = await gateway.user_trades("BTCUSDT", start_time=0)
    assert sum(t.quantity for t in trades) == Decimal("0.010") and trades[0].order_id == order.order_id
    account = await gateway.account()
    assert account.wallet_balance < Decimal(10000)  # the taker fee
    exit_intent = OrderIntent(client_order_id="live-mkt-2", symbol="BTCUSDT", side=Side.SELL,
                              order_type=OrderType.MARKET, quantity=Decimal("0.010"), reduce_only=True,
                              purpose=OrderPurpose.EXIT)
    await gateway.place_order(exit_intent)
    assert all(p.amount == 0 for p in await gateway.positions())


async def test_algo_orders_place_query_list_cancel(gateway, sim_server):
    await gateway.place_order(OrderIntent(client_order_id="live-pos", symbol="BTCUSDT", side=Side.BUY,
                                          order_type=OrderType.MARKET, quantity=Decimal("0.010")))
    mark = (await gateway.premium_index("BTCUSDT")).mark_price
    stop = OrderIntent(client_order_id="live-stop", symbol="BTCUSDT", side=Side.SELL,
                       order_type=OrderType.STOP_MARKET, quantity=Decimal(0), close_position=True,
                       stop_price=(mark * Decimal("0.9")).quantize(Decimal("0.1")), purpose=OrderPurpose.STOP_LOSS)
    ack = await gateway.place_algo_order(stop)
    assert ack.client_algo_id == "live-stop" and ack.status is AlgoStatus.NEW and ack.symbol == "BTCUSDT"
    assert (await gateway.query_algo_order("live-stop")).algo_id == ack.algo_id
    assert [a.client_algo_id for a in await gateway.open_algo_orders()] == ["live-stop"]
    assert [a.client_algo_id for a in await gateway.open_algo_orders("BTCUSDT")] == ["live-stop"]
    cancelled = await gateway.cancel_algo_order("live-stop")
    assert cancelled.status is AlgoStatus.CANCELED and cancelled.algo_id == ack.algo_id
    assert cancelled.symbol == "BTCUSDT"
    assert await gateway.open_algo_orders() == []


async def test_position_mode_leverage_and_margin_type(gateway):
    assert await gateway.position_mode() is PositionMode.ONEWAY
    await gateway.set_position_mode(PositionMode.HEDGE)
    assert await gateway.position_mode() is PositionMode.HEDGE
    await gateway.set_position_mode(PositionMode.HEDGE)  # "no need to change" is success
    await gateway.set_position_mode(PositionMode.ONEWAY)
    assert await gateway.set_leverage("BTCUSDT", 7) == 7
    await gateway.set_margin_type("BTCUSDT", MarginType.ISOLATED)
    await gateway.set_margin_type("BTCUSDT", MarginType.ISOLATED)  # "no need to change" is success
    await gateway.set_margin_type("BTCUSDT", MarginType.CROSSED)


async def test_listen_key_create_keepalive_delete(gateway):
    key = await gateway.create_listen_key()
    assert len(key) == 64
    await gateway.keepalive_listen_key(key)
    assert await gateway.create_listen_key() == key  # the active key again
    await gateway.delete_listen_key(key)
    with pytest.raises(BinanceError) as caught:
        await gateway.keepalive_listen_key(key)
    assert caught.value.code == -1125


async def test_klines_mark_the_forming_candle_and_premium_index(gateway, sim_server):
    await sim_server.advance(5 * 60_000)
    candles = await gateway.klines("BTCUSDT", start_time=START_MS, limit=100)
    assert [c.closed for c in candles[-2:]] == [True, False]
    assert all(b.open_time - a.open_time == 60_000 for a, b in zip(candles, candles[1:], strict=False))
    bounded = await gateway.klines("BTCUSDT", start_time=candles[0].open_time, end_time=candles[2].open_time)
    assert [c.open_time for c in bounded] == [c.open_time for c in candles[:3]] and all(c.closed for c in bounded)
    mark = await gateway.premium_index("BTCUSDT")
    assert mark.symbol == "BTCUSDT" and mark.mark_price == candles[-2].close


async def test_server_time_and_no_key_permissions_without_a_sapi_host(gateway):
    assert await gateway.server_time() > 1_700_000_000_000
    assert await gateway.key_permissions() is None


async def test_when_the_order_budget_is_short_an_exit_goes_before_a_waiting_entry(sim_server_factory):
    async with manual_client(sim_server_factory, orders_per_10s=3) as (clock, _, rest):
        gateway = BinanceGateway(rest)
        await gateway.exchange_info()  # 3 orders per 10 s: entries may use 2, the last one is kept for exits
        for number in range(2):
            await gateway.place_order(OrderIntent(client_order_id=f"in-{number}", symbol="BTCUSDT", side=Side.BUY,
                                                  order_type=OrderType.MARKET, quantity=Decimal("0.010")))
        entry = asyncio.create_task(gateway.place_order(OrderIntent(
            client_order_id="in-2", symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET,
            quantity=Decimal("0.010"))))
        await asyncio.sleep(0.3)
        assert not entry.done()
        exit_order = await asyncio.wait_for(gateway.place_order(OrderIntent(
            client_order_id="out-0", symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.MARKET,
            quantity=Decimal("0.020"), reduce_only=True, purpose=OrderPurpose.EXIT)), 2)
        assert exit_order.status is OrderStatus.FILLED and not entry.done()
        clock.advance(10_000)
        assert (await asyncio.wait_for(entry, 2)).status is OrderStatus.FILLED
        assert "rate_limited" not in rest.errors


async def test_client_order_ids_with_every_allowed_character_survive_the_round_trip(gateway, sim_server):
    cid = "a.B:c/d_e-F:9/x.y"  # Binance's alphabet: ^[.A-Z:/a-z0-9_-]{1,36}$
    placed = await gateway.place_order(_limit(cid))
    assert placed.client_order_id == cid
    assert (await gateway.query_order("BTCUSDT", cid)).order_id == placed.order_id
    assert (await gateway.cancel_order("BTCUSDT", cid)).status is OrderStatus.CANCELED
