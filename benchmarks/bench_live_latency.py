"""Live decision latency: a closed-kline frame arriving on the socket -> the signed order request leaving.

    uv run python benchmarks/bench_live_latency.py [--decisions 1000] [--db sqlite|memory|both]

The whole live shell (``runtime/live.py``: market stream, bus, strategy runner, execution core, journal, async
applier, Binance gateway, REST client with its rate limiter and signer) runs in this process against the simulator
server in a child process (stepped market clock, rate limits raised so that pacing never enters the figure). The
strategy is a stand-in that flips LONG / FLAT on every closed candle (under the configured strategy's name), so
every candle is one decision and one order. Each step: the server's clock is moved one minute (admin endpoint),
its closed-kline frame reaches the bot, the bot decides and sends the order; the next step starts once the bot is
idle (the order answered, its fill booked).

Timestamps (``time.perf_counter_ns``, and ``time.thread_time_ns`` for the CPU the path used): t0 when the client's
WebSocket reader hands the frame's text on (right after ``ws.receive``), t1 when ``RestClient`` sends the signed
``POST /fapi/v1/order`` (after signing, before aiohttp writes it). Two passes in the same run:
  * durable: the intent is written to SQLite (WAL, ``synchronous=NORMAL``: a committed transaction survives the
    process dying; ``--fsync`` uses ``synchronous=FULL``, which also survives the machine losing power);
  * baseline: the same path with the journal in memory (``MemoryJournal``): what the database write costs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlalchemy import event  # noqa: E402

from config import load_config  # noqa: E402
from marketdata.synthetic import synthetic_candles  # noqa: E402
from runtime.applier import MemoryJournal  # noqa: E402
from runtime.live import LiveTrader  # noqa: E402
from strategies.base import Strategy  # noqa: E402
from strategies.runner import StrategyRunner  # noqa: E402
from utils.domain import Candle, Signal, SignalSide  # noqa: E402
from utils.rest import RestClient  # noqa: E402
from utils.secrets import format_apikey_text  # noqa: E402
from utils.websocket import ReconnectingWebSocket  # noqa: E402

DURABLE = "durable (SQLite)"
BASELINE = "baseline (journal in memory)"
API_KEY = "benchLatencyKey000000000000000000000000000000000000000000000001"
API_SECRET = "benchLatencySecret0000000000000000000000000000000000000000000001"
ADMIN_TOKEN = "bench-admin"
SYMBOL = "BTCUSDT"
START_MS = 1_681_948_800_000  # 2023-04-20 00:00 UTC
SYMBOLS_TOML = f"""
[risk]
daily_loss_limit_usdt = 1000000
max_new_positions_per_day = 10000
max_symbol_exposure_usdt = 1000000
order_ttl_sec = 600
max_consecutive_losses = 10000
funding_blackout_minutes = 0

[[symbols]]
symbol = "{SYMBOL}"
leverage = 5
margin_type = "ISOLATED"

