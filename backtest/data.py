"""Kline and funding-rate files read column-wise (numpy) for the backtest, with exact Decimal candles on demand.

The numbers a strategy and the wake-bar checks need (times, open, high, low, close, volume) are parsed once into
numpy arrays; a :class:`~utils.domain.Candle` with the file's exact decimal strings is built only for the bars the
simulated exchange and the execution core see (``BarSeries.candle``). The layouts are those of
``utils/klines_csv.py``: 12 or 11 columns (data.binance.vision) or 6 (``open_time_ms,open,high,low,close,volume``),
with or without a header, plain or a ``.zip`` holding one CSV; microsecond times are converted to milliseconds.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from utils.domain import Candle
from utils.klines_csv import (
    COLUMN_COUNTS,
    INTERVAL_MILLISECONDS,
    MICROSECONDS_THRESHOLD,
    interval_from_filename,
    symbol_from_filename,
)


class DataError(ValueError):
    """A data file the backtest cannot use; the message names the file (and line) and what is wrong."""


def _symbol_of(path: Path) -> str:
    try:
        return symbol_from_filename(path)
    except ValueError as error:
        raise DataError(f"{path}: {error}") from None


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
                if len(members) != 1:
                    raise DataError(f"{path}: expected exactly one .csv inside the archive, found {members}")
                return archive.read(members[0])
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: cannot be read: {type(error).__name__}: {error}") from None


def _split_header(text: bytes, path: Path) -> tuple[bytes, int, int]:
    """(the data rows, the line number of the first one, the number of columns)."""
    first_end = text.find(b"\n")
    first = (text if first_end < 0 else text[:first_end]).decode("utf-8", "replace").strip()
    if not first:
        raise DataError(f"{path}: the file is empty")
    fields = first.split(",")
    if len(fields) not in COLUMN_COUNTS:
        raise DataError(f"{path}:1: first row has {len(fields)} columns; kline files have 6, 11 or 12: is this a "
                        "kline file?")
    if fields[0].strip().isdigit():
        return text, 1, len(fields)
    return (b"" if first_end < 0 else text[first_end + 1:]), 2, len(fields)


def _bounds(text: bytes) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The rows of ``text`` (blank last lines dropped): the text and where each row begins and ends."""
    text = text.rstrip(b"\r\n\t ") + b"\n"
    ends = np.flatnonzero(np.frombuffer(text, np.uint8) == 10)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return text, starts, ends


@dataclass
class BarSeries:
    """One symbol's bars: numpy columns for the hot loop, the rows' text for exact candles."""

    symbol: str
    path: Path
    interval: str
    open_time: np.ndarray  # int64 ms
    close_time: np.ndarray  # int64 ms
    open: np.ndarray  # float64
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    text: bytes = field(repr=False)  # the rows, as read
    starts: np.ndarray = field(repr=False)  # where each row begins in ``text`` ...
    ends: np.ndarray = field(repr=False)  # ... and ends
    columns: int = 11
    offset: int = 0  # index of this series' first bar in ``starts`` (a window keeps the rows of the whole file)

    def __len__(self) -> int:
        return len(self.open_time)

    def row(self, index: int) -> str:
        """The text of bar ``index``'s row."""
        position = index + self.offset
        return self.text[int(self.starts[position]):int(self.ends[position])].decode("ascii").strip()

    def candle(self, index: int) -> Candle:
        """Bar ``index`` as a Candle with the file's exact decimal strings."""
        fields = self.row(index).split(",")
        open_time, close_time = int(self.open_time[index]), int(self.close_time[index])
        prices = [Decimal(text) for text in fields[1:6]]
        if self.columns == 6:
            return Candle(self.symbol, open_time, close_time, *prices, interval=self.interval)
        return Candle(self.symbol, open_time, close_time, *prices, quote_volume=Decimal(fields[7]),
                      trades=int(fields[8]), taker_buy_volume=Decimal(fields[9]),
                      taker_buy_quote_volume=Decimal(fields[10]), interval=self.interval)

    def window(self, start_ms: int | None, end_ms: int | None) -> BarSeries:
        """The bars opening at or after ``start_ms`` and before ``end_ms`` (None: no bound)."""
        first = 0 if start_ms is None else int(np.searchsorted(self.open_time, start_ms, "left"))
        last = len(self) if end_ms is None else int(np.searchsorted(self.open_time, end_ms, "left"))
        part = slice(first, last)
        return BarSeries(self.symbol, self.path, self.interval, self.open_time[part], self.close_time[part],
                         self.open[part], self.high[part], self.low[part], self.close[part], self.volume[part],
                         self.text, self.starts, self.ends, self.columns, self.offset + first)

    def shifted_copies(self, times: int) -> BarSeries:
        """This series repeated ``times`` times end to end, each copy's times moved past the previous one (for
        benchmarks: a longer run on real bars)."""
        span = int(self.open_time[-1] - self.open_time[0]) + INTERVAL_MILLISECONDS[self.interval]
        shifts = np.repeat(np.arange(times, dtype=np.int64) * span, len(self))
        rows = []
        for copy in range(times):
            shift = copy * span
            for row in (self.row(index) for index in range(len(self))):
                head, _, rest = row.partition(",")
                if self.columns == 6:
                    rows.append(f"{int(head) + shift},{rest}")
                else:
                    fields = rest.split(",")
                    fields[5] = str(int(fields[5]) + shift)
                    rows.append(f"{int(head) + shift}," + ",".join(fields))
        text, starts, ends = _bounds(("\n".join(rows) + "\n").encode("ascii"))
        return BarSeries(self.symbol, self.path, self.interval, np.tile(self.open_time, times) + shifts,
                         np.tile(self.close_time, times) + shifts, np.tile(self.open, times),
                         np.tile(self.high, times), np.tile(self.low, times), np.tile(self.close, times),
                         np.tile(self.volume, times), text, starts, ends, self.columns, 0)


