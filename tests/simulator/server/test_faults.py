"""Every fault switch, from Python and from the admin endpoint (loopback only, token required)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from simulator.server.admin import TOKEN_HEADER, refusal
from tests.sim_server import BinanceTestClient, StreamClient, manual_wall_clock

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010", "newClientOrderId": "fault-1"}
CLOSE = {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.010", "reduceOnly": "true"}


async def _order_exists(client: BinanceTestClient, client_order_id: str = "fault-1") -> bool:
    reply = await client.signed("GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": client_order_id})
    assert reply.status == 200 or reply.code == -2013, reply.body
    return reply.status == 200


async def test_delayed_answers(sim_server):
    sim_server.faults.delay(300, count=1, path="/fapi/v1/order")
    async with BinanceTestClient(sim_server.rest_url) as client:
        started = time.monotonic()
        reply = await client.signed("POST", "/fapi/v1/order", ORDER)
        slow = time.monotonic() - started
        started = time.monotonic()
        await client.signed("GET", "/fapi/v1/openOrders")
        quick = time.monotonic() - started
    assert reply.status == 200 and slow >= 0.3 > quick


@pytest.mark.parametrize("executed", [True, False])
async def test_time_out_with_or_without_execution(sim_server, executed):
    sim_server.faults.time_out(executed=executed, path="/fapi/v1/order")
    async with BinanceTestClient(sim_server.rest_url) as client:
        with pytest.raises(TimeoutError):
            await client.signed("POST", "/fapi/v1/order", ORDER, timeout=0.3)
        assert await _order_exists(client) is executed
        again = await client.signed("POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "fault-2"})
    assert again.status == 200  # the fault was for one request


@pytest.mark.parametrize("executed", [True, False])
async def test_503_unknown_error_with_or_without_execution(sim_server, executed):
    sim_server.faults.unknown_error(executed=executed)
    async with BinanceTestClient(sim_server.rest_url) as client:
        reply = await client.signed("POST", "/fapi/v1/order", ORDER)
        assert await _order_exists(client) is executed
    assert (reply.status, reply.body) == (503, {
        "code": -1000, "msg": "Unknown error, please check your request or try again later."})


async def test_503_service_unavailable_executes_nothing(sim_server):
    sim_server.faults.service_unavailable(count=2, method="POST")
    async with BinanceTestClient(sim_server.rest_url) as client:
        replies = [await client.signed("POST", "/fapi/v1/order", ORDER) for _ in range(2)]
        assert not await _order_exists(client)
        third = await client.signed("POST", "/fapi/v1/order", ORDER)
    assert [(r.status, r.body["msg"]) for r in replies] == [(503, "Service Unavailable.")] * 2
    assert third.status == 200


async def test_throttled_orders_but_not_reduce_only_ones(sim_server):
    sim_server.faults.throttle(count=None)
    async with BinanceTestClient(sim_server.rest_url) as client:
        entry = await client.signed("POST", "/fapi/v1/order", ORDER)
        query = await client.signed("GET", "/fapi/v1/openOrders")
        sim_server.faults.clear()
        await client.signed("POST", "/fapi/v1/order", ORDER)
        sim_server.faults.throttle(count=None)
        exit_order = await client.signed("POST", "/fapi/v1/order", CLOSE)
        sim_server.faults.clear()
        await client.signed("POST", "/fapi/v1/order", ORDER)
        sim_server.faults.throttle(count=1, exempt_reduce_only=False)
        strict = await client.signed("POST", "/fapi/v1/order", CLOSE)
    assert (entry.status, entry.code) == (503, -1008)
    assert entry.body["msg"].startswith("Request throttled by system-level protection.")
    assert query.status == 200 and exit_order.status == 200
    assert strict.code == -1008


async def test_reject_the_next_orders_with_a_given_code(sim_server):
    sim_server.faults.reject_orders(2, -2019, "Margin is insufficient.")
    async with BinanceTestClient(sim_server.rest_url) as client:
        account = await client.signed("GET", "/fapi/v3/account")
        first = await client.signed("POST", "/fapi/v1/order", ORDER)
        second = await client.signed("POST", "/fapi/v1/algoOrder", {
            "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
            "triggerPrice": "20000", "closePosition": "true"})
        third = await client.signed("POST", "/fapi/v1/order", ORDER)
    assert account.status == 200
    assert [(r.status, r.code) for r in (first, second)] == [(400, -2019)] * 2
    assert first.body["msg"] == "Margin is insufficient."
    assert third.status == 200


async def test_a_shifted_server_clock(sim_server):
    async with BinanceTestClient(sim_server.rest_url) as client:
        sim_server.faults.shift_clock(3000)
        shifted = (await client.public("GET", "/fapi/v1/time")).body["serverTime"] - client.clock_ms()
        within = await client.signed("GET", "/fapi/v2/balance")
        sim_server.faults.shift_clock(6000)
        behind = await client.signed("GET", "/fapi/v2/balance")
        sim_server.faults.shift_clock(-1500)
        ahead = await client.signed("GET", "/fapi/v2/balance")
        sim_server.faults.clear()
        back = await client.signed("GET", "/fapi/v2/balance")
    assert 2900 <= shifted <= 3100
    assert within.status == 200 and back.status == 200
    assert behind.code == -1021 and ahead.code == -1021


async def test_blackout_answers_nothing_then_recovers(sim_server_factory):
    wall = manual_wall_clock()
    server = await sim_server_factory(wall_clock=wall)
    async with (BinanceTestClient(server.rest_url, clock_ms=wall.now_ms) as client,
                StreamClient(f"{server.market_ws_url}/ws/btcusdt@markPrice@1s") as stream):
        await server.advance(1000)
        assert (await stream.next())["e"] == "markPriceUpdate"
        server.faults.blackout(5)
        pending = asyncio.ensure_future(client.signed("POST", "/fapi/v1/order", ORDER))
        await asyncio.sleep(0.1)
        await server.advance(3000)
        assert not pending.done()
        assert await stream.nothing()
        wall.advance(5000)
        with pytest.raises(aiohttp.ClientError):
            await pending
        assert not await _order_exists(client)
        await server.advance(1000)
        assert (await stream.next())["e"] == "markPriceUpdate"


async def test_drop_one_or_all_connections(sim_server):
    async with (StreamClient(f"{sim_server.market_ws_url}/ws/btcusdt@markPrice@1s") as first,
                StreamClient(f"{sim_server.market_ws_url}/ws/ethusdt@markPrice@1s") as second,
                StreamClient(f"{sim_server.ws_url}/public/ws") as public):
        assert sim_server.faults.drop_connections("market", only_one=True) == 1
        dropped = await first.next()
        await sim_server.advance(1000)
        assert (await second.next())["s"] == "ETHUSDT"
        assert sim_server.faults.drop_connections() == 2
        for client in (second, public):
            gone = await client.next()
            assert gone.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)  # no close frame: cut
    assert dropped.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


async def test_silenced_connections_stay_open_and_send_nothing(sim_server):
    async with (StreamClient(f"{sim_server.market_ws_url}/ws/btcusdt@markPrice@1s") as quiet,
                StreamClient(f"{sim_server.market_ws_url}/ws/btcusdt@markPrice@1s") as loud):
        await sim_server.advance(1000)
        await quiet.next()
        await loud.next()
        connection_id = next(c.id for c in sim_server.hub.all())
        assert sim_server.faults.silence_connections(connection_id=connection_id) == 1
        await sim_server.advance(1000)
        assert (await loud.next())["e"] == "markPriceUpdate"
        assert await quiet.nothing()
        assert not quiet.ws.closed
        sim_server.faults.clear()
        await sim_server.advance(1000)
        assert (await quiet.next())["e"] == "markPriceUpdate"


async def test_expire_a_listen_key_now(sim_server):
    async with BinanceTestClient(sim_server.rest_url) as client:
        key = (await client.raw("POST", "/fapi/v1/listenKey")).body["listenKey"]
        async with StreamClient(f"{sim_server.private_ws_url}/ws?listenKey={key}") as stream:
            assert sim_server.faults.expire_listen_key() == 1
            event = await stream.next()
        keepalive = await client.raw("PUT", "/fapi/v1/listenKey")
    assert (event["e"], event["listenKey"]) == ("listenKeyExpired", key)
    assert keepalive.code == -1125


def test_admin_requests_are_refused_without_a_token_from_afar_or_with_the_wrong_token():
    assert refusal(None, "127.0.0.1", "t").code == -1002
    assert refusal("t", "10.1.2.3", "t").http_status == 403
    assert refusal("t", "127.0.0.1", "wrong").http_status == 403
    assert refusal("t", "::1", "t") is None and refusal("t", "127.0.0.1", "t") is None


async def test_admin_endpoint_switches_faults_and_moves_the_clock(sim_server_factory):
    closed = await sim_server_factory()
    server = await sim_server_factory(admin_token="s3cret")
    admin = {TOKEN_HEADER: "s3cret"}
    async with BinanceTestClient(server.rest_url) as client:
        off = await client.raw("GET", "/admin/status", headers=admin)
        async with BinanceTestClient(closed.rest_url) as other:
            refused = await other.raw("GET", "/admin/status", headers=admin)
        wrong = await client.raw("GET", "/admin/status", headers={TOKEN_HEADER: "guess"})
        fault = await client.raw("POST", "/admin/faults", '{"fault": "service_unavailable", "path": "/fapi/v1/time"}',
                                 headers={**admin, "Content-Type": "application/json"})
        hit = await client.public("GET", "/fapi/v1/time")
        bad_name = await client.raw("POST", "/admin/faults", '{"fault": "meteor"}', headers=admin)
        bad_argument = await client.raw("POST", "/admin/faults", '{"fault": "blackout", "minutes": 3}',
                                        headers=admin)
        not_json = await client.raw("POST", "/admin/faults", "fault=delay", headers=admin)
        before = server.market_clock.now_ms()
        moved = await client.raw("POST", "/admin/clock", '{"advanceMs": 60000}', headers=admin)
        shift = await client.raw("POST", "/admin/faults", '{"fault": "shift_clock", "shiftMs": 2500}',
                                 headers=admin)
        status = await client.raw("GET", "/admin/status", headers=admin)
        cleared = await client.raw("DELETE", "/admin/faults", headers=admin)
        lifted = await client.raw("DELETE", "/admin/bans", headers=admin)
    assert off.status == 200 and off.body["stepped"] is True
    assert off.body["accounts"][0]["keyType"] == "HMAC-SHA256"
    assert (refused.status, refused.code) == (403, -1002)
    assert wrong.status == 403
    assert fault.status == 200 and fault.body["result"]["kind"] == "service_unavailable"
    assert (hit.status, hit.body["msg"]) == (503, "Service Unavailable.")
    assert bad_name.code == bad_argument.code == not_json.code == -1102
    assert moved.body == {"marketTime": before + 60000} == {"marketTime": server.market_clock.now_ms()}
    assert shift.body == {"result": {"clockShiftMs": 2500}}
    assert status.body["faults"]["clockShiftMs"] == 2500
    assert cleared.status == lifted.status == 200 and server.gateway.shift_ms == 0
