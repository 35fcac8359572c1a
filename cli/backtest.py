"""``main.py backtest``: recorded klines through the configured strategies, risk guards, core and simulated exchange.

One run prints a summary table and the trade fingerprint and writes trades.csv, report.json, equity.html and
equity.png to ``--out``. A ``--param`` with several values (``fast=10,20,50``) runs every combination, in parallel
processes (or on a Ray cluster with ``--ray``), one result row each. See docs/backtesting.md.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from cli.arguments import since_time

DEFAULT_CONFIG = Path("config/symbols.toml")
DEFAULT_OUT = Path("backtests")


# ------------------------------------------------------------------------------------------- arguments
def param_value(text: str) -> bool | int | Decimal | str:
    """One parameter value as the config file would give it: true/false, an integer, a decimal, else text."""
    value = text.strip()
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = Decimal(value)
        if number.is_finite():
            return number
    except InvalidOperation:
        pass
    return value


def param_option(text: str) -> tuple[str, list[bool | int | Decimal | str]]:
    """``--param KEY=VALUE[,VALUE...]``."""
    key, separator, values = text.partition("=")
    key = key.strip()
    if not separator or not key or not values.strip():
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE or KEY=V1,V2,... such as fast=10 or fast=10,20,50 "
                                         f"(got {text!r})")
    return key, [param_value(value) for value in values.split(",")]


def decimal_option(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"must be a number (got {text!r})") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0 (got {text!r})")
    return value


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``backtest`` subcommand (called by ``cli/arguments.py``)."""
    command = sub.add_parser(
        "backtest", help="backtest the configured strategies on recorded klines (fast, no database)",
        description="Run recorded 1m klines through the strategies, risk guards, execution core and simulated\n"
                    "exchange of sim mode, as fast as it goes, and report trades, PnL, fees, funding, drawdown,\n"
                    "Sharpe and Sortino. Writes trades.csv, report.json, equity.html and equity.png to --out.\n"
                    "A --param with several values runs every combination (a sweep), one row each.",
        epilog="examples:\n"
               "  uv run main.py backtest --data ../shared/data/usdm_1m/BTCUSDT_usdm_1m_2023-01-01_2023-03-09.csv\n"
               "  uv run main.py backtest --data BTCUSDT.csv --config benchmarks/ema_long_only.toml "
               "--param fast=10 --param slow=20\n"
               "  uv run main.py backtest --data BTCUSDT.csv ETHUSDT.csv --strategy ema_crossover "
               "--param fast=10,20,50 --param slow=100,200\n"
               "  uv run main.py backtest --data BTCUSDT.csv --funding BTCUSDT_funding_rate.csv "
               "--from 2023-02-01 --to 2023-03-01",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("--data", nargs="+", type=Path, required=True, metavar="FILE",
                         help="kline CSV files (data.binance.vision layout, or open_time,open,high,low,close,volume),"
                              " one per symbol, named SYMBOL_... or SYMBOL-...")
    command.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE",
                         help=f"symbols, strategies and risk limits (symbols.toml layout; default {DEFAULT_CONFIG})")
    command.add_argument("--strategy", metavar="NAME", help="run only this strategy of the configuration")
    command.add_argument("--param", type=param_option, action="append", default=[], metavar="KEY=VALUE",
                         help="set a strategy parameter (several values, comma-separated, make a sweep)")
    command.add_argument("--funding", nargs="+", type=Path, default=[], metavar="FILE",
                         help="funding-rate files (funding_time_ms,funding_rate), one per symbol; without one, "
                              "the simulator's default rate (0.01 %% per 8 h)")
    command.add_argument("--from", dest="start", type=since_time, metavar="DATE",
                         help="first bar: a UTC date or time (2023-02-01, 2023-02-01T12:00)")
    command.add_argument("--to", dest="end", type=since_time, metavar="DATE",
                         help="end (exclusive): a UTC date or time")
    command.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                         help=f"where the reports go (default {DEFAULT_OUT}/)")
    command.add_argument("--balance", type=decimal_option, default=Decimal("10000"), metavar="USDT",
                         help="starting wallet balance (default 10000)")
    command.add_argument("--position-mode", choices=("ONEWAY", "HEDGE"), type=str.upper, default="ONEWAY",
                         help="the account's position mode (default ONEWAY)")
    command.add_argument("--taker-fee", type=decimal_option, metavar="RATE", help="taker fee rate (default 0.0005)")
    command.add_argument("--maker-fee", type=decimal_option, metavar="RATE", help="maker fee rate (default 0.0002)")
    command.add_argument("--slippage-bps", type=decimal_option, metavar="BPS",
                         help="half spread paid by every taker execution (default 1)")
    command.add_argument("--impact-bps", type=decimal_option, metavar="BPS",
                         help="square-root price impact at the whole candle's volume (default 10)")
    command.add_argument("--every-bar", action="store_true",
                         help="feed every bar to the exchange and the core (the slow reference the wake-bar "
                              "scheduling is tested against; same results)")
    command.add_argument("--workers", type=int, default=0, metavar="N",
                         help="sweeps: parallel processes (default: one per CPU)")
    command.add_argument("--ray", metavar="ADDRESS",
                         help="sweeps: run the combinations on this Ray cluster (ray://host:10001, or auto; needs "
                              "the ray extra: uv sync --extra ray)")
    command.add_argument("--no-progress", action="store_true", help="no progress bar")


