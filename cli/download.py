"""``uv run main.py download``: fetch 1m klines and funding rates from Binance's public REST API into CSV files.

The arguments are checked here (symbols, UTC days, the output folder), the work is ``marketdata/download.py``'s;
this module shows a progress bar while it runs and one line per file, and every gap the exchange has, at the end.
Describing the options imports nothing but the standard library (every ``main.py`` start builds the parser); the
REST client, rich and the settings are imported when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings
    from marketdata.download import FileResult, SymbolResult, TimeRange

DEFAULT_OUT = Path("data")
_SYMBOL = re.compile(r"[A-Z0-9]{2,20}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Shown for the symbols' gaps beyond this many (the rest are counted).
GAPS_SHOWN = 10


def symbol_list(text: str) -> list[str]:
    """``--symbols``: comma-separated symbols such as ``BTCUSDT,ETHUSDT`` (any case; repeats dropped)."""
    symbols: list[str] = []
    for part in text.split(","):
        symbol = part.strip().upper()
        if not _SYMBOL.fullmatch(symbol):
            raise argparse.ArgumentTypeError(
                f"must be symbols separated by commas, such as BTCUSDT,ETHUSDT (got {part.strip()!r} in {text!r})")
        if symbol not in symbols:
            symbols.append(symbol)
    return symbols


def utc_day_start(text: str) -> int:
    """``--from`` / ``--to``: a UTC day ``YYYY-MM-DD``, as epoch milliseconds at its 00:00."""
    value = text.strip()
    try:
        if not _DAY.fullmatch(value):
            raise ValueError
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a UTC day such as 2024-01-01 (got {text!r})") from None
    if day.year < 2000:
        raise argparse.ArgumentTypeError(f"must be a day from 2000 on (got {text!r})")
    return int(day.timestamp()) * 1000


def add_arguments(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "download", help="download 1m klines and funding rates from Binance into CSV files",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Download 1m klines (GET /fapi/v1/klines) and funding rates (GET /fapi/v1/fundingRate) of\n"
                    "USD-M futures over Binance's public REST API (no API key) into the CSV files `run --data`,\n"
                    "`simserver --data` and the backtester read: SYMBOL_usdm_1m_FIRST_LAST.csv and\n"
                    "SYMBOL_funding_rate_FIRST_LAST.csv. Days are UTC; --to is not included. Running it again\n"
                    "continues where an interrupted run stopped; minutes the exchange has no kline for are\n"
                    "reported, never filled in. REST_BASE_URL chooses the server (default: Binance's mainnet).",
        epilog="examples:\n"
               "  uv run main.py download --symbols BTCUSDT,ETHUSDT --from 2024-01-01 --to 2024-02-01\n"
               "  uv run main.py download --symbols BTCUSDT --from 2024-01-01 --to 2024-01-08 --out ~/klines")
    parser.add_argument("--symbols", type=symbol_list, required=True, metavar="A,B",
                        help="symbols separated by commas, e.g. BTCUSDT,ETHUSDT")
    parser.add_argument("--from", dest="start_ms", type=utc_day_start, required=True, metavar="DAY",
                        help="first UTC day, e.g. 2024-01-01")
    parser.add_argument("--to", dest="end_ms", type=utc_day_start, required=True, metavar="DAY",
                        help="the UTC day after the last one (not included), e.g. 2024-02-01 for all of January")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help=f"folder for the files (default {DEFAULT_OUT}/; created if missing)")


def _day(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%d")


def _range_problem(arguments: argparse.Namespace, now_ms: int) -> str | None:
    start, end = arguments.start_ms, arguments.end_ms
    if end <= start:
        return (f"--to {_day(end)} is not after --from {_day(start)}: --to is the day after the last one to "
                "download (e.g. --from 2024-01-01 --to 2024-02-01 for January)")
    if start > now_ms:
        return f"--from {_day(start)} is in the future: there is nothing to download yet"
    return None


def _settings(env_file: Path) -> Settings:
    """The settings alone (the download needs no symbols.toml, API keys or database)."""
    from pydantic import ValidationError

    from config.problems import ConfigError, problems_from_validation_error
    from config.settings import SECRET_FIELDS, Settings

    chosen = env_file if env_file.is_file() else None
    try:
        return Settings(_env_file=chosen)  # _env_file: pydantic-settings' own keyword
    except ValidationError as error:
        source = f"environment and {chosen}" if chosen is not None else "environment"
        problems = problems_from_validation_error(error, source=source, root=Settings, upper_first=True,
                                                  hidden_fields=SECRET_FIELDS)
    raise ConfigError(problems)


def download_base_url(settings: Settings) -> str:
    """``REST_BASE_URL``, else the mode's; in sim mode mainnet's public host (market data sends no order)."""
    from config.settings import MAINNET_ENDPOINTS

    return settings.rest_base_url or MAINNET_ENDPOINTS.rest_base_url


def command_download(env_file: Path, arguments: argparse.Namespace) -> int:
    from cli.preflight import writable_folder_problem
    from config.problems import ConfigError
    from marketdata.download import DownloadError, TimeRange, utc_minute
    from utils.log import setup_logging

    problem = _range_problem(arguments, time.time_ns() // 1_000_000)
    problem = problem or writable_folder_problem(arguments.out, "--out")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        settings = _settings(env_file)
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return 2
    setup_logging(settings.log_level.value, None, console_format=settings.log_format.value)
    base_url = download_base_url(settings)
    span = TimeRange(arguments.start_ms, arguments.end_ms)
    print(f"download: {', '.join(arguments.symbols)}, {utc_minute(span.start_ms)} to "
          f"{utc_minute(span.end_ms - 1)} UTC ({span.minutes:,} minutes each), from {base_url} into "
          f"{arguments.out}/")
    try:
        results = asyncio.run(_download(base_url, arguments.symbols, span, arguments.out))
    except DownloadError as error:
        print(f"download stopped: {error}", file=sys.stderr)
        if error.after_writing:
            print("the files hold every complete row fetched so far: run the same command again to continue.",
                  file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("download interrupted: the files hold every complete row fetched so far; run the same command "
              "again to continue.", file=sys.stderr)
        return 130
    _print_results(results)
    return 0


async def _download(base_url: str, symbols: Sequence[str], span: TimeRange, out: Path) -> list[SymbolResult]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from marketdata.download import Downloader
    from utils.rest import RestClient

    logging.getLogger("utils.timesync").setLevel(logging.WARNING)  # the offset is of no interest here
    console = Console(stderr=True)
    async with RestClient(base_url) as rest:
        downloader = Downloader(rest, out, notice=lambda line: console.print(line, markup=False, highlight=False))
        await downloader.start(symbols)
        results = []
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("minutes"), TimeRemainingColumn(), console=console, transient=False) as progress:
            tasks = {symbol: progress.add_task(symbol, total=downloader.minutes_left(symbol, span))
                     for symbol in symbols}
            downloader.progress = lambda symbol, minutes: progress.advance(tasks[symbol], minutes)
            for symbol in symbols:
                results.append(await downloader.download(symbol, span))
                task = tasks[symbol]
                progress.update(task, total=progress.tasks[task].completed)
        return results


def _print_results(results: Sequence[SymbolResult]) -> None:
    from marketdata.download import utc_minute

    notes: list[str] = []
    for result in results:
        for kind, file in (("klines", result.klines), ("funding", result.funding)):
            state = "" if kind == "funding" else ", complete" if result.complete and not file.gaps else (
                f", {sum(gap.minutes for gap in file.gaps):,} minutes missing (see below)")
            print(f"{result.symbol:<12} {kind:<8} {file.path}  {_rows(file)}{state}")
            if file.dropped_rows or file.dropped_partial_bytes:
                notes.append(f"{file.path}: an interrupted earlier run left {file.dropped_rows} bad row(s) and "
                             f"{file.dropped_partial_bytes} byte(s) of an incomplete row at its end: cut off and "
                             "fetched again")
        notes.extend(_gap_notes(result.symbol, "klines", result.klines, "no kline"))
        notes.extend(_gap_notes(result.symbol, "funding", result.funding, "no funding for more than 8 hours"))
        if not result.complete:
            notes.append(f"{result.symbol}: the range ends after the last closed minute "
                         f"({utc_minute(result.until_ms - 1)} UTC): run the same command again later to complete "
                         "it")
    for note in notes:
        print(f"NOTE {note}")


def _rows(file: FileResult) -> str:
    return f"{file.rows:,} rows ({file.rows_written:,} new)"


def _gap_notes(symbol: str, kind: str, file: FileResult, what: str) -> list[str]:
    if not file.gaps:
        return []
    lines = [f"{symbol} {kind}: the exchange has {what} from {gap.describe()}" for gap in file.gaps[:GAPS_SHOWN]]
    if len(file.gaps) > GAPS_SHOWN:
        rest = file.gaps[GAPS_SHOWN:]
        lines.append(f"{symbol} {kind}: {len(rest)} more gaps, {sum(g.minutes for g in rest):,} minutes in all")
    lines.append(f"{symbol} {kind}: gaps are left as they are (no rows invented); {file.path.name} has "
                 f"{sum(g.minutes for g in file.gaps):,} minutes missing" if kind == "klines" else
                 f"{symbol} {kind}: gaps are left as they are")
    return lines

