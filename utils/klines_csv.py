"""Reads and writes data.binance.vision USD-M kline CSV files as ``Candle`` objects, one row at a time.

Three layouts are understood, with or without a header row (a first line whose first field is not an integer):

* 12 columns, Binance's own: ``open_time,open,high,low,close,volume,close_time,quote_volume,count,
  taker_buy_volume,taker_buy_quote_volume,ignore``;
* 11 columns, the same without ``ignore`` (the layout of ``../shared/data/usdm_1m`` and of what we write);
* 6 columns, ``open_time_ms,open,high,low,close,volume``: ``close_time`` is then ``open_time + interval - 1 ms``.

Times are integer milliseconds; data.binance.vision switched some 2025+ archives to microseconds (16 digits),
which are detected per value (anything >= 10**15) and converted to milliseconds. Prices and volumes stay the
exact decimal strings of the file. A ``.zip`` archive holding one CSV (as downloaded) is read directly.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

from utils.domain import Candle

logger = logging.getLogger("utils.klines_csv")

# What we write: the 11-column layout, header included.
HEADER = (
    "open_time_ms",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time_ms",
    "quote_volume",
    "trades",
    "taker_buy_volume",
    "taker_buy_quote_volume",
)
COLUMN_COUNTS = (6, 11, 12)
# 10**15 ms is the year 33658; a time this large can only be microseconds.
MICROSECONDS_THRESHOLD = 10**15
INTERVAL_MILLISECONDS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
BAD_ROW_ADVICE = "fix or delete the row, or read with skip_bad=True to log and skip bad rows"
_NAME_SEPARATORS = re.compile(r"[_\-.]")
_SYMBOL_PREFIX = re.compile(r"([^_\-.]+)[_\-]")
_UNSIGNED_INTEGER = re.compile(r"\s*[0-9]+\s*")


class KlinesCsvError(ValueError):
    """A row that is not a kline: carries the file, the line number and what is wrong with it."""

    def __init__(self, path: Path, line_number: int, problem: str, advice: str = "") -> None:
        super().__init__(f"{path}:{line_number}: {problem}{f' ({advice})' if advice else ''}")
        self.path = path
        self.line_number = line_number
        self.problem = problem


def symbol_from_filename(path: str | Path) -> str:
    """The symbol a kline file is named after: the part of its name before the first ``_`` or ``-``."""
    name = Path(path).name
    match = _SYMBOL_PREFIX.match(name)
    if match is None:
        raise ValueError(
            f"cannot tell the symbol from the file name {name!r} (expected e.g. BTCUSDT_usdm_1m_....csv or "
            "BTCUSDT-1m-2024-01-01.csv); pass symbol= explicitly"
        )
    return match.group(1)


def interval_from_filename(path: str | Path, default: str = "1m") -> str:
    """The kline interval a file name mentions (``BTCUSDT-5m-2024-01-01.csv`` -> ``5m``), else ``default``."""
    for token in _NAME_SEPARATORS.split(Path(path).name):
        if token in INTERVAL_MILLISECONDS:
            return token
    return default


def to_milliseconds(timestamp: int) -> int:
    """A Binance timestamp in milliseconds, converting the microseconds some 2025+ archives use."""
    return timestamp // 1000 if timestamp >= MICROSECONDS_THRESHOLD else timestamp


@dataclass(frozen=True, slots=True)
class SkippedRow:
    line_number: int
    problem: str


@dataclass(frozen=True, slots=True)
class Gap:
    """``missing`` candles absent after the one opening at ``after_open_time``; the next row is ``line_number``."""

    line_number: int
    after_open_time: int
    open_time: int
    missing: int


@dataclass
class KlinesReport:
    """What reading one file found, filled in as its rows are read: candles, rows skipped, gaps in time."""

    path: Path
    candles: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    @property
    def missing_intervals(self) -> int:
        return sum(gap.missing for gap in self.gaps)


def read_klines_csv(
    path: str | Path,
    symbol: str | None = None,
    *,
    interval: str | None = None,
    skip_bad: bool = False,
    report: KlinesReport | None = None,
) -> Iterator[Candle]:
    """Yield the file's candles in file order, one row at a time (memory stays flat for any file size).

    ``symbol`` defaults to the file-name prefix and ``interval`` to the interval the file name mentions (else
    ``1m``). A bad row raises :class:`KlinesCsvError` naming the file and line, or with ``skip_bad=True`` is logged
    (logger ``utils.klines_csv``) and skipped. Bad rows: malformed (columns, numbers), impossible (high below low,
    open or close outside high..low, a price <= 0, a negative volume, close time before open time), or not after
    the row before (a duplicated or out-of-order open time). A gap in time (missing candles) is logged, not
    skipped. ``report``, if given, counts the candles and records every skipped row and gap.
    """
    path = Path(path)
    symbol = symbol or symbol_from_filename(path)
    interval = interval or interval_from_filename(path)
    if interval not in INTERVAL_MILLISECONDS:
        raise ValueError(f"unknown kline interval {interval!r}; known: {', '.join(INTERVAL_MILLISECONDS)}")
    if not path.is_file():
        raise FileNotFoundError(f"kline file not found: {path}")
    return _read_rows(path, symbol, interval, skip_bad, report if report is not None else KlinesReport(path))


def load_klines_csv(
    path: str | Path,
    symbol: str | None = None,
    *,
    interval: str | None = None,
    skip_bad: bool = False,
) -> list[Candle]:
    """All of the file's candles at once, as a list (see :func:`read_klines_csv`)."""
    return list(read_klines_csv(path, symbol, interval=interval, skip_bad=skip_bad))


