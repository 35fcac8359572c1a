"""Reconciliation as a plan: compare what the bot holds with what the exchange holds, and say what to change.

A pure function (:func:`plan`) from the local books (the execution core's memory, seeded from the database) and an
exchange snapshot (open orders, open algo orders, positions, account, every fill since the last one we hold,
and a lookup of every order we think may be live) to a :class:`ReconcilePlan`: which orders resolved how, which
fills are missing, which orders nobody here placed, and which differences nothing explains. The execution core
applies the plan through its normal paths (so the books and the database move together); a shell never
interprets it. Whatever cannot be explained halts new entries until an operator clears the halt: the bot
refuses to trade on a mismatch it cannot explain.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from executor.commands import ExchangeSnapshot, LookupResult, Outcome
from executor.ids import is_our_client_order_id
from utils.domain import ZERO, Fill, IntentState, Order, OrderPurpose, OrderStatus, PositionSide, Side

PositionKey = tuple[str, PositionSide]


@dataclass(frozen=True, slots=True)
class LiveOrder:
    """An order the bot thinks is (or may be) working on the exchange."""

    symbol: str
    is_algo: bool
    intent_state: IntentState
    first_sent: int
    purpose: OrderPurpose
    status: OrderStatus | None


@dataclass(frozen=True, slots=True)
class LocalBooks:
    live_orders: dict[str, LiveOrder]
    holdings: dict[PositionKey, Decimal]  # non-zero positions, signed
    owners: dict[PositionKey, str | None]
    known_client_order_ids: frozenset[str]
    fills: Mapping[tuple[str, int], tuple[int, Side, Decimal, Decimal]]  # key -> (order id, side, price, qty)
    symbols: frozenset[str]
    problems: tuple[str, ...] = ()  # the books contradict themselves (found when they were loaded)


@dataclass
class ReconcilePlan:
    resolved: list[LookupResult] = field(default_factory=list)  # orders the exchange reported: apply them
    never_placed: list[str] = field(default_factory=list)  # "not found" over the whole window
    still_unknown: list[str] = field(default_factory=list)  # not found yet, but the window is still open
    vanished: list[str] = field(default_factory=list)  # acknowledged once, now unknown to the exchange
    foreign_orders: list[Order] = field(default_factory=list)  # open on the exchange, not placed by this bot
    adopted_orders: list[Order] = field(default_factory=list)  # ours by their id, missing from the database
    missing_fills: list[Fill] = field(default_factory=list)  # in trade order
    fresh_account_flat: list[tuple[PositionKey, Decimal]] = field(default_factory=list)
    flat_on_exchange: list[PositionKey] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)  # differences explained and repaired
    warnings: list[str] = field(default_factory=list)  # worth a look, no reason to stop
    problems: list[str] = field(default_factory=list)  # differences nothing explains: trading halts

    @property
    def clean(self) -> bool:
        return not self.problems


def plan(local: LocalBooks, snapshot: ExchangeSnapshot, *, unknown_window_ms: int) -> ReconcilePlan:
    result = ReconcilePlan(problems=list(local.problems))
    _orders(local, snapshot, unknown_window_ms, result)
    _foreign(local, snapshot, result)
    _fills(local, snapshot, result)
    _positions(local, snapshot, result)
    return result


def _orders(local: LocalBooks, snapshot: ExchangeSnapshot, window_ms: int, result: ReconcilePlan) -> None:
    answered = {lookup.client_order_id: lookup for lookup in snapshot.lookups}
    for cid, live in sorted(local.live_orders.items()):
        lookup = answered.get(cid)
        if lookup is None:
            continue  # sent after the reconciliation began: its own answer and reports settle it
        if lookup.outcome is Outcome.ACCEPTED:
            result.resolved.append(lookup)
            reported = lookup.order.status.value if lookup.order is not None else \
                lookup.algo.status.value if lookup.algo is not None else None
            held = live.status.value if live.status is not None else None
            if reported != held:
                result.fixed.append(f"order {cid}: {held or live.intent_state.value} here, {reported} on the "
                                    "exchange (taken from the exchange)")
            continue
        if lookup.outcome is not Outcome.NOT_FOUND:
            result.still_unknown.append(cid)
            result.problems.append(f"order {cid} ({live.symbol}): lookup failed ({lookup.outcome.value} "
                                   f"{lookup.code or ''} {lookup.message})")
            continue
        unresolved = live.status is None and live.intent_state.is_unresolved
        if unresolved and (snapshot.fresh_account or snapshot.time - live.first_sent >= window_ms):
            result.never_placed.append(cid)
            result.fixed.append(f"order {cid}: never reached the exchange")
        elif unresolved:
            result.still_unknown.append(cid)
            result.fixed.append(f"order {cid}: not on the exchange yet; looked up again until "
                                f"{window_ms // 1000} s after it was sent")
        elif snapshot.fresh_account:
            result.vanished.append(cid)
            result.fixed.append(f"order {cid}: the simulated exchange started a fresh account (marked EXPIRED)")
        else:
            result.problems.append(f"order {cid} ({live.symbol}) is open here but unknown to the exchange")


def _foreign(local: LocalBooks, snapshot: ExchangeSnapshot, result: ReconcilePlan) -> None:
    for order in snapshot.open_orders:
        if order.symbol not in local.symbols or order.client_order_id in local.known_client_order_ids:
            continue
        if is_our_client_order_id(order.client_order_id):
            result.adopted_orders.append(order)
            result.warnings.append(f"order {order.client_order_id} ({order.symbol}) has our id but was not in "
                                   "the database; adopted")
        else:
            result.foreign_orders.append(order)
            result.warnings.append(f"order {order.client_order_id} ({order.symbol}) is open on the exchange but "
                                   "was not placed by this bot; recorded as external and left alone")
    for algo in snapshot.open_algo_orders:
        if algo.symbol not in local.symbols or algo.client_algo_id in local.known_client_order_ids:
            continue
        owner = "has our id but was not in the database" if is_our_client_order_id(algo.client_algo_id) else \
            "was not placed by this bot"
        result.warnings.append(f"conditional order {algo.client_algo_id} ({algo.symbol}) is open on the exchange "
                               f"and {owner}; left alone")


def _fills(local: LocalBooks, snapshot: ExchangeSnapshot, result: ReconcilePlan) -> None:
    missing = []
    for fill in snapshot.fills:
        if fill.symbol not in local.symbols:
            continue
        known = local.fills.get((fill.symbol, fill.trade_id))
        if known is None:
            missing.append(fill)
        elif known != (fill.order_id, fill.side, fill.price, fill.quantity):
            result.problems.append(f"{fill.symbol} trade {fill.trade_id} on the exchange differs from the stored "
                                   "fill with that id (the exchange's ids repeat?)")
    unique = {(f.symbol, f.trade_id): f for f in missing}
    result.missing_fills = sorted(unique.values(), key=lambda f: (f.time, f.symbol, f.trade_id))
    per_symbol: dict[str, int] = defaultdict(int)
    for fill in result.missing_fills:
        per_symbol[fill.symbol] += 1
    for symbol, count in sorted(per_symbol.items()):
        result.fixed.append(f"{symbol}: {count} fill(s) recorded that the stream had not delivered")


def _positions(local: LocalBooks, snapshot: ExchangeSnapshot, result: ReconcilePlan) -> None:
    expected: dict[PositionKey, Decimal] = defaultdict(lambda: ZERO)
    for key, amount in local.holdings.items():
        expected[key] += amount
    for fill in result.missing_fills:
        expected[(fill.symbol, fill.position_side)] += fill.side.sign * fill.quantity
    theirs: dict[PositionKey, Decimal] = {}
    for position in snapshot.positions:
        if position.symbol in local.symbols:
            key = (position.symbol, position.position_side)
            theirs[key] = theirs.get(key, ZERO) + position.amount
    for key in sorted(set(expected) | set(theirs)):
        ours = expected.get(key, ZERO)
        exchange = theirs.get(key, ZERO)
        label = f"{key[0]} {key[1].value}"
        if ours == exchange:
            if exchange == 0 and key in local.holdings:
                result.flat_on_exchange.append(key)
            elif exchange != 0 and local.owners.get(key) is None and key in local.holdings:
                result.warnings.append(f"{label}: position {exchange} has no owning strategy here")
            continue
        if snapshot.fresh_account and exchange == 0:
            result.fresh_account_flat.append((key, ours))
            result.flat_on_exchange.append(key)
            result.fixed.append(f"{label}: the books held {ours}; the fresh simulated account holds nothing")
            continue
        result.problems.append(f"{label}: exchange holds {exchange}, our fills add up to {ours}")
