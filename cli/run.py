"""The ``run`` command: checks everything a run needs before it starts, runs the sim shell, and prints what it found.

Every check fails with one line naming the thing and what to do (exit code 2), before any candle is replayed:
the mode, STATUS_DIR, the data files, the database, the strategies. The logs folder is checked by ``main.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from cli.preflight import data_file_problems, writable_folder_problem
from config import AppConfig
from database.access import explain, open_for_writing, shown_url
from database.errors import DatabaseUnavailable
from runtime.heartbeat import utc_text
from utils.log import report_suppressed

if TYPE_CHECKING:  # sim mode's modules are imported by sim mode only: a live start does not pay for them
    from marketdata.replay import ReplaySource
    from utils.klines_csv import KlinesReport

#: Printed once Ctrl-C is handled cleanly (tests and scripts wait for it before they send SIGINT).
READY_LINE = "Running. Ctrl-C stops after the current minute and prints the summary."
_LINES_SHOWN = 5


def fail(message: str) -> int:
    print(message, file=sys.stderr, flush=True)
    return 2


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


def describe_report(report: KlinesReport) -> str | None:
    """One line on what was wrong with a replayed file (rows skipped, gaps), or ``None`` if nothing was."""
    parts = []
    if report.skipped:
        lines = ", ".join(str(row.line_number) for row in report.skipped[:_LINES_SHOWN])
        more = ", ..." if len(report.skipped) > _LINES_SHOWN else ""
        word = "lines" if len(report.skipped) != 1 else "line"
        parts.append(f"{_count(len(report.skipped), 'bad row')} skipped ({word} {lines}{more})")
    if report.gaps:
        first = report.gaps[0]
        parts.append(f"{_count(len(report.gaps), 'gap')} in time, {_count(report.missing_intervals, 'candle')} "
                     f"missing (the first after {utc_text(first.after_open_time)}, before line {first.line_number})")
    if not parts:
        return None
    return f"NOTE: {report.path.name}: {'; '.join(parts)}; each is in the log."


def _source(config: AppConfig, arguments: argparse.Namespace, speed: float) -> ReplaySource | None:
    data = list(arguments.data or config.settings.sim_data)
    if not data:
        return None
    from marketdata.replay import csv_source

    return csv_source(data, speed=speed, symbols=[symbol.symbol for symbol in config.symbols])


def stop_on_signals(stop: Callable[[], None]) -> None:
    """Ctrl-C (SIGINT) and SIGTERM ask the running shell to stop cleanly."""
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop)


def command_live(config: AppConfig, arguments: argparse.Namespace) -> int:
    """MODE=testnet / mainnet: check what can be checked here, then start the live shell."""
    from runtime.live import LiveTrader, StartupError, startup_problem

    settings = config.settings
    sim_only = [flag for flag, given in (("--data", arguments.data), ("--speed", arguments.speed is not None),
                                         ("--fresh-account", arguments.fresh_account)) if given]
    if sim_only:
        return fail(f"{', '.join(sim_only)}: only for MODE=sim (MODE={settings.mode.value} trades the exchange's "
                    "live market); leave them out, or set MODE=sim.")
    problem = startup_problem(config) or writable_folder_problem(settings.status_dir, "STATUS_DIR")
    if problem:
        return fail(f"cannot start live trading: {problem}")
    try:
        open_for_writing(settings.db_url).close()
    except DatabaseUnavailable as error:
        return fail(str(error))
    try:
        trader = LiveTrader(config, on_progress=lambda line: print(line, flush=True))
    except (StartupError, ValueError) as error:
        return fail(f"cannot start live trading: {error}")
    except SQLAlchemyError as error:
        return fail(explain(error, shown_url(settings.db_url)))
    real = " (REAL MONEY)" if settings.mode.value == "mainnet" else ""
    print(f"Live mode: {settings.mode.value}{real}. REST {settings.rest_base_url}, streams "
          f"{settings.ws_market_url} and {settings.ws_private_url}; position mode {settings.position_mode.value}.",
          flush=True)
    for line in trader.blocked_scopes():
        print(f"NOTE: {line}", flush=True)

    async def run() -> None:
        stop_on_signals(trader.stop)
        summary = await trader.run()
        report_suppressed()
        print(summary.render(), flush=True)

    try:
        asyncio.run(run())
    except StartupError as error:
        return fail(f"cannot start live trading: {error}")
    finally:
        trader.close()
    return 0


def command_run(config: AppConfig, arguments: argparse.Namespace) -> int:
    settings = config.settings
    if settings.mode.value != "sim":
        return command_live(config, arguments)
    if settings.market_data.value != "replay":
        return fail("MARKET_DATA=live in sim mode (live prices, simulated orders) is not supported: use "
                    "MARKET_DATA=replay (the default), or MODE=testnet for live prices on Binance's demo exchange.")
    problem = writable_folder_problem(settings.status_dir, "STATUS_DIR")
    if problem:
        return fail(problem)
    problems = data_file_problems(list(arguments.data or []))
    if problems:
        return fail("\n".join(problems))
    try:
        open_for_writing(settings.db_url).close()
    except DatabaseUnavailable as error:
        return fail(str(error))
    speed = settings.sim_speed if arguments.speed is None else arguments.speed
    try:
        source = _source(config, arguments, speed)
        from runtime.trader import SimTrader

        trader = SimTrader(config, source=source, days=arguments.days, speed=speed,
                           fresh_account=arguments.fresh_account)
    except ValueError as error:  # a data file that is not kline CSV, a strategy that fails to start, ...
        return fail(f"cannot start the sim run: {error}")
    except SQLAlchemyError as error:
        return fail(explain(error, shown_url(settings.db_url)))
    print(f"Sim mode. Data: {trader.source.description}", flush=True)
    print(f"NOTE: {trader.account_note}", flush=True)
    if trader.source.synthetic:
        print("NOTE: the prices in this run are SYNTHETIC (made up by the project), not market data.", flush=True)
    for note in trader.source.notes:
        print(f"NOTE: {note}", flush=True)
    if trader.symbols_without_data:
        print(f"NOTE: no data for {', '.join(trader.symbols_without_data)}: not traded in this run.", flush=True)
    for line in trader.blocked_scopes():
        print(f"NOTE: {line}", flush=True)

    async def run() -> None:
        stop_on_signals(trader.stop)
        print(READY_LINE, flush=True)
        summary = await trader.run()
        report_suppressed()
        for report in trader.source.reports:
            line = describe_report(report)
            if line:
                print(line, flush=True)
        print(summary.render(), flush=True)

    try:
        asyncio.run(run())
    except ValueError as error:  # e.g. a data file that turns out not to be kline CSV further down
        return fail(f"the sim run stopped: {error}")
    finally:
        trader.close()
    return 0
