"""Backtest throughput: bars per second, reading the CSV included, next to the every-bar run measured in the same run.

    uv run python benchmarks/bench_backtest.py [--repeat 3] [--no-year] [--no-process]

The anchors' strategy (issue 12): a long-only EMA flip on BTCUSDT buying 1,000 USDT at market, taker fee 0.05 %
(``benchmarks/ema_long_only.toml``), for EMA 200/800 and EMA 10/20, on
``../shared/data/usdm_1m/BTCUSDT_usdm_1m_2023-01-01_2023-03-09.csv`` (97,920 bars) and on that file repeated end to
end, timestamps shifted, to a year (525,600 bars, written to a temporary CSV first). Figures, best of ``--repeat``:

  * bars/s: the bars over the time from reading the CSV to the last bar (``load_bars`` + ``Backtest.run``), as
    wall time and as the process's CPU time (on a shared machine the wall time also counts other processes' turns;
    the CPU time is what the run itself cost), with the trade count;
  * the baseline: the same backtest with ``every_bar=True`` (every bar through the exchange and the core, the
    prototype's and the anchors' level) on the 97,920 bars, and the ratio;
  * the order path: CPU microseconds per minute with a signal (strategy signal -> core -> order -> simulated
    exchange -> user events -> core: one market order, its fill, the round trip) and per quiet wake minute (candle
    and mark only), from the 10/20 run; and before/after: with the exchange's user-data events as wire dicts parsed
    again (before) and built as the parsed types directly (after), alternating runs on 20 days;
  * whole process: ``uv run main.py backtest`` on the 97,920 bars from start to exit (start-up, imports, reports),
    wall seconds, best of ``--repeat`` after one warm-up run (for the median of five, use farm-bench: the commands
    are in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backtest.data import load_bars  # noqa: E402
from backtest.engine import Backtest, BacktestResult  # noqa: E402
from config.symbols import SymbolsConfig, load_symbols  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "usdm_1m" / "BTCUSDT_usdm_1m_2023-01-01_2023-03-09.csv"
CONFIG = ROOT / "benchmarks" / "ema_long_only.toml"
YEAR = 525_600


def config_for(fast: int, slow: int) -> SymbolsConfig:
    config = load_symbols(CONFIG)
    symbol = config.symbols[0]
    strategy = symbol.strategies[0].model_copy(update={"params": {"fast": fast, "slow": slow, "long_only": True}})
    return config.model_copy(update={"symbols": [symbol.model_copy(update={"strategies": [strategy]})]})


def timed(path: Path, config: SymbolsConfig, every_bar: bool = False) -> tuple[float, float, BacktestResult]:
    """(wall seconds, CPU seconds, result) of reading ``path`` and backtesting it."""
    wall, cpu = time.perf_counter(), time.process_time()
    series = load_bars(path)
    result = Backtest(config, [series], every_bar=every_bar).run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def best(repeat: int, path: Path, config: SymbolsConfig, every_bar: bool = False) -> tuple[float, float,
                                                                                           BacktestResult]:
    runs = [timed(path, config, every_bar) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def order_path(repeat: int) -> tuple[float, float]:
    """CPU microseconds per signal minute of EMA 10/20 on 20 days, events as wire dicts (parsed again) against
    typed events, the two runs alternating so that a drift of the machine's speed hits both."""
    series = load_bars(DATA)
    series = series.window(None, int(series.open_time[0]) + 20 * 86_400_000)
    config = config_for(10, 20)
    figures: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(max(3, repeat)):
        for typed in (False, True):
            costs = Backtest(config, [series], typed_events=typed).run().costs
            figures[typed].append(costs.signal_seconds / costs.signal_minutes * 1e6)
    return min(figures[False]), min(figures[True])


def write_year(directory: Path) -> Path:
    series = load_bars(DATA)
    copies = series.shifted_copies(-(-YEAR // len(series)))
    path = directory / "BTCUSDT_usdm_1m_year.csv"
    with open(path, "wb") as file:
        file.write(b"open_time_ms,open,high,low,close,volume,close_time_ms,quote_volume,trades,taker_buy_volume,"
                   b"taker_buy_quote_volume\n")
        end = int(copies.ends[YEAR - 1]) + 1
        file.write(copies.text[:end])
    return path


def whole_process(repeat: int, out: Path) -> float:
    """Best wall seconds of the command a user types, after one warm-up run (which also writes the .pyc files)."""
    command = ["uv", "run", "main.py", "backtest", "--data", str(DATA), "--config", str(CONFIG), "--out", str(out),
               "--no-progress"]
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, cwd=ROOT, env=environment, check=True, capture_output=True)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=environment, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


def line(label: str, bars: int, wall: float, cpu: float, result: BacktestResult, extra: str = "") -> None:
    print(f"{label:<34} {bars / wall:>10,.0f} bars/s wall  {bars / cpu:>10,.0f} bars/s CPU  "
          f"{result.core.stats.closed_trades:>6} trades  {result.wake_bars:>7} wake bars{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-year", action="store_true", help="skip the year-long runs")
    parser.add_argument("--no-process", action="store_true", help="skip the whole-process timing")
    args = parser.parse_args()
    if not DATA.is_file():
        sys.exit(f"needs {DATA}")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPU(s); best of "
          f"{args.repeat}; load average {os.getloadavg()[0]:.1f}")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        year = None if args.no_year else write_year(Path(tmp))
        for fast, slow in ((200, 800), (10, 20)):
            config = config_for(fast, slow)
            wall, cpu, result = best(args.repeat, DATA, config)
            results[(fast, slow)] = result
            line(f"EMA {fast}/{slow}, 97,920 bars", result.bars, wall, cpu, result)
            base_wall, base_cpu, base = best(1, DATA, config, every_bar=True)
            line("  baseline: every bar", base.bars, base_wall, base_cpu, base,
                 f"   ratio {base_cpu / cpu:.1f}x (CPU)")
            if year is not None:
                wall, cpu, result = best(max(1, args.repeat - 1), year, config)
                line(f"EMA {fast}/{slow}, a year ({YEAR:,} bars)", result.bars, wall, cpu, result)
        costs = results[(10, 20)].costs.as_dict()
        print(f"order path (EMA 10/20): {costs['us_per_signal_minute']:.0f} us per minute with a signal "
              f"({costs['signal_minutes']} of them), {costs['us_per_quiet_minute']:.0f} us per quiet wake minute "
              "(CPU)")
        wire, typed = order_path(args.repeat)
        print(f"order path before/after: {wire:.0f} us per signal minute with the exchange's events as wire dicts "
              f"parsed again (before), {typed:.0f} us with typed events (after), ratio {wire / typed:.2f} "
              "(CPU, best of alternating runs)")
        if not args.no_process:
            seconds = whole_process(args.repeat, Path(tmp) / "out")
            print(f"whole process, uv run main.py backtest (EMA 200/800, 97,920 bars, reports and plots written): "
                  f"{seconds:.2f} s wall")


if __name__ == "__main__":
    main()
