"""Position and margin arithmetic of a USDT-margined account: fills into positions, leverage brackets, liquidation.

Pure arithmetic over plain data (no clock, no events); the engine owns the state and decides when to call it.
Money that enters the wallet (realized PnL, commission, funding) is rounded to 8 decimals, as Binance's wallet is;
entry prices and unrealized PnL keep full precision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from utils.domain import ZERO, PositionSide, Side
from utils.filters import SymbolFilters
from utils.precision import to_decimal

WALLET_QUANTUM = Decimal("0.00000001")
UNLIMITED_NOTIONAL = Decimal(9223372036854775807)  # what Binance reports for "no cap"


def to_wallet(value: Decimal) -> Decimal:
    """Round an amount that enters the wallet to Binance's 8 decimals (half-even)."""
    return value.quantize(WALLET_QUANTUM)


@dataclass(frozen=True, slots=True)
class LeverageBracket:
    """One tier of GET /fapi/v1/leverageBracket: up to ``notional_cap`` a position may use ``initial_leverage``."""

    bracket: int
    initial_leverage: int
    notional_cap: Decimal
    notional_floor: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal  # maintenance amount: MM = notional x ratio - cum


def parse_leverage_brackets(document: Sequence[Mapping[str, Any]]) -> dict[str, tuple[LeverageBracket, ...]]:
    """A GET /fapi/v1/leverageBracket response, by symbol (tiers in ascending notional)."""
    result: dict[str, tuple[LeverageBracket, ...]] = {}
    for entry in document:
        tiers = [
            LeverageBracket(
                bracket=int(tier["bracket"]),
                initial_leverage=int(tier["initialLeverage"]),
                notional_cap=to_decimal(str(tier["notionalCap"])),
                notional_floor=to_decimal(str(tier["notionalFloor"])),
                maint_margin_ratio=to_decimal(str(tier["maintMarginRatio"])),
                cum=to_decimal(str(tier.get("cum", 0))),
            )
            for tier in entry["brackets"]
        ]
        result[entry["symbol"]] = tuple(sorted(tiers, key=lambda tier: tier.notional_floor))
    return result


def default_brackets(filters: SymbolFilters, maint_margin_rate: Decimal | None = None) -> tuple[LeverageBracket, ...]:
    """One unlimited tier from exchangeInfo.

    Maintenance = ``maintMarginPercent``, max leverage = 100 / ``requiredMarginPercent``.

    With Binance's usual 2.5 % / 5 % that is 20x with a 2.5 % maintenance rate.
    """
    rate = maint_margin_rate if maint_margin_rate is not None else filters.maint_margin_percent / 100
    required = filters.required_margin_percent
    max_leverage = max(1, int(Decimal(100) / required)) if required else 20
    return (LeverageBracket(1, max_leverage, UNLIMITED_NOTIONAL, ZERO, rate, ZERO),)


def bracket_for(brackets: Sequence[LeverageBracket], notional: Decimal) -> LeverageBracket:
    """The tier a position of ``notional`` (absolute) falls in."""
    for tier in brackets:
        if notional <= tier.notional_cap:
            return tier
    return brackets[-1]


def max_notional_for(brackets: Sequence[LeverageBracket], leverage: int) -> Decimal:
    """Largest position notional allowed at ``leverage`` (0 when no tier allows it)."""
    allowed = [tier.notional_cap for tier in brackets if tier.initial_leverage >= leverage]
    return max(allowed) if allowed else ZERO


def maintenance_margin(brackets: Sequence[LeverageBracket], notional: Decimal) -> Decimal:
    tier = bracket_for(brackets, notional)
    return notional * tier.maint_margin_ratio - tier.cum


