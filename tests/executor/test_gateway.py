"""Fill paging within Binance's userTrades rules: 1000 rows a page, 7-day windows, fromId never with times."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

from executor.gateway import TRADES_WINDOW_MS, fills_since
from utils.domain import Fill, PositionSide, Side

DAY = 86_400_000
NOW = 200 * DAY


def trade(trade_id: int, time: int) -> Fill:
    return Fill("BTCUSDT", trade_id, 1, "c", Side.BUY, PositionSide.BOTH, D(1), D(1), D(1), D(0), "USDT", D(0),
                False, time)


class Exchange:
    """userTrades over a list of trades, enforcing Binance's parameter rules."""

    def __init__(self, trades: list[Fill]) -> None:
        self.trades, self.calls = trades, []

    async def page(self, symbol, *, from_id=None, start_time=None, end_time=None, limit=1000):
        self.calls.append((from_id, start_time, end_time))
        assert limit <= 1000
        if from_id is not None:
            assert start_time is None and end_time is None, "fromId is never combined with times"
            return [t for t in self.trades if t.trade_id >= from_id][:limit]
        if end_time is None:  # Binance: up to 7 days from the start
            end_time = start_time + TRADES_WINDOW_MS - 1
        assert end_time - start_time < TRADES_WINDOW_MS + 1, "a window is at most 7 days"
        return [t for t in self.trades if start_time <= t.time <= end_time][:limit]


def test_paging_by_from_id_gets_everything_once() -> None:
    exchange = Exchange([trade(i, NOW - 1_000 + i) for i in range(2_500)])
    fills = asyncio.run(fills_since(exchange.page, "BTCUSDT", from_id=10, start_time=None, now=NOW))
    assert [f.trade_id for f in fills] == list(range(10, 2_500)) and len(exchange.calls) == 3


def test_paging_by_time_walks_seven_day_windows_then_continues_by_id() -> None:
    trades = [trade(i, NOW - 20 * DAY + i * 60_000) for i in range(10)]  # 20 days ago: a few
    trades += [trade(100 + i, NOW - 3 * DAY + i) for i in range(1_500)]  # 3 days ago: more than a page
    exchange = Exchange(trades)
    fills = asyncio.run(fills_since(exchange.page, "BTCUSDT", from_id=None, start_time=NOW - 25 * DAY, now=NOW))
    assert [f.trade_id for f in fills] == [t.trade_id for t in trades]


def test_history_older_than_three_months_is_not_asked_for() -> None:
    exchange = Exchange([trade(1, NOW - 100 * DAY), trade(2, NOW - DAY)])
    fills = asyncio.run(fills_since(exchange.page, "BTCUSDT", from_id=None, start_time=NOW - 120 * DAY, now=NOW))
    assert [f.trade_id for f in fills] == [2]
    assert min(start for _, start, _ in exchange.calls if start is not None) >= NOW - 90 * DAY


def test_a_fill_after_the_callers_market_time_is_not_missed() -> None:
    """At start-up the core's time is the last closed candle's: the exchange's clock is up to a minute ahead."""
    market_now = NOW
    exchange = Exchange([trade(1, market_now - 5_000), trade(2, market_now + 30_000), trade(3, market_now + 59_000)])
    fills = asyncio.run(fills_since(exchange.page, "BTCUSDT", from_id=None, start_time=market_now - 60_000,
                                    now=market_now))
    assert [f.trade_id for f in fills] == [1, 2, 3]


def test_a_start_time_ahead_of_the_callers_clock_still_asks() -> None:
    exchange = Exchange([trade(7, NOW + 10_000)])
    fills = asyncio.run(fills_since(exchange.page, "BTCUSDT", from_id=None, start_time=NOW + 5_000, now=NOW))
    assert [f.trade_id for f in fills] == [7]
