"""The exchange operations a shell carries out for the execution core (an async protocol), and fill paging.

The core never calls an exchange: it returns commands, and a shell runs them against an
:class:`ExchangeGateway` (``runtime/applier.py``). In sim mode and backtests that is the in-process simulator
(``simulator/gateway.py``, whose coroutines never suspend); live, the Binance REST client. Errors are
:class:`~utils.errors.BinanceError` (the exchange answered) or :class:`~utils.errors.OutcomeUnknownError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from executor.commands import AlgoAck
from utils.domain import Fill, Order, OrderIntent, Position

__all__ = ["AccountInfo", "AlgoAck", "ExchangeGateway", "TRADES_PAGE", "fills_since"]

#: Binance's userTrades page (rows) and window (7 days), and how far back it keeps trades (3 months).
TRADES_PAGE = 1000
TRADES_WINDOW_MS = 7 * 86_400_000
TRADES_HISTORY_MS = 90 * 86_400_000


@dataclass(frozen=True, slots=True)
class AccountInfo:
    wallet_balance: Decimal
    available_balance: Decimal
    equity: Decimal
    unrealized_pnl: Decimal


class ExchangeGateway(Protocol):
    """Everything a shell asks of an exchange for the core."""

    async def place_order(self, intent: OrderIntent) -> Order: ...
    async def place_algo_order(self, intent: OrderIntent) -> AlgoAck: ...
    async def cancel_order(self, symbol: str, client_order_id: str) -> Order: ...
    async def cancel_algo_order(self, client_algo_id: str) -> AlgoAck: ...
    async def query_order(self, symbol: str, client_order_id: str) -> Order: ...
    async def query_algo_order(self, client_algo_id: str) -> AlgoAck: ...
    async def open_orders(self, symbol: str | None = None) -> list[Order]: ...
    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoAck]: ...
    async def positions(self, symbol: str | None = None) -> list[Position]: ...
    async def account(self) -> AccountInfo: ...
    async def user_trades(self, symbol: str, *, from_id: int | None = None, start_time: int | None = None,
                          end_time: int | None = None, limit: int = TRADES_PAGE) -> list[Fill]: ...


TradesPage = Callable[..., Awaitable[list[Fill]]]


async def fills_since(page: TradesPage, symbol: str, *, from_id: int | None, start_time: int | None,
                      now: int) -> list[Fill]:
    """Every fill of ``symbol`` from trade id ``from_id`` (or from ``start_time``) on, within Binance's rules.

    ``userTrades`` returns at most 1000 rows, a time window of at most 7 days, never combines ``fromId`` with
    times, and keeps 3 months of history: so times are walked in 7-day windows from ``start_time``, then the rest
    is paged by ``fromId`` from the last trade found. The last window has no end time (Binance then returns up to 7
    days from its start): ``now`` is the caller's market time, which at start-up is the last closed candle's and
    lags the exchange's clock by up to a minute, and a fill of that minute must not be missed.
    """
    fills: list[Fill] = []
    if from_id is None and start_time is not None:
        window_start = max(start_time, now - TRADES_HISTORY_MS)
        while True:
            last = window_start + TRADES_WINDOW_MS - 1 >= now
            window_end = None if last else window_start + TRADES_WINDOW_MS - 1
            rows = await page(symbol, start_time=window_start, end_time=window_end, limit=TRADES_PAGE)
            fills.extend(rows)
            if rows and (last or len(rows) >= TRADES_PAGE):
                from_id = max(row.trade_id for row in rows) + 1  # the rest (and anything after), by id
                break
            if last or window_end is None:
                break
            window_start = window_end + 1
    while from_id is not None:
        rows = await page(symbol, from_id=from_id, limit=TRADES_PAGE)
        fills.extend(rows)
        if len(rows) < TRADES_PAGE:
            break
        from_id = rows[-1].trade_id + 1
    unique = {fill.trade_id: fill for fill in fills}
    return [unique[trade_id] for trade_id in sorted(unique)]