def load_bars(path: str | Path, symbol: str | None = None) -> BarSeries:
    """Read one kline file; raises :class:`DataError` naming the file, the line and the problem."""
    path = Path(path)
    symbol = symbol or _symbol_of(path)
    interval = interval_from_filename(path)
    body, first_line, columns = _split_header(_read_bytes(path), path)
    if not body.strip():
        raise DataError(f"{path}: no kline rows")
    text, starts, ends = _bounds(body)
    used = (0, 1, 2, 3, 4, 5) if columns == 6 else (0, 1, 2, 3, 4, 5, 6)
    try:
        table = np.loadtxt(io.BytesIO(text), delimiter=",", usecols=used, dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise DataError(f"{path}: not a kline file of {columns} numeric columns: {error}") from None
    if table.shape[0] != len(starts):
        raise DataError(f"{path}: {len(starts)} lines but {table.shape[0]} rows: remove the blank lines inside it")
    raw_open = table[:, 0].astype(np.int64)
    open_time = np.where(raw_open >= MICROSECONDS_THRESHOLD, raw_open // 1000, raw_open)
    if columns == 6:
        close_time = open_time + (INTERVAL_MILLISECONDS[interval] - 1)
    else:
        raw_close = table[:, 6].astype(np.int64)
        close_time = np.where(raw_close >= MICROSECONDS_THRESHOLD, raw_close // 1000, raw_close)
    open_, high, low, close, volume = (np.ascontiguousarray(table[:, k]) for k in range(1, 6))
    series = BarSeries(symbol, path, interval, open_time, close_time, open_, high, low, close, volume, text, starts,
                       ends, columns)
    _check(series, first_line)
    return series


def _check(series: BarSeries, first_line: int) -> None:
    path, open_time, close_time = series.path, series.open_time, series.close_time
    open_, high, low, close, volume = series.open, series.high, series.low, series.close, series.volume
    problems = [
        (np.diff(open_time, prepend=open_time[0] - 1) <= 0, "open_time is not after the previous row's "
                                                             "(a duplicated or out-of-order row)"),
        (close_time < open_time, "close_time is before open_time"),
        ((open_ <= 0) | (high <= 0) | (low <= 0) | (close <= 0), "a price is not above 0"),
        (high < np.maximum(open_, close), "high is below open or close"),
        (low > np.minimum(open_, close), "low is above open or close"),
        (volume < 0, "volume is negative"),
        (~np.isfinite(open_ + high + low + close + volume), "a value is not a finite number"),
    ]
    for bad, problem in problems:
        if bad.any():
            index = int(np.argmax(bad))
            raise DataError(f"{path}:{first_line + index}: {problem}: {series.row(index)!r}")


@dataclass(frozen=True, slots=True)
class FundingRates:
    """A symbol's funding-rate history: rate by funding time, the time taken to the minute (Binance's
    ``fundingTime`` can sit a few milliseconds after the hour)."""

    symbol: str
    path: Path
    rates: dict[int, Decimal]

    def rate_at(self, funding_time: int) -> Decimal | None:
        return self.rates.get(funding_time - funding_time % 60_000)


def load_funding(path: str | Path, symbol: str | None = None) -> FundingRates:
    """Read a ``funding_time_ms,funding_rate`` file (a header row is allowed)."""
    path = Path(path)
    symbol = symbol or _symbol_of(path)
    rates: dict[int, Decimal] = {}
    for number, line in enumerate(io.StringIO(_read_bytes(path).decode("utf-8", "replace")), 1):
        text = line.strip()
        if not text:
            continue
        fields = text.split(",")
        if len(fields) < 2:
            raise DataError(f"{path}:{number}: expected funding_time_ms,funding_rate, got {text!r}")
        if number == 1 and not fields[0].strip().isdigit():
            continue  # header
        try:
            time, rate = int(fields[0]), Decimal(fields[1])
        except (ValueError, InvalidOperation):
            raise DataError(f"{path}:{number}: expected funding_time_ms,funding_rate, got {text!r}") from None
        if not rate.is_finite():
            raise DataError(f"{path}:{number}: funding rate {fields[1]!r} is not a number")
        time = time // 1000 if time >= MICROSECONDS_THRESHOLD else time
        rates[time - time % 60_000] = rate
    if not rates:
        raise DataError(f"{path}: no funding rates")
    return FundingRates(symbol, path, rates)
