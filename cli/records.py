"""The listing commands (``trades``, ``orders``, ``positions``, ``signals``): stored rows, filtered, as a table or JSON.

Each listing is a list of :class:`~cli.tables.Column` and a function from the repository and the filters to row
dicts; :func:`list_command` runs one against a database that must already exist (it is never created here).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cli.tables import Column, number_column, print_rows, time_column
from database.access import open_existing
from database.models import OrderRecord
from database.repository import Repository
from utils.domain import Position, Side, TripStatus


@dataclass(frozen=True, slots=True)
class Filters:
    """What ``--strategy``, ``--symbol`` and ``--since`` ask for (``None``: no filter)."""

    strategy: str | None = None
    symbol: str | None = None
    since_ms: int | None = None

    @classmethod
    def from_arguments(cls, arguments: argparse.Namespace) -> Filters:
        return cls(strategy=arguments.strategy, symbol=arguments.symbol, since_ms=arguments.since)

    def keep(self, *, strategy: str | None, symbol: str, time_ms: int) -> bool:
        return ((self.strategy is None or strategy == self.strategy)
                and (self.symbol is None or symbol == self.symbol)
                and (self.since_ms is None or time_ms >= self.since_ms))


Rows = list[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing command: its title, columns, and how it reads its rows."""

    title: str
    columns: tuple[Column, ...]
    rows: Callable[[Repository, Filters, argparse.Namespace], Rows]
    ordered: str = "oldest first"


# ------------------------------------------------------------------------------------------------- orders

ORDER_COLUMNS = (
    time_column("intent_time", "decided (UTC)"),
    Column("strategy", "strategy"),
    Column("symbol", "symbol"),
    Column("purpose", "purpose"),
    Column("side", "side"),
    Column("order_type", "type"),
    number_column("quantity", "quantity"),
    number_column("price", "price"),
    Column("status", "status"),
    number_column("executed_quantity", "filled"),
    number_column("avg_price", "avg price"),
    Column("reject", "rejected", wrap=True),
    Column("client_order_id", "client order id"),
)


def _order_row(order: OrderRecord) -> dict[str, Any]:
    price = order.price or order.stop_price or None  # a MARKET order has neither (stored as 0 or NULL)
    reject = f"{order.reject_code}: {order.reject_message}" if order.reject_code is not None else order.reject_message
    return {
        "intent_time": order.intent_time, "strategy": order.strategy, "symbol": order.symbol,
        "purpose": order.purpose, "side": order.side, "order_type": order.order_type, "quantity": order.quantity,
        "price": price, "status": order.status if order.status is not None else order.intent_state,
        "executed_quantity": order.executed_quantity, "avg_price": order.avg_price or None, "reject": reject,
        "client_order_id": order.client_order_id, "order_id": order.order_id, "update_time": order.update_time,
    }


def order_rows(repository: Repository, filters: Filters, _arguments: argparse.Namespace) -> Rows:
    return [_order_row(order) for order in repository.all_orders(filters.symbol)
            if filters.keep(strategy=order.strategy, symbol=order.symbol, time_ms=order.intent_time)]


# ---------------------------------------------------------------------------------------------- positions

POSITION_COLUMNS = (
    Column("symbol", "symbol"),
    Column("position_side", "side"),
    number_column("amount", "amount"),
    number_column("entry_price", "entry price"),
    number_column("break_even_price", "break-even"),
    number_column("leverage", "leverage"),
    Column("margin_type", "margin"),
    Column("strategy", "owner"),
    time_column("update_time", "updated (UTC)"),
)


def position_owners(repository: Repository) -> dict[tuple[str, str], str]:
    """For each (symbol, position side), the strategy whose order filled last there (the owner of the position)."""
    strategies = {order.client_order_id: order.strategy for order in repository.all_orders()}
    owners: dict[tuple[str, str], str] = {}
    for fill in repository.all_fills():  # oldest first: the last fill wins
        strategy = strategies.get(fill.client_order_id)
        if strategy:
            owners[(fill.symbol, fill.position_side.value)] = strategy
    return owners


def _position_row(position: Position, owner: str | None) -> dict[str, Any]:
    return {
        "symbol": position.symbol, "position_side": position.position_side, "amount": position.amount,
        "entry_price": position.entry_price, "break_even_price": position.break_even_price,
        "leverage": position.leverage,
        "margin_type": position.margin_type, "strategy": owner, "update_time": position.update_time,
    }


