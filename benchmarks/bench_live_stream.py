"""The live market stream on one core: frames parsed and dispatched per second, and the client's memory with 400
symbols subscribed to the simulator server.

    uv run python benchmarks/bench_live_stream.py [--symbols 400] [--seconds 20] [--repeat 3] [--skip-rss]

Throughput: ``MarketStream._on_frame`` (JSON, the combined-stream wrapper, the event's parser into Decimal domain
objects, the duplicate/gap check, the callback) over frames built in memory, so the socket is not measured. Two
mixes: "live" is what a minute of Binance's streams looks like per symbol (about 4 forming-kline updates and 1
markPrice@1s a second, 1 closed kline a minute); "parsed" is closed klines and mark prices only, each fully parsed.
Baseline, in the same run, on the same frames: bare ``json.loads``.
Target: >= 50,000 frames per second on one core.

Memory: the simulator server runs in its own process (its memory is not counted) with --symbols symbols (copies
of BTCUSDT's exchangeInfo entry, seeded synthetic candles: made up, not market data); this process opens a
MarketStream for all of them (800 streams: one connection, some subscribed by SUBSCRIBE frames), the server's
stepped clock moves a minute every 0.5 s for --seconds, and this process's peak RSS is read from /proc (VmHWM),
before the throughput runs (whose frames in memory would raise the peak). Baseline: the RSS of this process before
the stream starts (Python, aiohttp and the bot's modules imported).
Target: <= 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from live.market_stream import MarketStream  # noqa: E402
from utils.domain import Candle, MarkPrice  # noqa: E402

MINUTE = 60_000
START = 1_681_948_800_000


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def _kline(symbol: str, open_time: int, closed: bool, step: int) -> str:
    return json.dumps({"stream": f"{symbol.lower()}@kline_1m", "data": {
        "e": "kline", "E": open_time + (MINUTE if closed else 250 * step), "s": symbol, "k": {
            "t": open_time, "T": open_time + MINUTE - 1, "s": symbol, "i": "1m", "f": 100, "L": 200 + step,
            "o": "28000.0", "c": f"{28000 + step / 10:.1f}", "h": "28008.8", "l": "27990.0",
            "v": f"{215.131 + step:.3f}", "n": 100 + step, "x": closed, "q": "6024614.57640", "V": "76.587",
            "Q": "2144772.98280", "B": "0"}}},
        separators=(",", ":"))


def _mark(symbol: str, time_ms: int) -> str:
    return json.dumps({"stream": f"{symbol.lower()}@markPrice@1s", "data": {
        "e": "markPriceUpdate", "E": time_ms, "s": symbol, "p": "28001.23400000", "ap": "28001.10000000",
        "P": "28000.98000000", "i": "28000.51234567", "r": "0.00010000", "T": START + 8 * 3600_000}},
        separators=(",", ":"))


def live_mix(symbols: list[str], minutes: int) -> list[str]:
    frames = []
    for minute in range(minutes):
        open_time = START + minute * MINUTE
        for second in range(60):
            for symbol in symbols:
                frames.append(_mark(symbol, open_time + second * 1000))
                for quarter in range(4):
                    frames.append(_kline(symbol, open_time, False, second * 4 + quarter))
        frames += [_kline(symbol, open_time, True, 240) for symbol in symbols]
    return frames


def parsed_mix(symbols: list[str], minutes: int) -> list[str]:
    frames = []
    for minute in range(minutes):
        open_time = START + minute * MINUTE
        for symbol in symbols:
            frames += [_kline(symbol, open_time, True, 240), _mark(symbol, open_time + MINUTE)]
    return frames


def _new_stream(symbols: list[str], sink: list[Any]) -> MarketStream:
    async def no_klines(*args: Any, **kwargs: Any) -> list[Candle]:
        return []

    def on_candle(candle: Candle) -> None:
        sink[0] += 1

    def on_mark(mark: MarkPrice) -> None:
        sink[1] += 1

    return MarketStream("ws://127.0.0.1:1/market", symbols, fetch_klines=no_klines, on_candle=on_candle,
                        on_mark_price=on_mark)


def measure(frames: list[str], symbols: list[str], repeat: int) -> tuple[float, float, list[Any]]:
    """(stream frames/s, json.loads frames/s, [candles, marks] delivered in the last run), best of ``repeat``."""
    best_stream = best_json = 0.0
    sink: list[Any] = [0, 0]
    for _ in range(repeat):
        started = time.perf_counter()
        for text in frames:
            json.loads(text)
        best_json = max(best_json, len(frames) / (time.perf_counter() - started))
        sink = [0, 0]
        stream = _new_stream(symbols, sink)

        async def feed(stream: MarketStream = stream) -> float:
            handle = stream._on_frame
            began = time.perf_counter()
            for text in frames:
                await handle(text)
            return time.perf_counter() - began

        elapsed = asyncio.run(feed())
        best_stream = max(best_stream, len(frames) / elapsed)
    return best_stream, best_json, sink


def signing(repeat: int, count: int = 20_000) -> tuple[float, float]:
    """(µs to turn an OrderIntent into a signed request text, µs for the bare HMAC of that text), best of
    ``repeat``: the client's share of the decision latency before aiohttp writes the request."""
    import hashlib
    import hmac
    from decimal import Decimal

    from live.gateway import BinanceGateway
    from utils.domain import OrderIntent, OrderType, Side, TimeInForce
    from utils.ratelimit import Priority
    from utils.rest import RestClient, encode_params
    from utils.signing import HmacSigner

    secret = "s" * 64
    rest = RestClient("http://127.0.0.1:1", api_key="k" * 64, signer=HmacSigner(secret))
    intent = OrderIntent(client_order_id="ema_crossover-BTCUSDT-1681948860-E0", symbol="BTCUSDT", side=Side.BUY,
                         order_type=OrderType.LIMIT, quantity=Decimal("0.010"), price=Decimal("28000.1"),
                         time_in_force=TimeInForce.GTC)
    limiter = rest.rate_limiter
    text = rest._signed_text(encode_params(BinanceGateway.order_params(intent)))
    key = secret.encode()
    best_client = best_hmac = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(count):
            limiter.try_acquire(0, 1, Priority.ENTRY)
            rest._signed_text(encode_params(BinanceGateway.order_params(intent)))
            limiter._give_back(0, 1)  # keep the pools from filling up
        best_client = min(best_client, (time.perf_counter() - started) / count * 1e6)
        started = time.perf_counter()
        for _ in range(count):
            hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
        best_hmac = min(best_hmac, (time.perf_counter() - started) / count * 1e6)
    return best_client, best_hmac