def write_klines_csv(path: str | Path, candles: Iterable[Candle]) -> int:
    """Write candles in the 11-column layout with a header row; return how many rows were written.

    Decimals are written with ``str`` so reading the file back gives the very same values, trailing zeros included.
    """
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(HEADER)
        for candle in candles:
            writer.writerow(
                (
                    candle.open_time,
                    candle.open,
                    candle.high,
                    candle.low,
                    candle.close,
                    candle.volume,
                    candle.close_time,
                    candle.quote_volume,
                    candle.trades,
                    candle.taker_buy_volume,
                    candle.taker_buy_quote_volume,
                )
            )
            count += 1
    return count


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    """The CSV text of a plain file, or of the single CSV inside a ``.zip`` archive."""
    if path.suffix.lower() != ".zip":
        with open(path, newline="", encoding="utf-8") as file:
            yield file
        return
    with zipfile.ZipFile(path) as archive:
        members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
        if len(members) != 1:
            raise ValueError(f"{path}: expected exactly one .csv inside the archive, found {members}")
        with archive.open(members[0]) as raw:
            yield io.TextIOWrapper(raw, encoding="utf-8", newline="")


def _read_rows(path: Path, symbol: str, interval: str, skip_bad: bool, report: KlinesReport) -> Iterator[Candle]:
    interval_ms = INTERVAL_MILLISECONDS[interval]
    previous: Candle | None = None
    with _open_text(path) as file:
        reader = csv.reader(file)
        expected_columns: int | None = None
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if expected_columns is None:
                if len(row) not in COLUMN_COUNTS:
                    problem = f"first row has {len(row)} columns; kline files have 6, 11 or 12: is this a kline file?"
                    raise KlinesCsvError(path, reader.line_num, problem)
                expected_columns = len(row)
                if not _is_integer(row[0]):
                    continue  # header row
            try:
                candle = _candle_from_row(row, expected_columns, symbol, interval, interval_ms)
                if previous is not None and candle.open_time <= previous.open_time:
                    what = "the same as" if candle.open_time == previous.open_time else "before"
                    raise ValueError(f"open_time {candle.open_time} is {what} the previous row's "
                                     f"({previous.open_time}): a duplicated or out-of-order row")
            except ValueError as error:
                if not skip_bad:
                    raise KlinesCsvError(path, reader.line_num, f"{error}: {row!r}", BAD_ROW_ADVICE) from None
                report.skipped.append(SkippedRow(reader.line_num, str(error)))
                logger.warning(
                    "skipped a bad kline row",
                    extra={"path": str(path), "line_number": reader.line_num, "problem": str(error), "row": row},
                )
                continue
            if previous is not None and candle.open_time > previous.open_time + interval_ms:
                gap = Gap(reader.line_num, previous.open_time, candle.open_time,
                          (candle.open_time - previous.open_time) // interval_ms - 1)
                report.gaps.append(gap)
                logger.warning(
                    "gap in the kline data",
                    extra={"path": str(path), "line_number": reader.line_num, "missing": gap.missing,
                           "after_open_time": gap.after_open_time, "open_time": gap.open_time},
                )
            previous = candle
            report.candles += 1
            yield candle


def _candle_from_row(row: list[str], expected_columns: int, symbol: str, interval: str, interval_ms: int) -> Candle:
    if len(row) != expected_columns:
        raise ValueError(f"{len(row)} columns where the file has {expected_columns}")
    open_time = to_milliseconds(_integer(row[0], "open_time"))
    open_, high, low, close, volume = (
        _decimal(row[index], name) for index, name in enumerate(("open", "high", "low", "close", "volume"), 1)
    )
    _check_prices(open_, high, low, close)
    _check_not_negative(volume, "volume")
    if len(row) == 6:
        close_time = open_time + interval_ms - 1
        return Candle(symbol, open_time, close_time, open_, high, low, close, volume, interval=interval)
    close_time = to_milliseconds(_integer(row[6], "close_time"))
    if close_time < open_time:
        raise ValueError(f"close_time {close_time} is before open_time {open_time}")
    return Candle(
        symbol,
        open_time,
        close_time,
        open_, high, low, close, volume,
        quote_volume=_check_not_negative(_decimal(row[7], "quote_volume"), "quote_volume"),
        trades=_integer(row[8], "trades"),
        taker_buy_volume=_check_not_negative(_decimal(row[9], "taker_buy_volume"), "taker_buy_volume"),
        taker_buy_quote_volume=_check_not_negative(_decimal(row[10], "taker_buy_quote_volume"),
                                                   "taker_buy_quote_volume"),
        interval=interval,
    )


def _check_prices(open_: Decimal, high: Decimal, low: Decimal, close: Decimal) -> None:
    for name, price in (("open", open_), ("high", high), ("low", low), ("close", close)):
        if price <= 0:
            raise ValueError(f"{name} must be a price above 0 (got {price})")
    if high < low:
        raise ValueError(f"high {high} is below low {low}")
    for name, price in (("open", open_), ("close", close)):
        if not low <= price <= high:
            raise ValueError(f"{name} {price} is outside the candle's low..high ({low}..{high})")


def _check_not_negative(value: Decimal, column: str) -> Decimal:
    if value < 0:
        raise ValueError(f"{column} is negative ({value})")
    return value


def _is_integer(text: str) -> bool:
    return _UNSIGNED_INTEGER.fullmatch(text) is not None


def _integer(text: str, column: str) -> int:
    if not _is_integer(text):
        raise ValueError(f"{column} is not a non-negative integer ({text!r})")
    return int(text)


def _decimal(text: str, column: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{column} is not a number ({text!r})") from None
    if not value.is_finite():
        raise ValueError(f"{column} is not a finite number ({text!r})")
    return value