def position_rows(repository: Repository, filters: Filters, arguments: argparse.Namespace) -> Rows:
    owners = position_owners(repository)
    rows: Rows = []
    for position in repository.positions(filters.symbol):
        owner = owners.get((position.symbol, position.position_side.value)) if position.amount else None
        if (position.amount or arguments.all) and filters.keep(strategy=owner, symbol=position.symbol,
                                                               time_ms=position.update_time):
            rows.append(_position_row(position, owner))
    return rows


# ------------------------------------------------------------------------------------------------ signals

SIGNAL_COLUMNS = (
    time_column("time", "time (UTC)"),
    Column("strategy", "strategy"),
    Column("symbol", "symbol"),
    Column("side", "side"),
    Column("outcome", "outcome"),
    Column("outcome_detail", "why", wrap=True),
    Column("reason", "strategy's reason", wrap=True),
)


def signal_rows(repository: Repository, filters: Filters, _arguments: argparse.Namespace) -> Rows:
    rows: Rows = []
    for record in repository.signal_records(filters.strategy, filters.symbol, filters.since_ms):
        signal = record.signal
        rows.append({
            "time": signal.time, "strategy": signal.strategy, "symbol": signal.symbol, "side": signal.side,
            "strength": signal.strength, "reason": signal.reason, "candle_open_time": signal.candle_open_time,
            "outcome": record.outcome if record.outcome is not None else "", "outcome_detail": record.outcome_detail,
            "client_order_ids": list(record.client_order_ids),
        })
    return rows


# ------------------------------------------------------------------------------------------------- trades

TRADE_COLUMNS = (
    time_column("open_time", "opened (UTC)"),
    time_column("close_time", "closed (UTC)"),
    Column("strategy", "strategy"),
    Column("symbol", "symbol"),
    Column("direction", "side"),
    number_column("quantity", "quantity"),
    number_column("entry_price", "entry"),
    number_column("exit_price", "exit"),
    number_column("realized_pnl", "realized PnL"),
    number_column("commission", "fees"),
    number_column("net_pnl", "net PnL"),
    Column("status", "status"),
)


def trade_rows(repository: Repository, filters: Filters, arguments: argparse.Namespace) -> Rows:
    rows: Rows = []
    for trip in repository.round_trips(strategy=filters.strategy, symbol=filters.symbol, since_time=filters.since_ms):
        if trip.status is TripStatus.OPEN and not arguments.open:
            continue
        rows.append({
            "trip_id": trip.trip_id, "open_time": trip.open_time, "close_time": trip.close_time,
            "strategy": trip.strategy, "symbol": trip.symbol, "position_side": trip.position_side,
            "direction": "LONG" if trip.direction is Side.BUY else "SHORT", "quantity": trip.quantity,
            "entry_price": _rounded(trip.entry_price), "exit_price": _rounded(trip.exit_price) or None,
            "realized_pnl": trip.realized_pnl, "commission": trip.commission, "net_pnl": trip.net_pnl,
            "status": trip.status, "fills": trip.fills,
        })
    return rows


def _rounded(price: Decimal) -> Decimal:
    """An average price to 8 places (sums of fills divide into long fractions)."""
    return price.quantize(Decimal("0.00000001")).normalize() if price else price


LISTINGS = {
    "trades": Listing("trades", TRADE_COLUMNS, trade_rows),
    "orders": Listing("orders", ORDER_COLUMNS, order_rows),
    "positions": Listing("positions", POSITION_COLUMNS, position_rows, ordered="by symbol"),
    "signals": Listing("signals", SIGNAL_COLUMNS, signal_rows),
}


def list_command(db_url: str, arguments: argparse.Namespace) -> int:
    """Print one listing; the database must exist (:class:`~database.access.DatabaseMissing` otherwise)."""
    listing = LISTINGS[arguments.command]
    with open_existing(db_url) as repository:
        rows = listing.rows(repository, Filters.from_arguments(arguments), arguments)
    filters = [f"{name}={value}" for name, value in (("strategy", arguments.strategy), ("symbol", arguments.symbol))
               if value]
    title = listing.title + (f" ({', '.join(filters)})" if filters else "")
    print_rows(rows, listing.columns, title=title, as_json=arguments.json, limit=arguments.limit,
               ordered=listing.ordered, empty="none stored" + (" that match" if filters or arguments.since else ""))
    return 0
