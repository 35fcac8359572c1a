"""Throughput of the Binance-wire simulator server on one core, next to a bare aiohttp server measured in the same run.

    uv run python benchmarks/bench_simserver.py [--seconds 3] [--repeat 3] [--connections 32] [--streams 50]

The server under test runs in its own process pinned to one CPU (the load generator runs in this process, pinned
to another one when the machine has two). Figures:
  * REST requests per second, with --connections concurrent keep-alive clients, for GET /fapi/v1/time (the
    gateway's floor: routing, parameters, weight, JSON), GET /fapi/v2/balance (HMAC-signed: key lookup,
    recvWindow, signature, the account) and POST /fapi/v1/order (signed MARKET orders, alternately buy and sell:
    the whole order path through the matching engine, with a user-data listener subscribed);
  * WebSocket frames per second: --streams combined connections subscribed to two kline streams while the stepped
    market clock is driven a minute at a time in bursts of 20 (every minute: two closed-kline frames per
    connection), each burst written out before the next.
Baseline: a bare aiohttp application in the same kind of process, answering GET with a fixed small JSON body and
pushing fixed frames of the same size to the same number of WebSocket connections as fast as it can.
Input: seeded synthetic candles (made up, not market data), so the script needs nothing beside the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

KEY = "benchKey0000000000000000000000000000000000000000000000000000001"
SECRET = "benchSecret000000000000000000000000000000000000000000000000001"
SERVER_CPU = 0
CLIENT_CPU = 1
KLINE_FRAME = json.dumps({"stream": "btcusdt@kline_1m", "data": {
    "e": "kline", "E": 1681948860000, "s": "BTCUSDT", "k": {
        "t": 1681948800000, "T": 1681948859999, "s": "BTCUSDT", "i": "1m", "f": 1, "L": 860, "o": "28000.0",
        "c": "28003.5", "h": "28008.8", "l": "28000.0", "v": "215.131", "n": 860, "x": True, "q": "6024614.57640",
        "V": "76.587", "Q": "2144772.98280", "B": "0"}}}, separators=(",", ":"))


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


# ============================================================================================ server processes
async def _baseline(port_out: Any, control: Any, streams: int) -> None:
    ready: list[web.WebSocketResponse] = []

    async def server_time(request: web.Request) -> web.Response:
        return web.Response(text='{"serverTime":1681948860000}', content_type="application/json")

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        ready.append(ws)
        try:
            async for _ in ws:
                pass
        finally:
            ready.remove(ws)
        return ws

    app = web.Application()
    app.router.add_get("/fapi/v1/time", server_time)
    app.router.add_get("/fapi/v2/balance", server_time)
    app.router.add_post("/fapi/v1/order", server_time)
    app.router.add_get("/market/stream", socket)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port_out.put(runner.addresses[0][1])
    await _serve_commands(control, lambda seconds: _push_baseline(ready, streams, seconds))
    await runner.cleanup()


async def _push_baseline(ready: list[web.WebSocketResponse], streams: int, seconds: float) -> int:
    while len(ready) < streams:
        await asyncio.sleep(0.01)
    sent = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for ws in list(ready):  # two frames per connection and step, as the simulator sends
            await ws.send_str(KLINE_FRAME)
            await ws.send_str(KLINE_FRAME)
            sent += 2
    return sent


async def _simulator(port_out: Any, control: Any, streams: int) -> None:
    from decimal import Decimal

    from marketdata.replay import SYNTHETIC_START_MS
    from marketdata.synthetic import synthetic_candles
    from simulator.server import Credentials, ServerConfig, SimServer
    from simulator.server.connections import ConnectionRules
    from simulator.server.ratelimit import RateLimitConfig

    minutes = 40_000
    candles = {s: list(synthetic_candles(s, start_ms=SYNTHETIC_START_MS, count=minutes)) for s in ("BTCUSDT",
                                                                                                   "ETHUSDT")}
    huge = 10**12
    server = SimServer(ServerConfig(
        candles=candles, credentials=[Credentials(KEY, SECRET)], balance=Decimal("1000000000"),
        rate_limits=RateLimitConfig(request_weight_per_minute=huge, orders_per_10s=huge, orders_per_minute=huge),
        connection_rules=ConnectionRules(max_incoming_per_second=huge, pong_timeout_ms=huge,
                                         max_lifetime_market_ms=huge, max_queued=10**7)))
    await server.start()
    key = server.user_streams.start(KEY)
    port_out.put((server.port, key))

    async def produce(seconds: float) -> int:
        while server.market_streams.subscriber_count() < 2 * streams:
            await asyncio.sleep(0.01)
        before = sum(c.frames_sent for c in server.hub.all())
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            for _ in range(20):  # a burst of 20 minutes, as a fast replay's tick would produce, then written out
                server.market_clock.advance(60_000)
                server.tick()
            await server.drain()
        return sum(c.frames_sent for c in server.hub.all()) - before

    await _serve_commands(control, produce)
    await server.stop()


async def _serve_commands(control: Any, produce: Any) -> None:
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, control.get)
        if command is None:
            return
        control.result.put(await produce(command))


class _Control:
    def __init__(self, context: Any) -> None:
        self.commands = context.Queue()
        self.result = context.Queue()

    def get(self) -> Any:
        return self.commands.get()


def _server_main(kind: str, port_out: Any, control: _Control, streams: int) -> None:
    _pin(SERVER_CPU)
    target = _baseline if kind == "baseline" else _simulator
    asyncio.run(target(port_out, control, streams))


# ============================================================================================ load generator
# A lean HTTP/1.1 keep-alive client and a frame-counting WebSocket reader on raw asyncio streams: the aiohttp
# client tops out near the server's own rate on one core and would measure itself instead of the server.
def _signed(params: dict[str, Any]) -> str:
    params = {**params, "timestamp": time.time_ns() // 1_000_000}
    text = urlencode(params)
    return f"{text}&signature={hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()}"


def _request_bytes(method: str, target: str) -> bytes:
    return (f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-MBX-APIKEY: {KEY}\r\n"
            "Content-Length: 0\r\n\r\n").encode()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lowered = head.lower()
    at = lowered.index(b"content-length:") + 15
    length = int(lowered[at:lowered.index(b"\r\n", at)])
    await reader.readexactly(length)
    return int(head[9:12])


async def _rest_rate(host: str, port: int, method: str, path: str, params: dict[str, Any] | None,
                     connections: int, seconds: float) -> float:
    done = 0
    sides = ("BUY", "SELL")
    deadline = time.perf_counter() + seconds

    async def worker(number: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, port)
        flip = number
        try:
            while time.perf_counter() < deadline:
                target = path
                if params is not None:
                    values = dict(params)
                    if "side" in values:
                        values["side"] = sides[flip % 2]
                        flip += 1
                    target = f"{path}?{_signed(values)}"
                status = await _exchange(reader, writer, _request_bytes(method, target))
                if status != 200:
                    raise RuntimeError(f"{path}: HTTP {status}")
                done += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(connections)))
    return done / (time.perf_counter() - started)


class _FrameCounter:
    """A WebSocket client that only counts the text frames it receives (server frames are not masked)."""

    def __init__(self) -> None:
        self.frames = 0
        self.writer: asyncio.StreamWriter | None = None

    async def run(self, host: str, port: int, path: str, connected: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        self.writer = writer
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"WebSocket handshake refused: {head[:80]!r}")
        connected.set()
        buffer = b""
        while True:
            chunk = await reader.read(262_144)
            if not chunk:
                return
            buffer += chunk
            position = 0
            size = len(buffer)
            while size - position >= 2:
                first, second = buffer[position], buffer[position + 1] & 0x7F
                start = position + 2
                if second == 126:
                    if size - start < 2:
                        break
                    second = int.from_bytes(buffer[start:start + 2], "big")
                    start += 2
                elif second == 127:
                    if size - start < 8:
                        break
                    second = int.from_bytes(buffer[start:start + 8], "big")
                    start += 8
                if size - start < second:
                    break
                opcode = first & 0x0F
                if opcode == 1:
                    self.frames += 1
                elif opcode == 8:
                    return
                position = start + second
            buffer = buffer[position:]


async def _ws_rate(host: str, port: int, streams: int, control: _Control, seconds: float) -> tuple[float, int, int]:
    counters = [_FrameCounter() for _ in range(streams)]
    path = "/market/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m"
    tasks = []
    for counter in counters:
        connected = asyncio.Event()
        tasks.append(asyncio.ensure_future(counter.run(host, port, path, connected)))
        await connected.wait()
    control.commands.put(seconds)
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    sent = await loop.run_in_executor(None, control.result.get)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(1.0)  # let the last frames arrive
    for counter, task in zip(counters, tasks, strict=True):
        if counter.writer is not None:
            counter.writer.close()
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return sent / elapsed, sent, sum(counter.frames for counter in counters)


def _measure(kind: str, args: argparse.Namespace) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    port_out = context.Queue()
    control = _Control(context)
    process = context.Process(target=_server_main, args=(kind, port_out, control, args.streams), daemon=True)
    process.start()
    answer = port_out.get(timeout=120)
    port = answer if kind == "baseline" else answer[0]
    host = "127.0.0.1"
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}

    async def best(method: str, path: str, params: dict[str, Any] | None) -> float:
        return max([await _rest_rate(host, port, method, path, params, args.connections, args.seconds)
                    for _ in range(args.repeat)])

    async def run() -> dict[str, float]:
        figures = {"time": await best("GET", "/fapi/v1/time", None),
                   "balance": await best("GET", "/fapi/v2/balance", {})}
        user_data = None
        if kind != "baseline":  # the orders' events go out on a user-data connection, as for a real bot
            user_data = _FrameCounter()
            connected = asyncio.Event()
            listening = asyncio.ensure_future(user_data.run(host, port, f"/private/ws?listenKey={answer[1]}",
                                                            connected))
            await connected.wait()
        figures["order"] = await best("POST", "/fapi/v1/order", order)
        if user_data is not None:
            await asyncio.sleep(0.5)
            figures["user_events"] = user_data.frames
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
        runs = [await _ws_rate(host, port, args.streams, control, args.seconds) for _ in range(args.repeat)]
        rate, sent, received = max(runs)
        figures["frames"] = rate
        figures["frames_received_share"] = received / sent if sent else 0.0
        return figures

    try:
        return asyncio.run(run())
    finally:
        control.commands.put(None)
        process.join(timeout=30)
        if process.is_alive():
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent REST clients (default 32)")
    parser.add_argument("--streams", type=int, default=50, help="WebSocket connections (default 50)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is shown (default 3)")
    args = parser.parse_args()
    _pin(CLIENT_CPU)
    print(f"CPython {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; server pinned to "
          f"CPU {SERVER_CPU}, load generator to CPU {CLIENT_CPU}; best of {args.repeat} runs of {args.seconds:g} s "
          "per figure")
    baseline = _measure("baseline", args)
    simulator = _measure("simulator", args)
    rows = [
        ("GET /fapi/v1/time", "time", "requests/s"),
        ("GET /fapi/v2/balance (HMAC-signed)", "balance", "requests/s"),
        ("POST /fapi/v1/order MARKET (signed, fills)", "order", "requests/s"),
        (f"market frames, {args.streams} connections x 2 streams", "frames", "frames/s"),
    ]
    print(f"{'what':<52} {'simulator':>12} {'baseline':>12} {'ratio':>7}")
    for label, key, unit in rows:
        ratio = baseline[key] / simulator[key] if simulator[key] else float("inf")
        print(f"{label:<52} {simulator[key]:>10,.0f}   {baseline[key]:>10,.0f}   {ratio:>6.1f}  {unit}")
    print(f"user-data events received on the private stream during the order runs: "
          f"{simulator.get('user_events', 0):,.0f} (NEW, TRADE, ACCOUNT_UPDATE per order)")
    print(f"frames received by the clients / frames the server wrote: simulator "
          f"{simulator['frames_received_share']:.0%}, baseline {baseline['frames_received_share']:.0%}")


if __name__ == "__main__":
    main()
