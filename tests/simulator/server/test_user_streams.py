"""User data on /private: the three documented forms, the events filter, listenKey lifetime on the real clock
(start / keepalive / close / expiry), the events each account change produces, and independent accounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from simulator.server.connections import ConnectionRules
from tests.sim_server import (
    OTHER_API_KEY,
    OTHER_API_SECRET,
    BinanceTestClient,
    StreamClient,
    manual_wall_clock,
)

HOUR = 3_600_000


async def _key(client: BinanceTestClient) -> str:
    reply = await client.raw("POST", "/fapi/v1/listenKey")
    assert reply.status == 200, reply.body
    return reply.body["listenKey"]


async def _market_buy(client: BinanceTestClient, quantity: str = "0.010") -> None:
    reply = await client.signed("POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                           "quantity": quantity, "newClientOrderId": "uds-buy"})
    assert reply.status == 200, reply.body


@pytest.mark.parametrize("form", ["ws", "stream", "subscribe"])
async def test_an_order_reaches_every_documented_form(sim_server, form):
    async with BinanceTestClient(sim_server.rest_url) as rest:
        key = await _key(rest)
        url = {"ws": f"/ws?listenKey={key}", "stream": f"/stream?listenKey={key}", "subscribe": "/stream"}[form]
        async with StreamClient(sim_server.private_ws_url + url) as stream:
            if form == "subscribe":
                assert await stream.request("SUBSCRIBE", [key], 1) == {"result": None, "id": 1}
                assert (await stream.request("LIST_SUBSCRIPTIONS", request_id=2))["result"] == [key]
            await _market_buy(rest)
            frames = [await stream.next() for _ in range(3)]
    if form == "ws":
        events = frames
    else:
        assert {frame["stream"] for frame in frames} == {key}
        events = [frame["data"] for frame in frames]
    assert [(e["e"], e.get("o", {}).get("x")) for e in events] == [
        ("ORDER_TRADE_UPDATE", "NEW"), ("ORDER_TRADE_UPDATE", "TRADE"), ("ACCOUNT_UPDATE", None)]
    assert events[0]["o"]["c"] == "uds-buy"
    assert events[0]["E"] == sim_server.market_clock.now_ms()  # user data carries market time


async def test_events_filter(sim_server):
    async with BinanceTestClient(sim_server.rest_url) as rest:
        key = await _key(rest)
        async with StreamClient(f"{sim_server.private_ws_url}/ws?listenKey={key}&events=ACCOUNT_UPDATE") as stream:
            await _market_buy(rest)
            event = await stream.next()
            assert await stream.nothing()
    assert event["e"] == "ACCOUNT_UPDATE" and event["a"]["m"] == "ORDER"


async def test_algo_and_config_events(sim_server):
    async with BinanceTestClient(sim_server.rest_url) as rest:
        key = await _key(rest)
        async with StreamClient(f"{sim_server.private_ws_url}/ws?listenKey={key}") as stream:
            await rest.signed("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 7})
            config = await stream.next()
            last = sim_server.exchange().last_price("BTCUSDT")
            reply = await rest.signed("POST", "/fapi/v1/algoOrder", {
                "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
                "quantity": "0.010", "triggerPrice": str((last * Decimal("0.9")).quantize(Decimal("0.1")))})
            assert reply.status == 200, reply.body
            algo = await stream.next()
    assert (config["e"], config["ac"]) == ("ACCOUNT_CONFIG_UPDATE", {"s": "BTCUSDT", "l": 7})
    assert algo["e"] == "ALGO_UPDATE" and algo["o"]["X"] == "NEW" and algo["o"]["aid"] == reply.body["algoId"]


async def test_listen_key_lifecycle_on_the_real_clock(sim_server_factory):
    wall = manual_wall_clock()
    # The real clock jumps by the hour here; no client could answer pings in between.
    server = await sim_server_factory(wall_clock=wall, connection_rules=ConnectionRules(pong_timeout_ms=10 * HOUR))
    async with BinanceTestClient(server.rest_url, clock_ms=wall.now_ms) as rest:
        key = await _key(rest)
        assert await _key(rest) == key  # POST while active: the same key
        wall.advance(59 * 60_000)
        assert (await rest.raw("PUT", "/fapi/v1/listenKey")).body == {"listenKey": key}
        async with StreamClient(f"{server.private_ws_url}/ws?listenKey={key}") as stream:
            wall.advance(59 * 60_000)
            server.tick()
            await server.advance(1000)  # an hour of market time is not what counts
            await server.advance(HOUR)
            assert await stream.nothing()
            wall.advance(60_000)
            server.tick()
            expired = await stream.next()
            await _market_buy(rest)
            assert await stream.nothing()  # an expired key delivers nothing more
        keepalive = await rest.raw("PUT", "/fapi/v1/listenKey")
        fresh = await _key(rest)
    assert expired == {"e": "listenKeyExpired", "E": server.market_clock.now_ms(), "listenKey": key}
    assert (keepalive.status, keepalive.code) == (400, -1125)
    assert fresh != key


async def test_closed_and_unknown_keys(sim_server):
    async with BinanceTestClient(sim_server.rest_url) as rest:
        key = await _key(rest)
        assert (await rest.raw("DELETE", "/fapi/v1/listenKey")).body == {}
        async with StreamClient(f"{sim_server.private_ws_url}/stream") as stream:
            refused = await stream.request("SUBSCRIBE", [key], 3)
        handshake = await rest.raw("GET", f"/private/ws?listenKey={key}")
        named_wrong = await rest.raw("PUT", "/fapi/v1/listenKey?listenKey=notMine")
    assert refused == {"error": {"code": 2, "msg": "Invalid request: invalid listenKey"}, "id": 3}
    assert (handshake.status, handshake.code) == (400, -1125)
    assert named_wrong.code == -1125


async def test_accounts_are_independent(sim_server_factory):
    server = await sim_server_factory(two_accounts=True)
    async with (BinanceTestClient(server.rest_url) as first,
                BinanceTestClient(server.rest_url, OTHER_API_KEY, OTHER_API_SECRET) as second):
        first_key, second_key = await _key(first), await _key(second)
        async with (StreamClient(f"{server.private_ws_url}/ws?listenKey={first_key}") as first_stream,
                    StreamClient(f"{server.private_ws_url}/ws?listenKey={second_key}") as second_stream):
            await _market_buy(first)
            assert (await first_stream.next())["e"] == "ORDER_TRADE_UPDATE"
            assert await second_stream.nothing()
        second_account = await second.signed("GET", "/fapi/v3/positionRisk")
    assert first_key != second_key
    assert second_account.body == []
    assert server.exchange(OTHER_API_KEY).positions() == []
    assert len(server.exchange().positions()) == 1
