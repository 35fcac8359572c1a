"""Replay market data: closed 1m candles of several symbols, merged in time order, at full speed or N x real time.

Sources: data.binance.vision-format kline CSV files (one per symbol), or the project's synthetic generator when
no file is given (and the source then says, in its description, that the data is synthetic).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from marketdata.synthetic import MINUTE_MS, synthetic_candles
from utils.domain import Candle
from utils.klines_csv import KlinesReport, read_klines_csv, symbol_from_filename

#: Where the synthetic default run starts: 2023-04-20 00:00 UTC (a Thursday), chosen to resemble the shipped data.
SYNTHETIC_START_MS = 1_681_948_800_000


def merge_minutes(streams: Iterable[Iterable[Candle]]) -> Iterator[list[Candle]]:
    """Candles of several symbols grouped by open time, groups in time order, symbols sorted within a group."""
    merged = heapq.merge(*streams, key=lambda candle: (candle.open_time, candle.symbol))
    for _, group in itertools.groupby(merged, key=lambda candle: candle.open_time):
        yield list(group)


@dataclass
class ReplaySource:
    """A time-ordered stream of candle groups (one group per minute) with its description."""

    streams: dict[str, Iterable[Candle]]
    description: str
    synthetic: bool
    speed: float = 0.0  # 0: as fast as possible; N: N x real time
    candles_emitted: int = 0
    last_open_time: int = 0
    warmup: dict[str, list[Candle]] = field(default_factory=dict)
    #: Things an operator should know before the run (e.g. a file that is not replayed), one line each.
    notes: list[str] = field(default_factory=list)
    #: One per replayed file, filled in as it is read: candles, skipped rows, gaps.
    reports: list[KlinesReport] = field(default_factory=list)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted(self.streams))

    def take_warmup(self, counts: dict[str, int]) -> dict[str, list[Candle]]:
        """Take the first ``counts[symbol]`` candles of each stream for strategy warm-up (they are not traded)."""
        for symbol, count in counts.items():
            iterator = iter(self.streams[symbol])
            taken = list(itertools.islice(iterator, count))
            self.warmup[symbol] = taken
            self.streams[symbol] = iterator
        return self.warmup

    async def minutes(self) -> AsyncIterator[list[Candle]]:
        loop = asyncio.get_running_loop()
        started_wall = loop.time()
        started_data: int | None = None
        for group in merge_minutes(self.streams.values()):
            open_time = group[0].open_time
            if self.speed > 0:
                if started_data is None:
                    started_data = open_time
                due = started_wall + (open_time - started_data) / 1000 / self.speed
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            self.candles_emitted += len(group)
            self.last_open_time = open_time
            yield group


def csv_source(paths: Sequence[Path], *, speed: float = 0.0, symbols: Sequence[str] | None = None) -> ReplaySource:
    """One CSV per symbol (the symbol comes from the file name, e.g. ``BTCUSDT_usdm_1m_...csv``).

    Files for a symbol not in ``symbols``, and files with no candles at all, are not replayed; each gets a line in
    the source's ``notes``. Bad rows are logged (file and line) and skipped, like a malformed WebSocket frame, and
    gaps in time are logged; both are counted in the source's ``reports``, one per replayed file.
    """
    streams: dict[str, Iterable[Candle]] = {}
    notes: list[str] = []
    reports: list[KlinesReport] = []
    for path in paths:
        symbol = symbol_from_filename(path)
        if symbols is not None and symbol not in symbols:
            notes.append(f"{path.name} is for {symbol}, which is not a configured symbol ({', '.join(symbols)}): "
                         "not replayed")
            continue
        if symbol in streams:
            raise ValueError(f"two data files for {symbol}: give one file per symbol ({path})")
        report = KlinesReport(path)
        candles = read_klines_csv(path, symbol, skip_bad=True, report=report)
        first = next(candles, None)
        if first is None:
            notes.append(f"{path.name} holds no candles (it is empty, or has nothing but a header or bad rows): "
                         "not replayed")
            continue
        streams[symbol] = itertools.chain((first,), candles)
        reports.append(report)
    if not streams:
        raise ValueError(f"none of the data files {', '.join(map(str, paths))} has candles for a configured symbol "
                         f"({', '.join(symbols or [])})" + (f": {'; '.join(notes)}" if notes else ""))
    names = ", ".join(path.name for path in paths)
    return ReplaySource(streams, f"recorded klines from {names}", synthetic=False, speed=speed, notes=notes,
                        reports=reports)


def synthetic_source(symbols: Sequence[str], *, days: float, warmup: int = 0, speed: float = 0.0,
                     seed: int = 7, after_ms: int | None = None,
                     start_prices: Mapping[str, Decimal] | None = None) -> ReplaySource:
    """Made-up candles for ``symbols``: ``warmup`` minutes before the start, then ``days`` of trading.

    The start is 2023-04-20 00:00 UTC, or, with ``after_ms`` (a simulated account that continues), the first minute
    after it: the walk then goes on from ``start_prices`` with a seed of its own, so a continued run never repeats
    the earlier one's candles.
    """
    count = int(days * 1440) + warmup
    trading_start = SYNTHETIC_START_MS
    if after_ms is not None and after_ms >= SYNTHETIC_START_MS - warmup * MINUTE_MS:
        trading_start = (after_ms // MINUTE_MS + 1) * MINUTE_MS + warmup * MINUTE_MS
        seed = seed + (trading_start - SYNTHETIC_START_MS) // MINUTE_MS
    start = trading_start - warmup * MINUTE_MS
    prices = start_prices or {}
    streams: dict[str, Iterable[Candle]] = {
        symbol: synthetic_candles(symbol, start_ms=start, count=count, seed=seed, start_price=prices.get(symbol))
        for symbol in symbols
    }
    description = (f"SYNTHETIC data: a seeded random walk (seed {seed}) for {', '.join(symbols)}, {days:g} days; "
                   "not real prices. Set SIM_DATA to replay recorded klines instead.")
    return ReplaySource(streams, description, synthetic=True, speed=speed)