# ------------------------------------------------------------------------------------------- one run
@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, picklable (sweeps send it to other processes or machines)."""

    data: tuple[Path, ...]
    funding: tuple[Path, ...]
    config: Path
    strategy: str | None
    params: tuple[tuple[str, Any], ...]
    start: int | None
    end: int | None
    balance: Decimal
    position_mode: str
    sim: tuple[tuple[str, Decimal], ...]
    every_bar: bool = False


def build_config(spec: RunSpec) -> Any:
    """The symbols configuration with ``--strategy`` and ``--param`` applied."""
    from config.problems import ConfigError
    from config.symbols import load_symbols

    try:
        config = load_symbols(spec.config)
    except ConfigError as error:
        raise ValueError(str(error)) from None
    symbols = []
    for symbol in config.symbols:
        strategies = [s for s in symbol.strategies if spec.strategy is None or s.name == spec.strategy]
        if spec.params:
            strategies = [s.model_copy(update={"params": {**s.params, **dict(spec.params)}}) for s in strategies]
        if strategies:
            symbols.append(symbol.model_copy(update={"strategies": strategies}))
    if not symbols:
        raise ValueError(f"no symbol of {spec.config} runs strategy {spec.strategy!r}; name one it configures, or "
                         "give a --config that runs it")
    return config.model_copy(update={"symbols": symbols})


def load_data(spec: RunSpec) -> tuple[list[Any], dict[str, Any], float]:
    from backtest.data import DataError, load_bars, load_funding

    started = time.perf_counter()
    series = [load_bars(path).window(spec.start, spec.end) for path in spec.data]
    empty = [s.path for s in series if len(s) == 0]
    if empty:
        raise DataError(f"{empty[0]}: no bars between --from and --to")
    funding = {}
    for path in spec.funding:
        rates = load_funding(path)
        funding[rates.symbol] = rates
    return series, funding, time.perf_counter() - started


def run_spec(spec: RunSpec, progress: Any = None, loaded: tuple[list[Any], dict[str, Any], float] | None = None) -> Any:
    """Load, run, and build the report of one run (in this process)."""
    from backtest.engine import Backtest
    from backtest.report import build_report
    from simulator.records import SimConfig
    from utils.domain import PositionMode

    config = build_config(spec)
    series, funding, load_seconds = loaded if loaded is not None else load_data(spec)
    symbols_with_data = {s.symbol for s in series}
    for rates in funding.values():
        if rates.symbol not in symbols_with_data:
            raise ValueError(f"{rates.path}: funding rates for {rates.symbol}, which has no --data file")
    backtest = Backtest(config, series, funding=funding, sim_config=SimConfig(**dict(spec.sim)),
                        position_mode=PositionMode(spec.position_mode), start_balance=spec.balance,
                        every_bar=spec.every_bar, progress=progress)
    result = backtest.run()
    result.load_seconds = load_seconds
    return build_report(result, {"params": {k: str(v) for k, v in spec.params}})


# ------------------------------------------------------------------------------------------- output
def _money(value: Decimal | float) -> str:
    return f"{value:,.2f}"


def print_summary(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    result = report.result
    table = Table(title="Backtest summary", title_justify="left")
    for name in ("strategy", "symbol", "trades", "win rate", "net PnL", "fees", "funding", "max DD", "max DD %",
                 "Sharpe", "Sortino", "exposure"):
        table.add_column(name, justify="left" if name in ("strategy", "symbol") else "right")
    for row in report.rows:
        table.add_row(row.strategy, row.symbol, str(row.trades), f"{row.win_rate:.1%}" if row.trades else "-",
                      _money(row.net_pnl), _money(row.fees), _money(row.funding), _money(row.max_drawdown),
                      f"{row.max_drawdown_pct:.2f}", f"{row.sharpe:.2f}", f"{row.sortino:.2f}", f"{row.exposure:.1%}",
                      end_section=row.strategy == "all")
    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(table)
    document = report.as_dict()
    total = result.seconds + result.load_seconds
    console.print(f"bars {result.bars:,} ({result.wake_bars:,} through the exchange and core), signals "
                  f"{result.signals:,}, orders {document['orders']:,}, fills {document['fills']:,}")
    console.print(f"wallet {_money(document_decimal(document['wallet_balance']))} USDT (start "
                  f"{_money(result.start_balance)}), equity {_money(document_decimal(document['equity']))}")
    console.print(f"engine {result.seconds:.3f} s + reading the data {result.load_seconds:.3f} s = "
                  f"{result.bars / total if total else 0:,.0f} bars/s")
    if document["open_positions"]:
        console.print("open at the end: " + "; ".join(f"{p['symbol']} {p['position_side']} {p['amount']} at "
                                                     f"{p['entry_price']}" for p in document["open_positions"]))
    for line in document["disabled_strategies"]:
        console.print(f"[red]disabled[/red] {line}")
    if result.funding_missing:
        console.print(f"{result.funding_missing} funding time(s) had no rate in the funding file: the default "
                      "rate was used")
    console.print(f"trade fingerprint {report.fingerprint}")


def document_decimal(text: str) -> Decimal:
    return Decimal(text)


def _progress_bar(total: int, enabled: bool) -> tuple[Any, Any]:
    if not enabled:
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("backtest"), BarColumn(), MofNCompleteColumn(), TextColumn("bars"),
                        TimeRemainingColumn(), transient=True)
    task = progress.add_task("bars", total=total)
    return progress, lambda done: progress.advance(task, done)


# ------------------------------------------------------------------------------------------- command
def spec_from(arguments: argparse.Namespace, params: Sequence[tuple[str, Any]]) -> RunSpec:
    sim = {"taker_fee_rate": arguments.taker_fee, "maker_fee_rate": arguments.maker_fee,
           "slippage_bps": arguments.slippage_bps, "impact_bps": arguments.impact_bps}
    return RunSpec(tuple(arguments.data), tuple(arguments.funding), arguments.config, arguments.strategy,
                   tuple(params), arguments.start, arguments.end, arguments.balance, arguments.position_mode,
                   tuple((k, v) for k, v in sim.items() if v is not None), arguments.every_bar)


def command_backtest(arguments: argparse.Namespace) -> int:
    from backtest.data import DataError
    from strategies.registry import StrategyError

    names = [key for key, _ in arguments.param]
    if len(set(names)) != len(names):
        print(f"--param {next(n for n in names if names.count(n) > 1)} is given twice: give its values "
              "comma-separated in one --param", file=sys.stderr)
        return 2
    grid = [list(zip(names, combination, strict=True))
            for combination in itertools.product(*(values for _, values in arguments.param))]
    try:
        if len(grid) > 1:
            from backtest.sweep import run_sweep

            return run_sweep([spec_from(arguments, params) for params in grid], arguments)
        spec = spec_from(arguments, grid[0] if grid else [])
        build_config(spec)  # a bad configuration is reported before the data is read
        loaded = load_data(spec)
        bars = sum(len(s) for s in loaded[0])
        progress, advance = _progress_bar(bars, not arguments.no_progress and sys.stderr.isatty())
        if progress is not None:
            with progress:
                report = run_spec(spec, advance, loaded)
        else:
            report = run_spec(spec, None, loaded)
    except (DataError, StrategyError, ValueError) as error:
        print(str(error), file=sys.stderr)
        return 2
    print_summary(report)
    try:
        written = report.write(arguments.out)
    except OSError as error:
        print(f"cannot write the reports to {arguments.out}: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(path) for path in written))
    return 0
