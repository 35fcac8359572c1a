"""The market replay: recorded 1m candles released to the exchanges as the market clock passes their close.

``MarketReplay`` holds every symbol's candles, moves the exchanges' shared clock and feeds each candle, once,
to every account's ``SimExchange`` when the market clock passes its close (all symbols of one minute together, in
time order, the clock set to the minute's end first). It answers what the market looks like at any moment: the
candle still forming (revealed along the same intrabar path the fill model uses: open, then the nearer extreme, the
other extreme, the close, each leg a third of the minute, volumes pro rata), klines of any interval up to now
(aggregated from 1m), and the funding history the exchanges have settled.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from simulator.engine import SimExchange
from simulator.matching import candle_path
from utils.clock import SimulatedClock
from utils.domain import Candle
from utils.klines_csv import INTERVAL_MILLISECONDS

MINUTE_MS = 60_000
DAY_MS = 86_400_000
ZERO = Decimal(0)
# Binance's weekly klines open on Monday 00:00 UTC; the Unix epoch was a Thursday.
_WEEK_OFFSET_MS = 4 * DAY_MS
KLINE_INTERVALS: dict[str, int] = {name: ms for name, ms in INTERVAL_MILLISECONDS.items() if ms >= MINUTE_MS}


@dataclass(frozen=True, slots=True)
class FundingRecord:
    """One settled funding: GET /fapi/v1/fundingRate's entry."""

    symbol: str
    funding_time: int
    funding_rate: Decimal
    mark_price: Decimal


@dataclass(frozen=True, slots=True)
class KlineView:
    """A kline as the market shows it at some moment: the candle so far and its first/last trade ids."""

    candle: Candle
    first_trade_id: int
    last_trade_id: int


class _Series:
    """One symbol's 1m candles in time order, with the first trade id of each (ids are counted from the data)."""

    __slots__ = ("symbol", "candles", "open_times", "first_trade_ids", "next_index")

    def __init__(self, symbol: str, candles: Sequence[Candle]) -> None:
        self.symbol = symbol
        self.candles = list(candles)
        self.open_times = [candle.open_time for candle in self.candles]
        if any(b <= a for a, b in zip(self.open_times, self.open_times[1:], strict=False)):
            raise ValueError(f"{symbol}: candles must be in strictly increasing open time")
        ids = []
        total = 1
        for candle in self.candles:
            ids.append(total)
            total += candle.trades
        self.first_trade_ids = ids
        self.next_index = 0  # the first candle not yet fed to the exchanges

    def index_at(self, time_ms: int) -> int:
        """Index of the last candle opened at or before ``time_ms`` (-1 when none)."""
        return bisect.bisect_right(self.open_times, time_ms) - 1