# ============================================================================================ memory
def _server_process(port_out: Any, stop: Any, symbols: int, seconds: float) -> None:
    _pin(0)
    asyncio.run(_serve(port_out, stop, symbols, seconds))


async def _serve(port_out: Any, stop: Any, count: int, seconds: float) -> None:
    from marketdata.replay import SYNTHETIC_START_MS
    from marketdata.synthetic import synthetic_candles
    from simulator.exchange_info import load_exchange_info
    from simulator.server import Credentials, ServerConfig, SimServer

    document = load_exchange_info()
    template = next(entry for entry in document["symbols"] if entry["symbol"] == "BTCUSDT")
    names = [f"S{i:03d}USDT" for i in range(count)]
    extra = []
    for name in names:
        entry = copy.deepcopy(template)
        entry.update(symbol=name, pair=name, baseAsset=name[:-4])
        extra.append(entry)
    document = dict(document, symbols=document["symbols"] + extra)
    minutes = int(seconds * 2) + 10
    candles = {name: list(synthetic_candles(name, start_ms=SYNTHETIC_START_MS, count=minutes)) for name in names}
    server = SimServer(ServerConfig(candles=candles, exchange_info=document,
                                    credentials=[Credentials("k" * 64, "s" * 64)]))
    await server.start()
    port_out.put((server.port, names))
    while server.market_streams.subscriber_count() < 2 * count:
        await asyncio.sleep(0.05)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        await server.advance(MINUTE)
        await asyncio.sleep(0.5)
    port_out.put("done")
    while stop.empty():
        await asyncio.sleep(0.05)
    await server.stop()


def _rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _client(port: int, names: list[str], queue: Any) -> tuple[int, int, float]:
    from live.gateway import BinanceGateway
    from utils.rest import RestClient

    sink: list[Any] = [0, 0]
    async with RestClient(f"http://127.0.0.1:{port}") as rest:
        gateway = BinanceGateway(rest)
        stream = MarketStream(f"ws://127.0.0.1:{port}/market", names, fetch_klines=gateway.klines,
                              on_candle=lambda candle: sink.__setitem__(0, sink[0] + 1),
                              on_mark_price=lambda mark: sink.__setitem__(1, sink[1] + 1))
        task = asyncio.create_task(stream.run())
        await stream.wait_connected(60)
        while True:
            try:
                if queue.get_nowait() == "done":
                    break
            except Exception:  # noqa: BLE001 - queue.Empty
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        peak = _rss_mb("VmHWM")
        await stream.stop()
        await task
    return sink[0], sink[1], peak


def memory(symbols: int, seconds: float) -> tuple[float, float, int, int]:
    context = multiprocessing.get_context("spawn")
    queue, stop = context.Queue(), context.Queue()
    process = context.Process(target=_server_process, args=(queue, stop, symbols, seconds))
    process.start()
    try:
        port, names = queue.get(timeout=120)
        _pin(1)
        before = _rss_mb()
        candles, marks, peak = asyncio.run(_client(port, names, queue))
    finally:
        stop.put("stop")
        process.join(30)
    return before, peak, candles, marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--minutes", type=int, default=2, help="minutes of the live mix (x symbols x 301 frames)")
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpu(s); "
          f"{args.symbols} symbols")
    if not args.skip_rss:  # first: VmHWM is the process's peak, which the throughput runs would raise
        before, peak, candles, marks = memory(args.symbols, args.seconds)
        print(f"RSS with {args.symbols} symbols subscribed ({2 * args.symbols} streams): peak {peak:.1f} MB "
              f"(before the stream {before:.1f} MB, the stream's share {peak - before:.1f} MB); "
              f"{candles:,d} closed candles and {marks:,d} mark prices received")
    _pin(1)
    symbols = [f"S{i:03d}USDT" for i in range(args.symbols)]
    for name, frames in (("live mix", live_mix(symbols, args.minutes)),
                         ("parsed (closed klines + mark prices)", parsed_mix(symbols, 30))):
        rate, baseline, sink = measure(frames, symbols, args.repeat)
        print(f"{name:38s} {len(frames):>8,d} frames: {rate:>10,.0f} frames/s "
              f"(json.loads alone {baseline:>10,.0f}/s, ratio {rate / baseline:.2f}); "
              f"{sink[0]:,d} candles and {sink[1]:,d} mark prices dispatched")
    client_us, hmac_us = signing(args.repeat)
    print(f"order intent -> signed request text (params, exact decimals, budget, HMAC): {client_us:.1f} us "
          f"(bare HMAC-SHA256 of the same text {hmac_us:.1f} us, ratio {client_us / hmac_us:.1f})")

if __name__ == "__main__":
    main()