class PositionState:
    """One position (symbol and position side) as the exchange keeps it."""

    __slots__ = ("symbol", "position_side", "amount", "entry_price", "open_fees", "realized_pnl",
                 "isolated_wallet", "update_time")

    def __init__(self, symbol: str, position_side: PositionSide) -> None:
        self.symbol = symbol
        self.position_side = position_side
        self.amount = ZERO          # signed: > 0 long, < 0 short
        self.entry_price = ZERO     # volume-weighted average of the opening fills
        self.open_fees = ZERO       # commission paid to open what is still open (for the break-even price)
        self.realized_pnl = ZERO    # accumulated realized PnL (Binance "cr")
        self.isolated_wallet = ZERO  # margin held by an ISOLATED position (Binance "iw")
        self.update_time = 0

    def apply_fill(self, signed_quantity: Decimal, price: Decimal, commission: Decimal) -> tuple[Decimal, Decimal]:
        """Add a fill (``signed_quantity`` > 0 buys). Returns (realized PnL, closed quantity); PnL rounded to 8 dp."""
        amount = self.amount
        if amount == 0 or (amount > 0) == (signed_quantity > 0):
            size = abs(amount)
            quantity = abs(signed_quantity)
            self.entry_price = (size * self.entry_price + quantity * price) / (size + quantity)
            self.amount = amount + signed_quantity
            self.open_fees += commission
            return ZERO, ZERO
        size = abs(amount)
        quantity = abs(signed_quantity)
        closed = quantity if quantity < size else size
        realized = to_wallet((price - self.entry_price) * closed if amount > 0 else (self.entry_price - price) * closed)
        self.realized_pnl += realized
        if quantity < size:
            self.open_fees -= self.open_fees * closed / size
            self.amount = amount + signed_quantity
        elif quantity == size:
            self.amount = ZERO
            self.entry_price = ZERO
            self.open_fees = ZERO
        else:  # flips: the rest opens a new position at this price
            opened = quantity - size
            self.amount = amount + signed_quantity
            self.entry_price = price
            self.open_fees = commission * opened / quantity
        return realized, closed

    def closable(self, side: Side) -> Decimal:
        """How much an order on ``side`` can close of this position (0 when it would open or extend it)."""
        amount = self.amount
        if side is Side.BUY:
            return -amount if amount < 0 else ZERO
        return amount if amount > 0 else ZERO

    @property
    def break_even_price(self) -> Decimal:
        """Entry price moved by the opening commission per unit (what Binance's breakEvenPrice shows)."""
        if self.amount == 0:
            return ZERO
        per_unit = self.open_fees / abs(self.amount)
        return self.entry_price + per_unit if self.amount > 0 else self.entry_price - per_unit

    def unrealized_pnl(self, mark_price: Decimal) -> Decimal:
        return self.amount * (mark_price - self.entry_price)


@dataclass(frozen=True, slots=True)
class LiquidationLevel:
    """Where a margin pool (the cross account, or one isolated position) reaches its maintenance margin.

    ``falling`` is True when the pool is liquidated as the price falls to ``price`` (net long), False when it
    is liquidated as the price rises to it (net short). ``immediate`` means it is below maintenance already.
    """

    price: Decimal
    falling: bool
    immediate: bool = False


def liquidation_level(
    collateral: Decimal,
    positions: Sequence[tuple[Decimal, Decimal, Decimal, Decimal]],
) -> LiquidationLevel | None:
    """Solve margin balance = maintenance margin for the price of one symbol.

    ``collateral`` is the pool's margin not tied to this symbol's price (wallet, other symbols' unrealized PnL,
    minus their maintenance). ``positions`` are this symbol's positions in the pool as (amount, entry price,
    maintenance ratio, maintenance amount). Returns None when no price liquidates the pool.
    Equity(P) - MM(P) = collateral - sum(a*e) + sum(cum) + (sum(a) - sum(|a|*r)) * P, linear in P.
    """
    slope = ZERO
    constant = collateral
    for amount, entry, ratio, cum in positions:
        slope += amount - abs(amount) * ratio
        constant += cum - amount * entry
    if slope == 0:
        return LiquidationLevel(ZERO, True, immediate=True) if constant <= 0 else None
    price = -constant / slope
    if slope > 0:
        return LiquidationLevel(price, True) if price > 0 else None
    return LiquidationLevel(price, False) if price > 0 else LiquidationLevel(ZERO, False, immediate=True)
