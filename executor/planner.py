"""Turn a strategy's signal into order intents: sizing, entry/exit, position side, rounding to the filters.

Pure and synchronous: it is given the facts (position, owner, prices, equity) and returns a plan. Risk guards
run separately (executor/risk.py); this module only decides *what* orders a signal means.

Ownership: one strategy owns a symbol's position (per position side in HEDGE mode) from the moment it plans the
entry that opens it (a reservation, so two strategies signalling in the same minute cannot both enter) until it
is flat again. Another strategy's signal on an owned position is refused; this keeps every position
attributable to exactly one strategy, for its PnL, its loss limit and its exits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from executor.ids import algo_client_id, client_order_id
from utils.domain import (
    ZERO,
    OrderIntent,
    OrderPurpose,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    Signal,
    SignalSide,
    SizingMode,
    TimeInForce,
    WorkingType,
)
from utils.filters import SymbolFilters


@dataclass(frozen=True, slots=True)
class ExecutionSettings:
    """How one strategy trades one symbol (from config/symbols.toml)."""

    strategy: str
    symbol: str
    sizing_mode: SizingMode
    sizing_value: Decimal
    leverage: int
    entry_order_type: OrderType = OrderType.MARKET
    limit_offset_bps: Decimal = ZERO  # LIMIT entries: price = reference -/+ offset (buy below, sell above)
    stop_loss_pct: Decimal | None = None
    take_profit_pct: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Holding:
    """The exchange position on one (symbol, position side) and which strategy owns it."""

    amount: Decimal = ZERO  # signed
    owner: str | None = None  # with amount 0: reserved by a strategy whose entry is on its way

    def owned_by_other(self, strategy: str) -> bool:
        return (self.amount != 0 or self.owner is not None) and self.owner != strategy


@dataclass(slots=True)
class Plan:
    intents: list[OrderIntent] = field(default_factory=list)
    refused: str | None = None  # why nothing (or not everything) was planned

    @property
    def empty(self) -> bool:
        return not self.intents


def position_notional(settings: ExecutionSettings, equity: Decimal) -> Decimal:
    if settings.sizing_mode is SizingMode.FIXED_NOTIONAL:
        return settings.sizing_value
    return max(equity, ZERO) * settings.sizing_value * settings.leverage


def _exit_intent(signal: Signal, filters: SymbolFilters, amount: Decimal, position_mode: PositionMode,
                 position_side: PositionSide, purpose: str) -> OrderIntent:
    side = Side.SELL if amount > 0 else Side.BUY
    quantity = filters.round_quantity(abs(amount), OrderType.MARKET)
    return OrderIntent(
        client_order_id=client_order_id(signal.strategy, signal.symbol, signal.time, purpose, side.value),
        symbol=signal.symbol, side=side, order_type=OrderType.MARKET, quantity=quantity,
        position_side=position_side,
        # In hedge mode Binance refuses reduceOnly; closing is expressed by the position side instead.
        reduce_only=position_mode is PositionMode.ONEWAY,
        strategy=signal.strategy, signal_time=signal.time, purpose=OrderPurpose.EXIT,
    )


def _entry_intent(signal: Signal, settings: ExecutionSettings, filters: SymbolFilters, side: Side,
                  reference_price: Decimal, equity: Decimal, position_side: PositionSide) -> OrderIntent | str:
    notional = position_notional(settings, equity)
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    order_type = settings.entry_order_type
    if order_type is OrderType.LIMIT:
        offset = reference_price * settings.limit_offset_bps / Decimal(10_000)
        raw = reference_price - offset if side is Side.BUY else reference_price + offset
        price = filters.round_price(raw, side)
        time_in_force = TimeInForce.GTC
    valuation_price = price if price is not None else reference_price
    if valuation_price <= 0:
        return "no price to size the entry"
    quantity = filters.round_quantity(notional / valuation_price, order_type)
    if quantity <= 0 or quantity * valuation_price < filters.min_notional:
        return (f"position size {notional:.2f} USDT at {valuation_price} rounds to {quantity}, below the "
                f"symbol's minimum (minQty {filters.lot_for(order_type).min_qty}, notional {filters.min_notional})")
    return OrderIntent(
        client_order_id=client_order_id(signal.strategy, signal.symbol, signal.time, "entry", side.value),
        symbol=signal.symbol, side=side, order_type=order_type, quantity=quantity, price=price,
        time_in_force=time_in_force, position_side=position_side, strategy=signal.strategy,
        signal_time=signal.time, purpose=OrderPurpose.ENTRY,
    )


def plan_signal(
    signal: Signal,
    *,
    settings: ExecutionSettings,
    filters: SymbolFilters,
    position_mode: PositionMode,
    holdings: dict[PositionSide, Holding],
    reference_price: Decimal,
    equity: Decimal,
) -> Plan:
    """The orders that bring ``signal.strategy``'s position on ``signal.symbol`` to the signalled side.

    ``holdings`` maps position side (BOTH in one-way mode; LONG and SHORT in hedge mode) to the current
    exchange position and its owner. LONG/SHORT on the opposite side first closes it (reduce-only), then opens.
    """
    plan = Plan()
    if position_mode is PositionMode.ONEWAY:
        holding = holdings.get(PositionSide.BOTH, Holding())
        if holding.owned_by_other(signal.strategy):
            plan.refused = f"{signal.symbol} position is owned by {holding.owner or 'an unknown source'}"
            return plan
        current = holding.amount
        if signal.side is SignalSide.FLAT:
            if current != 0:
                plan.intents.append(_exit_intent(signal, filters, current, position_mode, PositionSide.BOTH, "exit"))
            return plan
        wanted = Side.BUY if signal.side is SignalSide.LONG else Side.SELL
        if current * wanted.sign > 0:
            return plan  # already on that side
        if current != 0:
            plan.intents.append(_exit_intent(signal, filters, current, position_mode, PositionSide.BOTH, "reverse"))
        entry = _entry_intent(signal, settings, filters, wanted, reference_price, equity, PositionSide.BOTH)
    else:
        long_h = holdings.get(PositionSide.LONG, Holding())
        short_h = holdings.get(PositionSide.SHORT, Holding())
        to_close = {SignalSide.FLAT: (long_h, short_h), SignalSide.LONG: (short_h,), SignalSide.SHORT: (long_h,)}
        for holding in to_close[signal.side]:
            if holding.amount == 0:
                continue
            if holding.owned_by_other(signal.strategy):
                plan.refused = f"{signal.symbol} position is owned by {holding.owner or 'an unknown source'}"
                continue
            side = PositionSide.LONG if holding.amount > 0 else PositionSide.SHORT
            purpose = "exit" if signal.side is SignalSide.FLAT else "reverse"
            plan.intents.append(_exit_intent(signal, filters, holding.amount, position_mode, side, purpose))
        if signal.side is SignalSide.FLAT:
            return plan
        target = long_h if signal.side is SignalSide.LONG else short_h
        if target.owned_by_other(signal.strategy):
            plan.refused = f"{signal.symbol} position is owned by {target.owner or 'an unknown source'}"
            return plan
        if target.amount != 0:
            return plan
        wanted = Side.BUY if signal.side is SignalSide.LONG else Side.SELL
        position_side = PositionSide.LONG if signal.side is SignalSide.LONG else PositionSide.SHORT
        entry = _entry_intent(signal, settings, filters, wanted, reference_price, equity, position_side)
    if isinstance(entry, str):
        plan.refused = entry
    else:
        plan.intents.append(entry)
    return plan


def protective_orders(entry: OrderIntent, entry_price: Decimal, settings: ExecutionSettings,
                      filters: SymbolFilters) -> list[OrderIntent]:
    """Exchange-side stop-loss / take-profit (STOP_MARKET / TAKE_PROFIT_MARKET, closePosition) for a filled entry."""
    intents: list[OrderIntent] = []
    exit_side = entry.side.opposite
    long = entry.side is Side.BUY
    one = Decimal(1)
    for purpose, pct, order_type in (
        (OrderPurpose.STOP_LOSS, settings.stop_loss_pct, OrderType.STOP_MARKET),
        (OrderPurpose.TAKE_PROFIT, settings.take_profit_pct, OrderType.TAKE_PROFIT_MARKET),
    ):
        if not pct:
            continue
        fraction = pct / Decimal(100)
        if purpose is OrderPurpose.STOP_LOSS:
            raw = entry_price * (one - fraction if long else one + fraction)
        else:
            raw = entry_price * (one + fraction if long else one - fraction)
        # Round towards the entry price: a stop never sits further away than asked.
        trigger = filters.round_price(raw, Side.SELL if (purpose is OrderPurpose.STOP_LOSS) == long else Side.BUY)
        intents.append(OrderIntent(
            client_order_id=algo_client_id(entry.client_order_id, purpose), symbol=entry.symbol, side=exit_side,
            order_type=order_type, quantity=ZERO, stop_price=trigger, position_side=entry.position_side,
            close_position=True, working_type=WorkingType.MARK_PRICE, strategy=entry.strategy,
            signal_time=entry.signal_time, purpose=purpose,
        ))
    return intents
