"""The user-data events of ``simulator.events`` built directly as the bot's parsed types (for in-process shells).

``SimExchange.deliver_typed_events()`` makes the exchange hand its listeners these instead of wire dicts: each
builder gives what ``utils.binance_parse.parse_user_event`` makes of the corresponding ``simulator.events`` dict
(the amounts Binance rounds to 8 decimals are rounded the same way), without building the dict and parsing it
again. ``tests/simulator/test_typed_events.py`` checks them against the parser, event for event.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from simulator.events import COMMISSION_ASSET, money_text, price_text
from simulator.records import AlgoOrder
from utils.binance_parse import AccountUpdate, AlgoUpdate, OrderUpdate
from utils.domain import (
    ZERO,
    Balance,
    ExecutionType,
    Fill,
    MarginType,
    Order,
    Position,
)


def _rounded(value: Decimal, text: str) -> Decimal:
    return ZERO if not value else Decimal(text)


def order_update(order: Order, *, time: int, execution: ExecutionType, last_quantity: Decimal = ZERO,
                 last_price: Decimal = ZERO, commission: Decimal = ZERO, trade_id: int = 0, maker: bool = False,
                 realized_pnl: Decimal = ZERO) -> OrderUpdate:
    """What parsing ``events.order_trade_update(order, ...)`` gives."""
    average = _rounded(order.avg_price, price_text(order.avg_price))
    executed = order.executed_quantity
    parsed = Order(order.symbol, order.order_id, order.client_order_id, order.side, order.order_type, order.status,
                   order.quantity, order.price, order.time_in_force, order.position_side, order.reduce_only,
                   order.close_position, order.stop_price, executed, executed * average, average,
                   order.working_type, 0, time)
    fill = None
    if execution is ExecutionType.TRADE or (execution is ExecutionType.CALCULATED and last_quantity > 0):
        fill = Fill(order.symbol, trade_id, order.order_id, order.client_order_id, order.side, order.position_side,
                    last_price, last_quantity, last_price * last_quantity, commission, COMMISSION_ASSET,
                    realized_pnl, maker, time)
    return OrderUpdate(time, execution, parsed, fill)


def position(*, symbol: str, amount: Decimal, entry_price: Decimal, break_even_price: Decimal,
             accumulated_realized: Decimal, unrealized_pnl: Decimal, margin_type: MarginType,
             isolated_wallet: Decimal, position_side: object, time: int) -> Position:
    """What parsing one ``events.position_entry(...)`` of an ACCOUNT_UPDATE at ``time`` gives."""
    return Position(symbol, position_side, amount,  # type: ignore[arg-type]  # a PositionSide
                    _rounded(entry_price, price_text(entry_price)),
                    _rounded(break_even_price, price_text(break_even_price)), accumulated_realized,
                    _rounded(unrealized_pnl, money_text(unrealized_pnl)), ZERO, 1, margin_type,
                    _rounded(isolated_wallet, money_text(isolated_wallet)), time)


def account_update(*, time: int, reason: str, wallet: Decimal, cross_wallet: Decimal, balance_change: Decimal,
                   positions: Sequence[Position]) -> AccountUpdate:
    """What parsing ``events.account_update(...)`` with one USDT balance entry gives."""
    balance = Balance(COMMISSION_ASSET, _rounded(wallet, money_text(wallet)),
                      _rounded(cross_wallet, money_text(cross_wallet)),
                      _rounded(balance_change, money_text(balance_change)))
    return AccountUpdate(time, reason, (balance,), tuple(positions))


def algo_update(algo: AlgoOrder, *, time: int) -> AlgoUpdate:
    """What parsing ``events.algo_update(algo, time=time)`` gives."""
    return AlgoUpdate(time, algo.algo_id, algo.client_algo_id, algo.symbol, algo.side, algo.order_type, algo.status,
                      algo.position_side, algo.quantity or ZERO, algo.trigger_price or ZERO, algo.close_position,
                      algo.reduce_only,
                      algo.working_type, algo.reject_reason or "", algo.actual_order_id or None)