[[symbols.strategies]]
name = "ema_crossover"
params = {{ fast = 2, slow = 3 }}
sizing = {{ mode = "fixed_notional", value = 200 }}
"""


class Flipper(Strategy):  # type: ignore[type-arg]
    """LONG on one closed candle, FLAT on the next: one order per candle (named as the configured strategy)."""

    name: ClassVar[str] = "ema_crossover"

    def __init__(self, symbol: str) -> None:
        super().__init__(symbol)
        self.long = False

    @property
    def warmup_candles(self) -> int:
        return 0

    def on_candle(self, candle: Candle) -> Signal | None:
        self.long = not self.long
        side = SignalSide.LONG if self.long else SignalSide.FLAT
        return Signal(self.name, candle.symbol, side, Decimal(1), "bench", candle.close_time)


# ==================================================================================================== server
def _serve(port: int, data: str, ready: Any) -> None:
    """The simulator server, in a child process: stepped clock, limits far above what the benchmark sends."""
    from simulator.server import Credentials, ServerConfig, SimServer
    from simulator.server.connections import ConnectionRules
    from simulator.server.ratelimit import RateLimitConfig
    from utils.klines_csv import load_klines_csv

    async def main() -> None:
        limits = RateLimitConfig(request_weight_per_minute=10_000_000, orders_per_10s=10_000_000,
                                 orders_per_minute=10_000_000)
        # Market time moves a minute per decision, so the 24 h cut of a connection (market time) would fall inside
        # the measurement, and with it a reconnect and a reconciliation: not what this figure is about.
        rules = ConnectionRules(max_lifetime_market_ms=30 * 86_400_000)
        server = SimServer(ServerConfig(candles={SYMBOL: load_klines_csv(data, SYMBOL)}, speed=0,
                                        connection_rules=rules,
                                        credentials=[Credentials(API_KEY, API_SECRET)], history_minutes=30,
                                        admin_token=ADMIN_TOKEN, rate_limits=limits,
                                        balance=Decimal("1000000")))
        await server.start("127.0.0.1", port)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ================================================================================================ measuring
@dataclass
class Probe:
    """Frame arrival and order departure times, paired per decision."""

    frame_at: int | None = None
    frame_cpu: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    cpu_ns: list[int] = field(default_factory=list)  # this thread's CPU time over the same span
    recording: bool = False

    def install(self) -> None:
        probe = self
        original_init = ReconnectingWebSocket.__init__

        def init(ws: ReconnectingWebSocket, url: Any, on_message: Callable[[str], Any], *args: Any,
                 **kwargs: Any) -> None:
            async def timed(text: str) -> None:
                if '"x":true' in text and '"e":"kline"' in text:
                    probe.frame_at = time.perf_counter_ns()
                    probe.frame_cpu = time.thread_time_ns()
                await on_message(text)

            original_init(ws, url, timed, *args, **kwargs)

        ReconnectingWebSocket.__init__ = init  # type: ignore[method-assign]
        original_send = RestClient._send

        async def send(rest: RestClient, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            if method == "POST" and path == "/fapi/v1/order" and probe.frame_at is not None:
                if probe.recording:
                    probe.latencies_ns.append(time.perf_counter_ns() - probe.frame_at)
                    probe.cpu_ns.append(time.thread_time_ns() - probe.frame_cpu)
                probe.frame_at = None
            return await original_send(rest, method, path, *args, **kwargs)

        RestClient._send = send  # type: ignore[method-assign]


def _summary(latencies_ns: list[int]) -> dict[str, float]:
    ordered = sorted(latencies_ns)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6  # noqa: E731
    return {"n": len(ordered), "p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99),
            "max": ordered[-1] / 1e6, "mean": statistics.fmean(ordered) / 1e6}


async def _pass(trader: LiveTrader, probe: Probe, session: aiohttp.ClientSession, admin: str, decisions: int,
                warm: int) -> tuple[list[int], list[int]]:
    """``warm`` unmeasured decisions, then ``decisions`` measured ones: (latencies, CPU times) in ns."""
    probe.latencies_ns, probe.cpu_ns = [], []
    done = 0
    while done < decisions + warm:
        probe.recording = done >= warm
        before = len(probe.latencies_ns)
        sent = trader.core.stats.sent if trader.core else 0
        async with session.post(f"{admin}/admin/clock", json={"advanceMs": 60_000},
                                headers={"X-Admin-Token": ADMIN_TOKEN}) as reply:
            assert reply.status == 200, await reply.text()
        deadline = time.monotonic() + 1
        while trader.core is None or trader.core.stats.sent == sent:  # the decision's order has left
            if time.monotonic() > deadline:
                break  # no order for this candle (an entry refused, then a FLAT with nothing to close)
            await asyncio.sleep(0.0005)
        assert trader.applier is not None
        await trader.applier.idle()
        await asyncio.sleep(0.002)  # its user-data events arrive and are handled
        await trader.applier.idle()
        done += 1
        if probe.recording and len(probe.latencies_ns) == before:
            done -= 1  # the order was not the frame's (e.g. a lookup): not a measured decision
    return probe.latencies_ns, probe.cpu_ns


def _row(latencies: list[int], cpu_ns: list[int]) -> dict[str, float]:
    row = _summary(latencies)
    cpu = _summary(cpu_ns)
    row.update({"cpu_p50": cpu["p50"], "cpu_p99": cpu["p99"]})
    return row


async def _run(args: argparse.Namespace, probe: Probe, port: int, folder: Path) -> dict[str, dict[str, float]]:
    os.environ.update({
        "MODE": "testnet", "REST_BASE_URL": f"http://127.0.0.1:{port}", "WS_MARKET_URL": f"ws://127.0.0.1:{port}/market",
        "WS_PRIVATE_URL": f"ws://127.0.0.1:{port}/private", "DB_URL": f"sqlite:///{folder / 'bench.db'}",
        "STATUS_DIR": str(folder / "status"), "LOG_DIR": str(folder / "logs"), "LOG_LEVEL": "WARNING",
        "HEARTBEAT_INTERVAL_SEC": "5", "EXCHANGE_INFO_REFRESH_SEC": "3600",
    })
    apikey = folder / ".apikey"
    apikey.write_text(format_apikey_text(API_KEY, API_SECRET), encoding="utf-8")
    apikey.chmod(0o600)
    symbols = folder / "symbols.toml"
    symbols.write_text(SYMBOLS_TOML, encoding="utf-8")
    config = load_config(env_file=None, symbols_file=symbols, apikey_file=apikey)
    trader = LiveTrader(config)
    trader.runner = StrategyRunner([Flipper(SYMBOL)])
    if args.fsync:
        @event.listens_for(trader.repository.engine, "connect")
        def _full(connection: Any, _record: Any) -> None:
            connection.execute("PRAGMA synchronous = FULL")
        trader.repository.release_connection()
        trader.repository.engine.dispose()
    task = asyncio.create_task(trader.run())
    results: dict[str, dict[str, float]] = {}
    try:
        deadline = time.monotonic() + 30
        while trader._phase != "trading":  # noqa: SLF001 - the benchmark waits for the start-up to finish
            if task.done():
                task.result()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the live shell did not start (phase {trader._phase})")  # noqa: SLF001
            await asyncio.sleep(0.05)
        admin = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            assert trader.applier is not None
            journals = {}
            if args.db in ("sqlite", "both"):
                journals[DURABLE] = trader.applier.journal
            if args.db in ("memory", "both"):
                journals[BASELINE] = MemoryJournal()
            measured: dict[str, tuple[list[int], list[int]]] = {name: ([], []) for name in journals}
            # Interleaved: blocks of each path in turn (the first one of each round alternating), so the machine's
            # ups and downs over the run fall on both paths alike.
            blocks = max(1, args.decisions // args.block)
            for block in range(blocks):
                names = list(journals) if block % 2 == 0 else list(reversed(journals))
                for name in names:
                    trader.applier.journal = journals[name]
                    size = args.decisions - args.block * (blocks - 1) if block == blocks - 1 else args.block
                    latencies, cpu = await _pass(trader, probe, session, admin, size,
                                                 args.warmup if block == 0 else 2)
                    measured[name][0].extend(latencies)
                    measured[name][1].extend(cpu)
            results = {name: _row(*values) for name, values in measured.items()}
    finally:
        trader.stop()
        await task
        trader.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50, help="decisions before measuring (default 50)")
    parser.add_argument("--db", choices=("sqlite", "memory", "both"), default="both")
    parser.add_argument("--block", type=int, default=100, help="decisions per block of one path (default 100)")
    parser.add_argument("--repeat", type=int, default=1, help="whole runs (a new server and bot each)")
    parser.add_argument("--fsync", action="store_true", help="SQLite synchronous=FULL (fsync every commit)")
    args = parser.parse_args()
    blocks = max(1, args.decisions // args.block)
    minutes = 3 * (2 * (args.decisions + args.warmup) + 4 * blocks) + 500
    probe = Probe()
    probe.install()
    print(f"Live decision latency: closed-kline frame on the socket -> signed POST /fapi/v1/order leaving "
          f"(Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores; the paths "
          f"interleaved in blocks of {args.block})")
    for run in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
            folder = Path(tmp)
            data = folder / f"{SYMBOL}_usdm_1m_synthetic.csv"
            from utils.klines_csv import write_klines_csv

            write_klines_csv(data, synthetic_candles(SYMBOL, start_ms=START_MS, count=minutes))
            port = _free_port()
            ready = multiprocessing.Event()
            server = multiprocessing.Process(target=_serve, args=(port, str(data), ready), daemon=True)
            server.start()
            try:
                if not ready.wait(30):
                    raise RuntimeError("the simulator server did not start")
                results = asyncio.run(_run(args, probe, port, folder))
            finally:
                server.terminate()
                server.join(10)
        _report(run, results)
    print("  (CPU: this process's CPU time over the same span: what the path costs when the machine is not shared)")
    print("  target: p99 <= 1 ms with the intent durably written")


def _report(run: int, results: dict[str, dict[str, float]]) -> None:
    print(f"  run {run}: {'path':<30} {'n':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'mean ms':>8} {'CPU p50':>8} {'CPU p99':>8}")
    for name, row in results.items():
        print(f"         {name:<30} {row['n']:>6} {row['p50']:>8.3f} {row['p90']:>8.3f} {row['p99']:>8.3f} "
              f"{row['max']:>8.3f} {row['mean']:>8.3f} {row['cpu_p50']:>8.3f} {row['cpu_p99']:>8.3f}")
    if len(results) == 2:
        durable, baseline = results[DURABLE], results[BASELINE]
        print(f"         the database write adds {durable['p50'] - baseline['p50']:.3f} ms at p50, "
              f"{durable['p99'] - baseline['p99']:.3f} ms at p99")


if __name__ == "__main__":
    main()
