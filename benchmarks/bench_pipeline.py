"""Speed of the sim-mode pipeline (event bus; the whole bot per candle), next to baselines measured in the same run.

    uv run python benchmarks/bench_pipeline.py [--repeat 3] [--days 2]

Figures:
  * event bus: microseconds per event published and consumed through ``EventBus`` (one lossless subscription,
    a consumer task), against a bare ``asyncio.Queue`` moving the same events (the floor for any asyncio hand-off);
  * whole sim run: microseconds per candle for ``SimTrader`` on synthetic candles of three symbols with the three
    shipped strategies (bus, strategies, executor, simulated exchange, SQLite writes, heartbeat), against the
    strategies alone on the same candles (what the trading decisions themselves cost).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

from config import load_config  # noqa: E402
from marketdata.replay import merge_minutes, synthetic_source  # noqa: E402
from runtime.trader import SimTrader  # noqa: E402
from strategies.registry import load_strategy  # noqa: E402
from strategies.runner import StrategyRunner  # noqa: E402
from utils.bus import EventBus  # noqa: E402
from utils.log import setup_logging  # noqa: E402

SYMBOLS = ["BTCUSDT", "ETHUSDT", "LTCUSDT"]


async def bus_run(events: int) -> float:
    bus = EventBus()
    subscription = bus.subscribe("order.update", maxsize=1000)
    done = asyncio.Event()

    async def consume() -> None:
        for _ in range(events):
            await subscription.get()
        subscription.ack()
        done.set()

    task = asyncio.create_task(consume())
    started = time.perf_counter_ns()
    for i in range(events):
        await bus.publish("order.update", i)
    await done.wait()
    elapsed = time.perf_counter_ns() - started
    await task
    return elapsed / events / 1000


async def queue_run(events: int) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1000)
    done = asyncio.Event()

    async def consume() -> None:
        for _ in range(events):
            await queue.get()
        done.set()

    task = asyncio.create_task(consume())
    started = time.perf_counter_ns()
    for i in range(events):
        await queue.put(i)
    await done.wait()
    elapsed = time.perf_counter_ns() - started
    await task
    return elapsed / events / 1000


def sim_run(days: float, directory: Path, index: int) -> tuple[float, int]:
    os.environ["DB_URL"] = f"sqlite:///{directory / f'bench{index}.db'}"
    os.environ["STATUS_DIR"] = str(directory / "status")
    os.environ["LOG_DIR"] = str(directory / "logs")
    config = load_config(env_file=None)
    trader = SimTrader(config, source=synthetic_source(SYMBOLS, days=days, warmup=104))
    started = time.perf_counter_ns()
    summary = asyncio.run(trader.run())
    elapsed = time.perf_counter_ns() - started
    trader.close()
    return elapsed / summary.candles / 1000, summary.fills


def strategies_only(days: float) -> float:
    config = load_config(env_file=None)
    runner = StrategyRunner()
    for symbol in config.symbols:
        for strategy in symbol.strategies:
            runner.add(load_strategy(strategy.name, symbol.symbol, strategy.params))
    source = synthetic_source(SYMBOLS, days=days, warmup=104)
    groups = list(merge_minutes(source.streams.values()))
    count = sum(len(group) for group in groups)
    started = time.perf_counter_ns()
    for group in groups:
        for candle in group:
            runner.on_candle(candle)
    return (time.perf_counter_ns() - started) / count / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    setup_logging("ERROR", None)
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPU(s); "
          f"best of {args.repeat}")
    bus = min(asyncio.run(bus_run(args.events)) for _ in range(args.repeat))
    queue = min(asyncio.run(queue_run(args.events)) for _ in range(args.repeat))
    print(f"event bus publish+consume     {bus:8.2f} us/event   baseline asyncio.Queue {queue:6.2f} us   "
          f"ratio {bus / queue:5.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = [sim_run(args.days, Path(tmp), i) for i in range(args.repeat)]
    per_candle = min(r[0] for r in runs)
    alone = min(strategies_only(args.days) for _ in range(args.repeat))
    print(f"whole sim run                 {per_candle:8.2f} us/candle  baseline strategies only {alone:6.2f} us   "
          f"ratio {per_candle / alone:5.2f}   ({runs[0][1]} fills, {args.days:g} days x {len(SYMBOLS)} symbols)")
    print(f"                              {1e6 / per_candle:8.0f} candles/s, one day of 3 symbols in "
          f"{per_candle * 1440 * 3 / 1e6:.2f} s")


if __name__ == "__main__":
    main()