def _quantize_like(value: Decimal, like: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    exponent = like.as_tuple().exponent
    assert isinstance(exponent, int)
    return value.quantize(Decimal(1).scaleb(exponent), rounding=rounding) if exponent < 0 else value.quantize(
        Decimal(1), rounding=rounding)


def forming_candle(candle: Candle, elapsed_ms: int, tick: Decimal) -> Candle:
    """``candle`` as it stood ``elapsed_ms`` after its open (0 <= elapsed < 60 000): the path so far, volume pro rata.

    Prices are on the tick grid and written with the data's decimals; quantities round down.
    """
    fraction = Decimal(min(max(elapsed_ms, 0), MINUTE_MS)) / MINUTE_MS
    points = candle_path(candle)
    position = fraction * 3
    segment = min(int(position), 2)
    along = position - segment
    start, end = points[segment], points[segment + 1]
    price = start + (end - start) * along
    price = _quantize_like((price / tick).to_integral_value(ROUND_HALF_EVEN) * tick, candle.open)
    visited = (*points[: segment + 1], price)
    return dataclasses.replace(
        candle,
        high=max(visited),
        low=min(visited),
        close=price,
        volume=_quantize_like(candle.volume * fraction, candle.volume, ROUND_DOWN),
        quote_volume=_quantize_like(candle.quote_volume * fraction, candle.quote_volume, ROUND_DOWN),
        trades=int(candle.trades * fraction),
        taker_buy_volume=_quantize_like(candle.taker_buy_volume * fraction, candle.taker_buy_volume, ROUND_DOWN),
        taker_buy_quote_volume=_quantize_like(candle.taker_buy_quote_volume * fraction,
                                              candle.taker_buy_quote_volume, ROUND_DOWN),
        closed=False,
    )


def aggregate(candles: Sequence[Candle], interval: str, bucket_start: int, interval_ms: int) -> Candle:
    """1m candles of one bucket as one kline of ``interval`` (open of the first, close of the last, sums)."""
    first, last = candles[0], candles[-1]
    return Candle(
        symbol=first.symbol, open_time=bucket_start, close_time=bucket_start + interval_ms - 1,
        open=first.open, high=max(c.high for c in candles), low=min(c.low for c in candles), close=last.close,
        volume=sum((c.volume for c in candles), ZERO),
        quote_volume=sum((c.quote_volume for c in candles), ZERO),
        trades=sum(c.trades for c in candles),
        taker_buy_volume=sum((c.taker_buy_volume for c in candles), ZERO),
        taker_buy_quote_volume=sum((c.taker_buy_quote_volume for c in candles), ZERO),
        interval=interval, closed=last.closed and last.close_time == bucket_start + interval_ms - 1)


def bucket_of(time_ms: int, interval_ms: int) -> int:
    offset = _WEEK_OFFSET_MS if interval_ms == 7 * DAY_MS else 0
    return (time_ms - offset) // interval_ms * interval_ms + offset


ClosedListener = Callable[[Candle, KlineView, int], None]


class MarketReplay:
    """Every symbol's candles, released to the exchanges as the market clock passes each close."""

    def __init__(self, candles: Mapping[str, Sequence[Candle]], exchanges: Sequence[SimExchange],
                 exchange_clock: SimulatedClock) -> None:
        if not candles:
            raise ValueError("the replay needs candles for at least one symbol")
        self._series = {symbol: _Series(symbol, series) for symbol, series in candles.items() if series}
        if not self._series:
            raise ValueError("every data series is empty")
        self._exchanges = list(exchanges)
        self._clock = exchange_clock
        self._closed_listeners: list[ClosedListener] = []
        self._funding: dict[str, list[FundingRecord]] = {symbol: [] for symbol in self._series}
        self._next_funding: dict[str, int] = {}
        self._ticks = {symbol: exchanges[0].filters(symbol).tick_size for symbol in self._series} if exchanges else {}

    # ------------------------------------------------------------------------------------------------ set-up
    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted(self._series))

    @property
    def first_open_time(self) -> int:
        return min(series.open_times[0] for series in self._series.values())

    @property
    def last_close_time(self) -> int:
        return max(series.candles[-1].close_time for series in self._series.values())

    def on_closed(self, listener: ClosedListener) -> None:
        """``listener(candle, view, event_time)`` for every candle as it closes (after the exchanges have it)."""
        self._closed_listeners.append(listener)

    # ------------------------------------------------------------------------------------------------ time
    def advance_to(self, now_ms: int) -> None:
        """Feed every candle that closed by ``now_ms`` (a minute at a time, all symbols), then set the clock."""
        while True:
            due = [s for s in self._series.values()
                   if s.next_index < len(s.candles) and s.candles[s.next_index].close_time < now_ms]
            if not due:
                break
            open_time = min(s.candles[s.next_index].open_time for s in due)
            group = [s for s in due if s.candles[s.next_index].open_time == open_time]
            group.sort(key=lambda s: s.symbol)
            self._feed(group)
        if now_ms > self._clock.now_ms():
            self._clock.set(now_ms)

    def _feed(self, group: Sequence[_Series]) -> None:
        close_time = max(s.candles[s.next_index].close_time for s in group)
        event_time = close_time + 1
        if event_time > self._clock.now_ms():
            self._clock.set(event_time)
        reference = self._exchanges[0] if self._exchanges else None
        marks = {s.symbol: reference.mark_price(s.symbol) for s in group} if reference else {}
        for series in group:
            candle = series.candles[series.next_index]
            for exchange in self._exchanges:
                exchange.on_candle(candle)
        for series in group:
            index = series.next_index
            candle = series.candles[index]
            series.next_index += 1
            if reference is not None:
                self._record_funding(reference, series.symbol, marks[series.symbol])
            view = KlineView(candle, series.first_trade_ids[index], series.first_trade_ids[index] + candle.trades - 1)
            for listener in self._closed_listeners:
                listener(candle, view, event_time)

    def _record_funding(self, exchange: SimExchange, symbol: str, mark_before: Decimal) -> None:
        upcoming = exchange.next_funding_time(symbol)
        previous = self._next_funding.get(symbol)
        self._next_funding[symbol] = upcoming
        if previous and upcoming != previous and previous <= self._clock.now_ms():
            self._funding[symbol].append(FundingRecord(symbol, previous, exchange.funding_rate(symbol),
                                                       mark_before))

    def skip_to(self, now_ms: int) -> None:
        """Mark every candle closed by ``now_ms`` as already fed (a restored exchange already has them)."""
        for series in self._series.values():
            series.next_index = bisect.bisect_left([c.close_time for c in series.candles], now_ms)
            if self._exchanges:
                self._next_funding[series.symbol] = self._exchanges[0].next_funding_time(series.symbol)
        if now_ms > self._clock.now_ms():
            self._clock.set(now_ms)

    # ------------------------------------------------------------------------------------------------ views
    def has_symbol(self, symbol: str) -> bool:
        return symbol in self._series

    def kline_at(self, symbol: str, now_ms: int) -> KlineView | None:
        """The 1m kline the market shows at ``now_ms``: the forming candle, or None outside the data."""
        series = self._series.get(symbol)
        if series is None:
            return None
        index = series.index_at(now_ms)
        if index < 0:
            return None
        candle = series.candles[index]
        if now_ms > candle.close_time:
            return None  # a gap in the data, or past its end
        shown = forming_candle(candle, now_ms - candle.open_time, self._ticks[symbol])
        first = series.first_trade_ids[index]
        return KlineView(shown, first, first + shown.trades - 1)

    def klines(self, symbol: str, interval: str, now_ms: int, *, start_time: int | None = None,
               end_time: int | None = None, limit: int = 500) -> list[Candle]:
        """GET /fapi/v1/klines: klines that opened by ``now_ms`` (the last one still forming), oldest first."""
        series = self._series.get(symbol)
        interval_ms = KLINE_INTERVALS[interval]
        if series is None:
            return []
        upper = now_ms if end_time is None else min(end_time, now_ms)
        if start_time is not None:
            first_bucket = bucket_of(start_time, interval_ms)
            if first_bucket < start_time:
                first_bucket += interval_ms
            last_bucket = min(bucket_of(upper, interval_ms), first_bucket + (limit - 1) * interval_ms)
        else:
            last_bucket = bucket_of(upper, interval_ms)
            first_bucket = last_bucket - (limit - 1) * interval_ms
        if last_bucket < first_bucket:
            return []
        lo = bisect.bisect_left(series.open_times, first_bucket)
        hi = bisect.bisect_left(series.open_times, last_bucket + interval_ms)
        minutes: list[Candle] = []
        for candle in series.candles[lo:hi]:
            if candle.open_time > now_ms:
                break
            if candle.close_time >= now_ms:
                candle = forming_candle(candle, now_ms - candle.open_time, self._ticks[symbol])
            minutes.append(candle)
        if interval_ms == MINUTE_MS:
            return minutes[-limit:] if start_time is None else minutes[:limit]
        result: list[Candle] = []
        bucket: list[Candle] = []
        current = None
        for candle in minutes:
            start = bucket_of(candle.open_time, interval_ms)
            if start != current and bucket:
                assert current is not None
                result.append(aggregate(bucket, interval, current, interval_ms))
                bucket = []
            current = start
            bucket.append(candle)
        if bucket and current is not None:
            result.append(aggregate(bucket, interval, current, interval_ms))
        return result[-limit:] if start_time is None else result[:limit]

    def funding_history(self, symbol: str | None, *, start_time: int | None = None, end_time: int | None = None,
                        limit: int = 100) -> list[FundingRecord]:
        """GET /fapi/v1/fundingRate: settled fundings, oldest first (the most recent ``limit`` without times)."""
        symbols: Iterable[str] = [symbol] if symbol is not None else sorted(self._funding)
        records = sorted((r for s in symbols for r in self._funding.get(s, [])),
                         key=lambda r: (r.funding_time, r.symbol))
        if start_time is None and end_time is None:
            return records[-limit:]
        selected = [r for r in records if (start_time is None or r.funding_time >= start_time)
                    and (end_time is None or r.funding_time <= end_time)]
        return selected[:limit]

    # ------------------------------------------------------------------------------------------------ state
    def funding_state(self) -> dict[str, list[list[str | int]]]:
        return {symbol: [[r.funding_time, str(r.funding_rate), str(r.mark_price)] for r in records]
                for symbol, records in self._funding.items()}

    def restore_funding(self, saved: Mapping[str, Sequence[Sequence[str | int]]]) -> None:
        for symbol, rows in saved.items():
            if symbol in self._funding:
                self._funding[symbol] = [FundingRecord(symbol, int(t), Decimal(str(rate)), Decimal(str(mark)))
                                         for t, rate, mark in rows]
