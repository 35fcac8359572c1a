"""Market streams on the routed paths: raw and combined forms, live SUBSCRIBE, nothing on /public or unrouted paths,
klines while forming (throttled on real time) and on close, mark-price cadences, control-frame errors, and the
connection rules (pings, pong deadline, message rate, stream cap, the 24 h cut). Clocks are stepped throughout."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp

from simulator.server import ServerConfig, SimServer
from simulator.server.connections import ConnectionRules
from tests.sim_server import START_MS, TEST_CREDENTIALS, StreamClient, default_candles, manual_wall_clock
from utils.clock import SimulatedClock

MINUTE = 60_000


async def _server(factory, **config):
    wall = manual_wall_clock()
    server = await factory(wall_clock=wall, **config)
    return server, wall


async def test_raw_kline_stream_forming_then_closed(sim_server_factory):
    server, wall = await _server(sim_server_factory)
    minute = START_MS + MINUTE  # the market clock starts one minute into the data
    async with StreamClient(f"{server.market_ws_url}/ws/btcusdt@kline_1m") as client:
        await server.advance(30_000)
        forming = await client.next()
        assert (forming["e"], forming["s"], forming["E"]) == ("kline", "BTCUSDT", minute + 30_000)
        assert (forming["k"]["t"], forming["k"]["i"], forming["k"]["x"]) == (minute, "1m", False)
        assert Decimal(forming["k"]["v"]) > 0

        await server.advance(10_000)  # the real clock has not moved: no update within 250 ms
        assert await client.nothing()

        wall.advance(100)
        await server.advance(20_000)  # the close is always sent, whatever the real clock
        closed = await client.next()
        candle = server.replay.klines("BTCUSDT", "1m", minute + MINUTE, limit=2)[0]
        assert (closed["E"], closed["k"]["t"], closed["k"]["T"], closed["k"]["x"]) == (
            minute + MINUTE, minute, minute + MINUTE - 1, True)
        assert (closed["k"]["o"], closed["k"]["h"], closed["k"]["l"], closed["k"]["c"], closed["k"]["v"]) == (
            format(candle.open, "f"), format(candle.high, "f"), format(candle.low, "f"), format(candle.close, "f"),
            format(candle.volume, "f"))
        assert closed["k"]["n"] == candle.trades
        assert closed["k"]["L"] - closed["k"]["f"] + 1 == candle.trades
        assert await client.nothing()

        wall.advance(250)  # 250 ms of real time later, the next candle's update may go out
        await server.advance(1000)
        following = await client.next()
        assert (following["k"]["t"], following["k"]["x"]) == (minute + MINUTE, False)


async def test_several_candles_closing_in_one_step_are_each_sent_closed(sim_server_factory):
    server, _ = await _server(sim_server_factory)
    async with StreamClient(f"{server.market_ws_url}/ws/ethusdt@kline_1m") as client:
        await server.advance(3 * MINUTE)
        closed = [await client.next() for _ in range(3)]
    assert [c["k"]["x"] for c in closed] == [True, True, True]
    assert [c["k"]["t"] for c in closed] == [START_MS + MINUTE * i for i in (1, 2, 3)]


async def test_combined_stream_wraps_frames_with_the_stream_name(sim_server_factory):
    server, _ = await _server(sim_server_factory)
    url = f"{server.market_ws_url}/stream?streams=btcusdt@kline_1m/ethusdt@markPrice@1s"
    async with StreamClient(url) as client:
        await server.advance(1000)
        seen = {}
        while len(seen) < 2:
            frame = await client.next()
            seen[frame["stream"]] = frame["data"]
    assert seen["btcusdt@kline_1m"]["e"] == "kline"
    mark = seen["ethusdt@markPrice@1s"]
    exchange = server.exchange()
    assert (mark["e"], mark["s"], Decimal(mark["p"]), Decimal(mark["r"]), mark["T"]) == (
        "markPriceUpdate", "ETHUSDT", exchange.mark_price("ETHUSDT"), exchange.funding_rate("ETHUSDT"),
        exchange.next_funding_time("ETHUSDT"))
    assert set(mark) == {"e", "E", "s", "p", "ap", "i", "P", "r", "T"}


async def test_live_subscribe_unsubscribe_and_list(sim_server_factory):
    server, _ = await _server(sim_server_factory)
    async with StreamClient(f"{server.market_ws_url}/stream") as client:
        assert await client.request("SUBSCRIBE", ["btcusdt@markPrice@1s", "ethusdt@markPrice"], 7) == {
            "result": None, "id": 7}
        assert await client.request("LIST_SUBSCRIPTIONS", request_id="a-uuid-string") == {
            "result": ["btcusdt@markPrice@1s", "ethusdt@markPrice"], "id": "a-uuid-string"}
        frames = [await client.next(), await client.next()]
        assert {f["stream"] for f in frames} == {"btcusdt@markPrice@1s", "ethusdt@markPrice"}
        assert await client.request("UNSUBSCRIBE", ["btcusdt@markPrice@1s", "ethusdt@markPrice"], 8) == {
            "result": None, "id": 8}
        await server.advance(10_000)
        assert await client.nothing()
        assert await client.request("LIST_SUBSCRIPTIONS", request_id=None) == {"result": [], "id": None}


async def test_mark_price_cadence_follows_market_time(sim_server_factory):
    server, _ = await _server(sim_server_factory)
    url = f"{server.market_ws_url}/stream?streams=btcusdt@markPrice/btcusdt@markPrice@1s/!markPrice@arr@1s"
    async with StreamClient(url) as client:
        counts = {"btcusdt@markPrice": 0, "btcusdt@markPrice@1s": 0, "!markPrice@arr@1s": 0}
        for _ in range(3):
            counts[(await client.next())["stream"]] += 1  # one of each as the subscription starts
        for _ in range(6):
            await server.advance(1000)
        await server.advance(10)
        frames = []
        while True:
            try:
                frames.append(await client.next(timeout=0.2))
            except TimeoutError:
                break
    for frame in frames:
        counts[frame["stream"]] += 1
    assert counts == {"btcusdt@markPrice": 3, "btcusdt@markPrice@1s": 7, "!markPrice@arr@1s": 7}
    everyone = next(f for f in frames if f["stream"] == "!markPrice@arr@1s")["data"]
    assert [entry["s"] for entry in everyone] == ["BTCUSDT", "ETHUSDT"]  # the symbols with a price


async def test_public_and_unrouted_paths_deliver_no_market_data(sim_server_factory):
    server, _ = await _server(sim_server_factory)
    async with (StreamClient(f"{server.ws_url}/public/ws/btcusdt@markPrice@1s") as public_raw,
                StreamClient(f"{server.ws_url}/ws/btcusdt@kline_1m") as unrouted,
                StreamClient(f"{server.ws_url}/public/stream") as public_live,
                StreamClient(f"{server.ws_url}/stream?streams=btcusdt@markPrice") as unrouted_combined):
        answer = await public_live.request("SUBSCRIBE", ["btcusdt@kline_1m"], 1)
        assert answer == {"result": None, "id": 1}
        assert (await public_live.request("LIST_SUBSCRIPTIONS", request_id=2))["result"] == ["btcusdt@kline_1m"]
        await server.advance(2 * MINUTE)
        for client in (public_raw, unrouted, public_live, unrouted_combined):
            assert await client.nothing()


async def test_set_and_get_the_combined_property(sim_server_factory):
    server, _ = await _server(sim_server_factory)
    async with StreamClient(f"{server.market_ws_url}/ws") as client:
        assert await client.request("GET_PROPERTY", ["combined"], 1) == {"result": False, "id": 1}
        assert await client.request("SET_PROPERTY", ["combined", True], 2) == {"result": None, "id": 2}
        assert await client.request("SUBSCRIBE", ["btcusdt@markPrice@1s"], 3) == {"result": None, "id": 3}
        frame = await client.next()
    assert frame["stream"] == "btcusdt@markPrice@1s" and frame["data"]["e"] == "markPriceUpdate"


async def test_bad_control_frames_get_binance_shaped_errors(sim_server_factory):
    server, _ = await _server(sim_server_factory)
    async with StreamClient(f"{server.market_ws_url}/stream") as client:
        await client.send("{not json")
        bad_json = await client.next()
        await client.send({"method": "SUBSCRIBE", "params": ["btcusdt@markPrice"], "id": -4})
        bad_id = await client.next()
        await client.send({"method": "PUBLISH", "params": [], "id": 5})
        bad_method = await client.next()
        await client.send({"method": "SUBSCRIBE", "params": [1, 2], "id": 6})
        bad_params = await client.next()
        await client.send({"method": "LIST_SUBSCRIPTIONS", "id": 9, "extra": True})
        extra = await client.next()
        await client.send({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 10})
        bad_value = await client.next()
    assert bad_json["error"]["code"] == 3 and bad_json["error"]["msg"].startswith("Invalid JSON")
    assert bad_id == {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
                      "id": None}
    assert bad_method["error"]["code"] == 2 and bad_method["id"] == 5
    assert "unknown variant `PUBLISH`" in bad_method["error"]["msg"]
    assert bad_params["error"]["code"] == 2 and bad_params["id"] == 6
    assert extra == {"error": {"code": 0, "msg": "Unknown property"}, "id": 9}
    assert bad_value["error"] == {"code": 1, "msg": "Invalid value type: expected Boolean"}


async def test_stream_cap_per_connection(sim_server_factory):
    server, _ = await _server(sim_server_factory, connection_rules=ConnectionRules(max_streams=2))
    async with StreamClient(f"{server.market_ws_url}/stream") as client:
        refused = await client.request("SUBSCRIBE", ["a@markPrice", "b@markPrice", "c@markPrice"], 1)
        accepted = await client.request("SUBSCRIBE", ["a@markPrice", "b@markPrice"], 2)
    assert refused["error"]["code"] == 2 and accepted == {"result": None, "id": 2}


async def test_server_pings_and_drops_a_client_that_never_pongs(sim_server_factory):
    rules = ConnectionRules(ping_interval_ms=180_000, pong_timeout_ms=600_000)
    server, wall = await _server(sim_server_factory, connection_rules=rules)
    async with (aiohttp.ClientSession() as session,
                session.ws_connect(f"{server.market_ws_url}/ws", autoping=False) as silent,
                StreamClient(f"{server.market_ws_url}/ws") as polite):
        await asyncio.sleep(0.05)
        wall.advance(180_000)
        server.tick()
        ping = await silent.receive(timeout=2)
        assert ping.type is aiohttp.WSMsgType.PING
        with_pong = asyncio.ensure_future(polite.next(timeout=2))
        for _ in range(3):
            wall.advance(200_000)
            server.tick()
            await asyncio.sleep(0.05)
        assert polite.pings >= 3
        closing = await silent.receive(timeout=2)  # no pong for 600 s: closed
        while closing.type is aiohttp.WSMsgType.PING:
            closing = await silent.receive(timeout=2)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert not polite.ws.closed
        with_pong.cancel()


async def test_more_than_ten_messages_a_second_closes_the_connection(sim_server_factory):
    server, _ = await _server(sim_server_factory)
    async with StreamClient(f"{server.market_ws_url}/stream") as client:
        for number in range(11):
            await client.send({"method": "LIST_SUBSCRIPTIONS", "id": number})
        answers = []
        while True:
            frame = await client.next()
            if not isinstance(frame, dict):
                break
            answers.append(frame)
    assert len(answers) == 10
    assert frame.type is aiohttp.WSMsgType.CLOSE and frame.data == 1008


async def test_connections_are_cut_after_24_hours_of_market_time(sim_server_factory):
    server, _ = await _server(sim_server_factory)
    async with StreamClient(f"{server.market_ws_url}/ws") as client:
        await server.advance(24 * 60 * MINUTE - 1)
        assert await client.nothing()
        await server.advance(1)
        closing = await client.next()
    assert closing.type is aiohttp.WSMsgType.CLOSE


async def test_frames_have_the_documented_fields_and_types(sim_server_factory, payloads_dir):
    def shape(document):
        if isinstance(document, dict):
            return {key: shape(value) for key, value in document.items()}
        return type(document).__name__

    server, _ = await _server(sim_server_factory)
    url = f"{server.market_ws_url}/stream?streams=btcusdt@kline_1m/btcusdt@markPrice/!markPrice@arr"
    async with StreamClient(url) as client:
        await server.advance(MINUTE)
        frames = {}
        while len(frames) < 3:
            frame = await client.next()
            frames[frame["stream"]] = frame
    kline = json.loads((payloads_dir / "ws_combined_wrapper_kline_DERIVED.json").read_text())
    mark = json.loads((payloads_dir / "ws_mark_price_update.json").read_text())
    every_mark = json.loads((payloads_dir / "ws_mark_price_update_all_market.json").read_text())
    assert shape(frames["btcusdt@kline_1m"]) == shape(kline)
    assert shape(frames["btcusdt@markPrice"]["data"]) == shape(mark)
    assert shape(frames["!markPrice@arr"]["data"][0]) == shape(every_mark[0])


async def test_a_running_clock_replays_at_its_speed():
    elapsed = SimulatedClock(0)
    wall = manual_wall_clock()
    server = SimServer(ServerConfig(candles=default_candles(), credentials=[TEST_CREDENTIALS], speed=60),
                       wall_clock=wall, elapsed_clock=elapsed)
    await server.start()
    try:
        async with StreamClient(f"{server.market_ws_url}/ws/btcusdt@kline_1m") as client:
            elapsed.advance(500)  # half a real second: 30 s of market time, picked up by the ticker
            forming = await client.next()
            elapsed.advance(500)
            closed = await client.next()
        assert (forming["E"], forming["k"]["x"]) == (START_MS + MINUTE + 30_000, False)
        assert (closed["k"]["t"], closed["k"]["x"]) == (START_MS + MINUTE, True)
    finally:
        await server.stop()


async def test_start_now_shifts_the_data_to_the_current_minute(sim_server_factory):
    server, wall = await _server(sim_server_factory, start_now=True)
    now_minute = wall.now_ms() // MINUTE * MINUTE
    assert server.market_clock.now_ms() == now_minute
    assert server.replay.klines("BTCUSDT", "1m", now_minute, limit=2)[0].open_time == now_minute - MINUTE
    assert server.data_shift_ms == now_minute - MINUTE - START_MS
