"""Contract tests: Binance's official SDK (binance-sdk-derivatives-trading-usds-futures 18.1.0), unchanged, against
the simulator server: REST calls parse into the SDK's strict models, and its stream client receives market frames
and an order's user-data events.

The SDK's REST client is synchronous (requests), so its calls run in a thread while the server runs in the test's
event loop; it signs with the real clock, which the server checks against (the market clock is stepped).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from binance_common.configuration import ConfigurationRestAPI, ConfigurationWebSocketStreams
from binance_common.errors import BadRequestError, UnauthorizedError
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
    DerivativesTradingUsdsFutures,
)
from binance_sdk_derivatives_trading_usds_futures.rest_api.models import (
    KlineCandlestickDataIntervalEnum,
    NewAlgoOrderAlgoTypeEnum,
    NewAlgoOrderClosePositionEnum,
    NewAlgoOrderSideEnum,
    NewAlgoOrderTypeEnum,
    NewAlgoOrderWorkingTypeEnum,
    NewOrderNewOrderRespTypeEnum,
    NewOrderSideEnum,
    NewOrderTimeInForceEnum,
    NewOrderTypeEnum,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    KlineCandlestickStreamsIntervalEnum,
    MarkPriceStreamUpdateSpeedEnum,
)

from tests.sim_server import TEST_API_KEY, TEST_API_SECRET, default_candles

MINUTE = 60_000


def sdk_client(server: Any, api_key: str = TEST_API_KEY, api_secret: str = TEST_API_SECRET
               ) -> DerivativesTradingUsdsFutures:
    """The SDK pointed at the local server, as ../shared/docs/binance-usdm-api.md says."""
    return DerivativesTradingUsdsFutures(
        config_rest_api=ConfigurationRestAPI(api_key=api_key, api_secret=api_secret, base_path=server.rest_url,
                                             timeout=5000, retries=0),
        config_ws_streams=ConfigurationWebSocketStreams(stream_url=server.ws_url),
    )


async def call(function: Callable[..., Any], **kwargs: Any) -> Any:
    """One SDK REST call in a thread (it blocks); returns the parsed model."""
    return await asyncio.to_thread(lambda: function(**kwargs).data())


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the expected frames did not arrive in time")
        await asyncio.sleep(0.01)


async def test_market_data_endpoints_parse_into_the_sdk_models(sim_server_factory):
    server = await sim_server_factory(candles=default_candles(minutes=600))
    rest = sdk_client(server).rest_api

    before = time.time_ns() // 1_000_000
    server_time = await call(rest.check_server_time)
    assert before - 5 <= server_time.server_time <= time.time_ns() // 1_000_000 + 5

    info = await call(rest.exchange_information)
    symbols = {s.symbol: s for s in info.symbols}
    assert {"BTCUSDT", "ETHUSDT"} <= set(symbols)
    assert {f.filter_type for f in symbols["BTCUSDT"].filters} >= {"PRICE_FILTER", "LOT_SIZE", "MIN_NOTIONAL"}
    assert {limit.rate_limit_type for limit in info.rate_limits} == {"REQUEST_WEIGHT", "ORDERS"}

    await server.advance(9 * 60 * MINUTE)  # past the 08:00 UTC funding time, 09:01 on the market clock
    klines = await call(rest.kline_candlestick_data, symbol="BTCUSDT",
                        interval=KlineCandlestickDataIntervalEnum["INTERVAL_1m"], limit=3)
    rows = [row.actual_instance if hasattr(row, "actual_instance") else row for row in klines]
    assert len(rows) == 3
    last_closed = server.exchange().last_price("BTCUSDT")
    assert rows[-2][4] == format(last_closed, "f")      # the last closed candle's close
    assert rows[-1][0] == server.market_clock.now_ms() // MINUTE * MINUTE  # the one still forming

    mark = (await call(rest.mark_price, symbol="BTCUSDT")).actual_instance
    assert Decimal(mark.mark_price) == last_closed
    assert mark.next_funding_time == server.exchange().next_funding_time("BTCUSDT")

    history = await call(rest.get_funding_rate_history, symbol="BTCUSDT")
    assert [entry.funding_time for entry in history] == [1_681_977_600_000]  # 2023-04-20 08:00 UTC
    assert Decimal(history[0].funding_rate) == Decimal("0.0001")


async def test_orders_positions_trades_and_listen_keys_through_the_sdk(sim_server):
    rest = sdk_client(sim_server).rest_api
    last = sim_server.exchange().last_price("BTCUSDT")

    account = await call(rest.account_information_v3)
    assert Decimal(account.total_wallet_balance) == Decimal("10000")

    limit_price = (last * Decimal("0.95")).quantize(Decimal("0.1"))
    placed = await call(rest.new_order, symbol="BTCUSDT", side=NewOrderSideEnum["BUY"],
                        type=NewOrderTypeEnum["LIMIT"], time_in_force=NewOrderTimeInForceEnum["GTC"],
                        quantity=Decimal("0.010"), price=limit_price, new_client_order_id="sdk-limit-1")
    assert (placed.status, placed.client_order_id, Decimal(placed.price)) == ("NEW", "sdk-limit-1", limit_price)

    queried = await call(rest.query_order, symbol="BTCUSDT", orig_client_order_id="sdk-limit-1")
    assert queried.order_id == placed.order_id and queried.status == "NEW"
    open_orders = await call(rest.current_all_open_orders, symbol="BTCUSDT")
    assert [o.order_id for o in open_orders] == [placed.order_id]
    cancelled = await call(rest.cancel_order, symbol="BTCUSDT", order_id=placed.order_id)
    assert cancelled.status == "CANCELED"
    assert await call(rest.current_all_open_orders, symbol="BTCUSDT") == []

    bought = await call(rest.new_order, symbol="BTCUSDT", side=NewOrderSideEnum["BUY"],
                        type=NewOrderTypeEnum["MARKET"], quantity=Decimal("0.020"),
                        new_order_resp_type=NewOrderNewOrderRespTypeEnum["RESULT"])
    assert bought.status == "FILLED" and Decimal(bought.executed_qty) == Decimal("0.020")
    positions = await call(rest.position_information_v3, symbol="BTCUSDT")
    assert [(p.position_side, Decimal(p.position_amt)) for p in positions] == [("BOTH", Decimal("0.020"))]

    trigger = (last * Decimal("0.9")).quantize(Decimal("0.1"))
    stop = await call(rest.new_algo_order, algo_type=NewAlgoOrderAlgoTypeEnum["CONDITIONAL"], symbol="BTCUSDT",
                      side=NewAlgoOrderSideEnum["SELL"], type=NewAlgoOrderTypeEnum["STOP_MARKET"],
                      trigger_price=trigger, close_position=NewAlgoOrderClosePositionEnum["TRUE"],
                      working_type=NewAlgoOrderWorkingTypeEnum["MARK_PRICE"], client_algo_id="sdk-stop-1")
    assert (stop.algo_status, stop.order_type, Decimal(stop.trigger_price)) == ("NEW", "STOP_MARKET", trigger)
    found = await call(rest.query_algo_order, algo_id=stop.algo_id)
    assert found.client_algo_id == "sdk-stop-1"
    gone = await call(rest.cancel_algo_order, client_algo_id="sdk-stop-1")
    assert (gone.algo_id, gone.code) == (stop.algo_id, "200")

    trades = await call(rest.account_trade_list, symbol="BTCUSDT")
    assert [(t.order_id, Decimal(t.qty), t.buyer) for t in trades] == [(bought.order_id, Decimal("0.020"), True)]

    key = (await call(rest.start_user_data_stream)).listen_key
    assert len(key) == 64
    assert (await call(rest.keepalive_user_data_stream)).listen_key == key
    await call(rest.close_user_data_stream)
    with pytest.raises(BadRequestError):  # -1125: the key is gone
        await call(rest.keepalive_user_data_stream)


async def test_the_sdk_sees_binance_errors(sim_server):
    rest = sdk_client(sim_server).rest_api
    with pytest.raises(BadRequestError) as refused:
        await call(rest.new_order, symbol="BTCUSDT", side=NewOrderSideEnum["BUY"], type=NewOrderTypeEnum["LIMIT"],
                   time_in_force=NewOrderTimeInForceEnum["GTC"], quantity=Decimal("0.0105"), price=Decimal("1000"))
    assert refused.value.status_code == -1111  # the SDK puts Binance's code here
    with pytest.raises(BadRequestError) as float_quantity:  # the SDK writes this float as 1e-05
        await call(rest.new_order, symbol="BTCUSDT", side=NewOrderSideEnum["BUY"], type=NewOrderTypeEnum["MARKET"],
                   quantity=0.00001)
    assert float_quantity.value.status_code == -1100
    stranger = sdk_client(sim_server, api_key="unknownKey", api_secret="x").rest_api
    with pytest.raises(UnauthorizedError) as unknown:
        await call(stranger.account_information_v3)
    assert unknown.value.status_code == -2015


async def test_the_sdk_stream_client_receives_market_frames_and_user_data(sim_server):
    client = sdk_client(sim_server)
    streams = client.websocket_streams
    await streams.create_connection()
    try:
        klines: list[Any] = []
        marks: list[Any] = []
        events: list[Any] = []
        kline_stream = await streams.kline_candlestick_streams(
            symbol="BTCUSDT", interval=KlineCandlestickStreamsIntervalEnum["INTERVAL_1m"])
        kline_stream.on("message", klines.append)
        mark_stream = await streams.mark_price_stream(symbol="BTCUSDT",
                                                      update_speed=MarkPriceStreamUpdateSpeedEnum["UPDATE_SPEED_1s"])
        mark_stream.on("message", marks.append)
        key = (await call(client.rest_api.start_user_data_stream)).listen_key
        user = await streams.user_data(key)
        user.on("message", events.append)
        await wait_for(lambda: sim_server.user_streams.is_active(key)
                       and sim_server.market_streams.subscriber_count() == 2)
        await asyncio.sleep(0.05)  # the SDK's user-data SUBSCRIBE is sent after its own 0.5 s pause

        await sim_server.advance(MINUTE)   # one candle closes; a second of market time passes
        await wait_for(lambda: any(k.k.x for k in klines) and marks)
        closed = next(k for k in klines if k.k.x)
        assert (closed.s, closed.k.i) == ("BTCUSDT", "1m")
        assert Decimal(closed.k.c) == sim_server.exchange().last_price("BTCUSDT")
        assert Decimal(marks[-1].p) == sim_server.exchange().mark_price("BTCUSDT")

        await wait_for(lambda: len(sim_server.user_streams._subscribers.get(key, {})) == 1)
        await call(client.rest_api.new_order, symbol="BTCUSDT", side=NewOrderSideEnum["BUY"],
                   type=NewOrderTypeEnum["MARKET"], quantity=Decimal("0.010"), new_client_order_id="sdk-uds-1")
        await sim_server.drain()
        await wait_for(lambda: len(events) >= 3)
        kinds = [event.actual_instance.__class__.__name__ for event in events]
        assert kinds[:3] == ["OrderTradeUpdate", "OrderTradeUpdate", "AccountUpdate"]
        new, trade = events[0].actual_instance, events[1].actual_instance
        assert (new.o.c, new.o.x, trade.o.x, trade.o.X) == ("sdk-uds-1", "NEW", "TRADE", "FILLED")
    finally:
        await streams.close_connection(close_session=True)


async def test_the_sdk_signs_with_an_ed25519_key(sim_server_factory):
    from Crypto.PublicKey import ECC

    from simulator.server import Credentials

    private = ECC.generate(curve="ed25519")
    server = await sim_server_factory(credentials=[Credentials(
        "sdkEd25519Key", ed25519_public_key_pem=private.public_key().export_key(format="PEM"))])
    client = DerivativesTradingUsdsFutures(config_rest_api=ConfigurationRestAPI(
        api_key="sdkEd25519Key", private_key=private.export_key(format="PEM"), base_path=server.rest_url,
        timeout=5000, retries=0))
    account = await call(client.rest_api.account_information_v3)
    placed = await call(client.rest_api.new_order, symbol="ETHUSDT", side=NewOrderSideEnum["SELL"],
                        type=NewOrderTypeEnum["MARKET"], quantity=Decimal("0.100"))
    assert Decimal(account.available_balance) == Decimal("10000") and placed.status == "NEW"
