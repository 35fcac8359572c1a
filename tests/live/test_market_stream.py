"""The market stream against the simulator server: closed candles exactly once and in order across drops and
silent connections (back-filled over REST), mark prices, connection splitting, and malformed frames skipped."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from live.gateway import BinanceGateway
from live.market_stream import MarketStream, plan_connections, stream_names
from simulator.server.connections import ConnectionRules
from tests.live.conftest import make_rest
from tests.sim_server import START_MS, default_candles
from utils.domain import Candle, MarkPrice

MINUTE = 60_000
FAST = {"initial_backoff_sec": 0.3, "max_backoff_sec": 0.5}


class Collected:
    def __init__(self) -> None:
        self.candles: list[Candle] = []
        self.marks: list[MarkPrice] = []

    def candle(self, candle: Candle) -> None:
        self.candles.append(candle)

    async def mark(self, mark: MarkPrice) -> None:
        self.marks.append(mark)

    def open_times(self, symbol: str) -> list[int]:
        return [c.open_time for c in self.candles if c.symbol == symbol]


def _stream(server, gateway: BinanceGateway, got: Collected, symbols=("BTCUSDT", "ETHUSDT"), **options):
    options = {**FAST, **options}
    return MarketStream(server.market_ws_url, list(symbols), fetch_klines=gateway.klines, on_candle=got.candle,
                        on_mark_price=got.mark, **options)


async def _until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def _expected(symbol: str, first_open: int, last_open: int) -> list[int]:
    return list(range(first_open, last_open + MINUTE, MINUTE))


def _assert_exact(got: Collected, symbol: str, first_open: int, last_open: int) -> None:
    assert got.open_times(symbol) == _expected(symbol, first_open, last_open)
    truth = {c.open_time: c for c in default_candles((symbol,))[symbol]}
    for candle in (c for c in got.candles if c.symbol == symbol):
        assert candle.closed and candle.close == truth[candle.open_time].close
        assert candle.volume == truth[candle.open_time].volume


def test_stream_names_and_connection_plans():
    assert stream_names(["BTCUSDT"]) == ["btcusdt@kline_1m", "btcusdt@markPrice@1s"]
    symbols = [f"S{i}USDT" for i in range(600)]
    plans = plan_connections("wss://x/market", symbols)
    assert [len(plan.symbols) for plan in plans] == [512, 88]  # at most 1024 streams a connection
    assert all(len(plan.url) <= 2100 for plan in plans)
    every = [name for plan in plans for name in plan.url.split("streams=")[1].split("/") + list(plan.subscribe)]
    assert sorted(every) == sorted(stream_names(symbols))
    small = plan_connections("ws://h/market/", ["BTCUSDT"], url_chars=20)
    assert small[0].url == "ws://h/market/stream?streams=btcusdt@kline_1m"
    assert small[0].subscribe == ("btcusdt@markPrice@1s",)


async def test_closed_candles_and_mark_prices_arrive(sim_server, gateway):
    got = Collected()
    stream = _stream(sim_server, gateway, got)
    task = asyncio.create_task(stream.run())
    await stream.wait_connected(5)
    for _ in range(3):
        await sim_server.advance(MINUTE)
    await _until(lambda: len(got.candles) == 6)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        _assert_exact(got, symbol, START_MS + MINUTE, START_MS + 3 * MINUTE)
    assert {m.symbol for m in got.marks} == {"BTCUSDT", "ETHUSDT"}
    assert stream.stats().kline_updates >= 0 and stream.stats().backfills == 0
    await stream.stop()
    await asyncio.wait_for(task, 5)


async def test_a_restart_back_fills_from_the_last_stored_candle(sim_server, gateway):
    await sim_server.advance(5 * MINUTE)
    got = Collected()
    stream = _stream(sim_server, gateway, got, symbols=("BTCUSDT",),
                     last_closed_open_time={"BTCUSDT": START_MS + MINUTE})
    task = asyncio.create_task(stream.run())
    await stream.wait_connected(5)
    assert got.open_times("BTCUSDT") == _expected("BTCUSDT", START_MS + 2 * MINUTE, START_MS + 5 * MINUTE)
    await sim_server.advance(MINUTE)
    await _until(lambda: len(got.candles) == 5)
    _assert_exact(got, "BTCUSDT", START_MS + 2 * MINUTE, START_MS + 6 * MINUTE)
    await stream.stop()
    await asyncio.wait_for(task, 5)


async def test_a_drop_mid_candle_misses_no_closed_candle_and_doubles_none(sim_server, gateway):
    got = Collected()
    stream = _stream(sim_server, gateway, got)
    task = asyncio.create_task(stream.run())
    await stream.wait_connected(5)
    await sim_server.advance(MINUTE)
    await sim_server.advance(MINUTE // 2)  # mid-candle
    assert sim_server.faults.drop_connections("market") == 1
    await sim_server.advance(MINUTE // 2)  # closes while nobody listens
    await sim_server.advance(3 * MINUTE)
    await _until(lambda: stream.status()[0].reconnects == 1 and stream.status()[0].state == "connected")
    for _ in range(2):
        await sim_server.advance(MINUTE)
    last = START_MS + 7 * MINUTE
    await _until(lambda: got.open_times("BTCUSDT")[-1:] == [last] and got.open_times("ETHUSDT")[-1:] == [last])
    for symbol in ("BTCUSDT", "ETHUSDT"):
        _assert_exact(got, symbol, START_MS + MINUTE, last)
    assert stream.stats().candles_backfilled == 2 * 4
    await stream.stop()
    await asyncio.wait_for(task, 5)


async def test_a_silent_connection_is_treated_as_dead_and_the_gap_back_filled(sim_server, gateway):
    got = Collected()
    stream = _stream(sim_server, gateway, got, symbols=("BTCUSDT",), silence_timeout_sec=0.6)
    task = asyncio.create_task(stream.run())
    await stream.wait_connected(5)
    await sim_server.advance(MINUTE)
    await _until(lambda: len(got.candles) == 1)
    assert sim_server.faults.silence_connections("market") == 1
    await sim_server.advance(2 * MINUTE)  # nothing sent, not even pongs
    assert len(got.candles) == 1
    await _until(lambda: stream.status()[0].reconnects == 1 and stream.status()[0].state == "connected")
    assert "silent" in stream.status()[0].last_error
    await _until(lambda: len(got.candles) == 3)
    await sim_server.advance(MINUTE)
    await _until(lambda: len(got.candles) == 4)
    _assert_exact(got, "BTCUSDT", START_MS + MINUTE, START_MS + 4 * MINUTE)
    await stream.stop()
    await asyncio.wait_for(task, 5)


async def test_a_gap_seen_on_the_live_stream_is_filled_before_the_live_candle(sim_server, gateway):
    await sim_server.advance(4 * MINUTE)
    got = Collected()
    stream = _stream(sim_server, gateway, got, symbols=("BTCUSDT",),
                     last_closed_open_time={"BTCUSDT": START_MS + 4 * MINUTE})
    task = asyncio.create_task(stream.run())
    await stream.wait_connected(5)
    assert got.candles == []
    stream._last["BTCUSDT"] = START_MS + MINUTE  # as if three candles had been lost on a live connection
    await sim_server.advance(MINUTE)
    await _until(lambda: len(got.candles) == 4)
    _assert_exact(got, "BTCUSDT", START_MS + 2 * MINUTE, START_MS + 5 * MINUTE)
    await stream.stop()
    await asyncio.wait_for(task, 5)


async def test_streams_split_over_connections_and_subscribed_by_frame(sim_server, gateway):
    got = Collected()
    stream = _stream(sim_server, gateway, got, per_connection=2, url_chars=20)
    task = asyncio.create_task(stream.run())
    await stream.wait_connected(5)
    assert len(stream.status()) == 2
    await asyncio.sleep(0.1)  # the SUBSCRIBE answers
    await sim_server.advance(MINUTE)
    await _until(lambda: len(got.candles) == 2 and {m.symbol for m in got.marks} == {"BTCUSDT", "ETHUSDT"})
    await stream.stop()
    await asyncio.wait_for(task, 5)


async def test_malformed_frames_are_skipped_and_server_pings_answered(unused_tcp_port):
    kline = {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {"t": 0, "T": 59_999, "s": "BTCUSDT", "i": "1m", "o": "1",
                                                         "c": "2", "h": "3", "l": "0.5", "v": "10", "x": True}}
    frames = ["not json", "[]", json.dumps({"stream": "x", "data": {"e": "kline", "k": {"x": True}}}),
              json.dumps({"stream": "x", "data": {"e": "surprise"}}), json.dumps({"result": None, "id": 1}),
              json.dumps({"stream": "btcusdt@kline_1m", "data": kline})]
    pongs: list[bytes] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await ws.ping(b"hello")
        message = await ws.receive(timeout=2)
        if message.type is web.WSMsgType.PONG:
            pongs.append(message.data)
        for frame in frames:
            await ws.send_str(frame)
        await ws.send_bytes(b"\x00")
        async for _ in ws:  # until the client closes
            pass
        return ws

    app = web.Application()
    app.router.add_get("/market/stream", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        got = Collected()

        async def no_klines(*args, **kwargs):
            return []

        stream = MarketStream(f"ws://127.0.0.1:{unused_tcp_port}/market", ["BTCUSDT"], fetch_klines=no_klines,
                              on_candle=got.candle, on_mark_price=got.mark)
        task = asyncio.create_task(stream.run())
        await _until(lambda: len(got.candles) == 1)
        assert pongs == [b"hello"]
        await _until(lambda: stream.stats().malformed_frames == 5)
        assert stream.status()[0].reconnects == 0 and not task.done()
        await stream.stop()
        await asyncio.wait_for(task, 5)
    finally:
        await runner.cleanup()


async def test_the_servers_lifetime_cut_is_a_reconnect_with_nothing_missed(sim_server_factory):
    server = await sim_server_factory(connection_rules=ConnectionRules(max_lifetime_market_ms=3 * MINUTE))
    async with make_rest(server) as rest:
        got = Collected()
        stream = _stream(server, BinanceGateway(rest), got, symbols=("BTCUSDT",))
        task = asyncio.create_task(stream.run())
        await stream.wait_connected(5)
        for _ in range(8):
            await server.advance(MINUTE)
            await asyncio.sleep(0.05)
        await _until(lambda: got.open_times("BTCUSDT")[-1:] == [START_MS + 8 * MINUTE])
        assert stream.status()[0].reconnects >= 1 and "code 1000" in stream.status()[0].last_error
        _assert_exact(got, "BTCUSDT", START_MS + MINUTE, START_MS + 8 * MINUTE)
        await stream.stop()
        await asyncio.wait_for(task, 5)
