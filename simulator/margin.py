"""Margin and liquidation of the simulated USDT account: its money, its margin pools, and when and how they liquidate.

``MarginAccount`` holds the wallet and its running totals and answers the margin questions the matching core
asks: the cross wallet, initial margin of positions and open orders, the available balance, whether a new order
fits (-2019 / -2027), each pool's liquidation level (the cross account, or one isolated position), where on a
candle's path a pool is first liquidated, and at what price and fee a liquidation fills. It changes no order and
sends no event: the engine executes the liquidation it is told about. The rules are in docs/simulator.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from simulator import codes
from simulator.account import (
    UNLIMITED_NOTIONAL,
    LiquidationLevel,
    PositionState,
    bracket_for,
    liquidation_level,
    maintenance_margin,
    max_notional_for,
    to_wallet,
)
from simulator.matching import PathKey, first_reach, round_to_tick
from simulator.records import AccountState, PositionRisk, SymbolState
from utils.domain import ZERO, MarginType, PositionSide


class MarginAccount:
    """The USDT wallet, its running totals, and the margin arithmetic over every symbol's positions and orders."""

    __slots__ = ("symbols", "dual_side", "wallet", "deposits", "realized", "fees", "funding", "insurance_cleared",
                 "update_time")

    def __init__(self, symbols: dict[str, SymbolState], initial_balance: Decimal, update_time: int) -> None:
        if initial_balance < 0:
            raise ValueError("initial_balance must not be negative")
        self.symbols = symbols
        self.dual_side = False          # hedge mode (LONG/SHORT positions) rather than one-way (BOTH)
        self.wallet = initial_balance   # deposits + realized PnL - fees + funding + insurance clearance
        self.deposits = initial_balance
        self.realized = ZERO
        self.fees = ZERO
        self.funding = ZERO
        self.insurance_cleared = ZERO   # what the insurance fund paid so that no liquidated pool stays below zero
        self.update_time = update_time

    # ============================================================================================== margin
    def cross_wallet(self) -> Decimal:
        isolated = ZERO
        for st in self.symbols.values():
            if st.margin_type is MarginType.ISOLATED and st.exposed:
                for position in st.positions.values():
                    isolated += position.isolated_wallet
        return self.wallet - isolated

    @staticmethod
    def position_notional(st: SymbolState) -> Decimal:
        return sum((abs(p.amount) for p in st.positions.values()), ZERO) * st.mark_price

    def open_order_margin(self, st: SymbolState, extra_long: Decimal = ZERO, extra_short: Decimal = ZERO) -> Decimal:
        """Initial margin the open orders hold: one-way takes the larger side net of the position they would
        close first; hedge mode adds both sides."""
        long_notional = st.open_long_notional + extra_long
        short_notional = st.open_short_notional + extra_short
        if not long_notional and not short_notional:
            return ZERO
        if self.dual_side:
            return (long_notional + short_notional) / st.leverage
        position_notional = st.positions[PositionSide.BOTH].amount * st.mark_price
        if position_notional > 0:
            short_notional -= position_notional
        else:
            long_notional += position_notional
        worst = long_notional if long_notional > short_notional else short_notional
        return worst / st.leverage if worst > 0 else ZERO

    def margin_totals(self) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]:
        """(cross unrealized PnL, cross position IM, open-order IM, maintenance, total unrealized, position IM)."""
        cross_upnl = cross_im = order_im = total_mm = total_upnl = position_im = ZERO
        for st in self.symbols.values():
            if st.open_long_notional or st.open_short_notional:
                order_im += self.open_order_margin(st)
            if not st.exposed:
                continue
            mark = st.mark_price
            cross = st.margin_type is MarginType.CROSSED
            for position in st.positions.values():
                amount = position.amount
                if not amount:
                    continue
                upnl = amount * (mark - position.entry_price)
                size = abs(amount) * mark
                im = size / st.leverage
                total_upnl += upnl
                position_im += im
                total_mm += maintenance_margin(st.brackets, size)
                if cross:
                    cross_upnl += upnl
                    cross_im += im
        return cross_upnl, cross_im, order_im, total_mm, total_upnl, position_im

    def available_balance(self) -> Decimal:
        cross_upnl, cross_im, order_im, _, _, _ = self.margin_totals()
        return self.cross_wallet() + cross_upnl - cross_im - order_im

    def check_margin(self, st: SymbolState, direction: int, notional: Decimal) -> None:
        """-2027 when the worst-case position would pass the bracket cap; -2019 when margin does not cover it."""
        extra_long = notional if direction > 0 else ZERO
        extra_short = notional if direction < 0 else ZERO
        cap = max_notional_for(st.brackets, st.leverage)
        if cap < UNLIMITED_NOTIONAL and self._worst_notional(st, extra_long, extra_short) > cap:
            raise codes.reject(codes.MAX_LEVERAGE_RATIO)
        required = self.open_order_margin(st, extra_long, extra_short) - self.open_order_margin(st)
        if required > 0 and required > self.available_balance():
            raise codes.reject(codes.MARGIN_INSUFFICIENT)

    def _worst_notional(self, st: SymbolState, extra_long: Decimal, extra_short: Decimal) -> Decimal:
        long_notional = st.open_long_notional + extra_long
        short_notional = st.open_short_notional + extra_short
        mark = st.mark_price
        if self.dual_side:
            long_amount = st.positions[PositionSide.LONG].amount
            short_amount = st.positions[PositionSide.SHORT].amount
            return max(long_amount * mark + long_notional, -short_amount * mark + short_notional)
        position_notional = st.positions[PositionSide.BOTH].amount * mark
        return max(abs(position_notional + long_notional), abs(position_notional - short_notional))

    # ================================================================================================ views
    def state(self) -> AccountState:
        cross_upnl, cross_im, order_im, total_mm, total_upnl, total_position_im = self.margin_totals()
        cross_wallet = self.cross_wallet()
        return AccountState(
            wallet_balance=self.wallet,
            available_balance=cross_wallet + cross_upnl - cross_im - order_im,
            total_initial_margin=total_position_im + order_im,
            total_maintenance_margin=total_mm,
            unrealized_pnl=total_upnl,
            equity=self.wallet + total_upnl,
            deposits=self.deposits,
            realized_pnl=self.realized,
            fees_paid=self.fees,
            funding_total=self.funding,
            cross_wallet_balance=cross_wallet,
            total_position_initial_margin=total_position_im,
            total_open_order_initial_margin=order_im,
            cross_unrealized_pnl=cross_upnl,
            update_time=self.update_time,
            insurance_cleared=self.insurance_cleared,
        )

    def position_risk(self, states: Sequence[SymbolState], every_symbol: bool) -> list[PositionRisk]:
        """Per-position risk figures of ``states``: those with a position or open orders, or all of them."""
        result = []
        for st in states:
            if not (st.exposed or st.open or every_symbol):
                continue
            symbol_order_im = self.open_order_margin(st)
            max_notional = max_notional_for(st.brackets, st.leverage)
            for position in st.positions.values():
                notional = position.amount * st.mark_price
                size = abs(notional)
                isolated = st.margin_type is MarginType.ISOLATED
                upnl = position.unrealized_pnl(st.mark_price)
                level = self.liquidation_level(st, position)
                if position.position_side is PositionSide.LONG:
                    order_im = st.open_long_notional / st.leverage
                elif position.position_side is PositionSide.SHORT:
                    order_im = st.open_short_notional / st.leverage
                else:
                    order_im = symbol_order_im
                result.append(PositionRisk(
                    symbol=st.name, position_side=position.position_side, amount=position.amount,
                    entry_price=position.entry_price, break_even_price=position.break_even_price,
                    mark_price=st.mark_price, unrealized_pnl=upnl,
                    liquidation_price=level.price if level is not None and not level.immediate else ZERO,
                    notional=notional,
                    isolated_margin=position.isolated_wallet + upnl if isolated else ZERO,
                    isolated_wallet=position.isolated_wallet if isolated else ZERO,
                    initial_margin=size / st.leverage + order_im,
                    maintenance_margin=maintenance_margin(st.brackets, size) if size else ZERO,
                    position_initial_margin=size / st.leverage, open_order_initial_margin=order_im,
                    bid_notional=st.bid_notional, ask_notional=st.ask_notional, leverage=st.leverage,
                    margin_type=st.margin_type, max_notional=max_notional, update_time=position.update_time))
        return result

    # ========================================================================================= liquidation
    def cross_unrealized(self, exclude: PositionState | None = None) -> Decimal:
        total = ZERO
        for st in self.symbols.values():
            if st.exposed and st.margin_type is MarginType.CROSSED:
                for position in st.positions.values():
                    if position.amount and position is not exclude:
                        total += position.unrealized_pnl(st.mark_price)
        return total

    def cross_collateral(self, exclude: SymbolState | None) -> Decimal:
        """Cross wallet + unrealized PnL - maintenance margin of the cross positions not in ``exclude``."""
        total = self.cross_wallet()
        for st in self.symbols.values():
            if st is exclude or not st.exposed or st.margin_type is not MarginType.CROSSED:
                continue
            for position in st.positions.values():
                if position.amount:
                    total += position.unrealized_pnl(st.mark_price)
                    total -= maintenance_margin(st.brackets, abs(position.amount) * st.mark_price)
        return total

    def liquidation_level(self, st: SymbolState, only: PositionState | None = None) -> LiquidationLevel | None:
        """Liquidation level of the pool holding ``only`` (or of the symbol's cross positions), per tier.

        Each position's maintenance rate and amount come from the bracket its notional falls in *at the
        liquidation price*: the level is solved with the tiers at the mark, then again with the tiers at the
        solved price, until the tiers no longer change (Binance's ``cum`` makes the maintenance margin continuous
        across tiers, so this settles in a step or two).
        """
        if st.margin_type is MarginType.CROSSED:
            collateral = self.cross_collateral(st)
            positions = [p for p in st.positions.values() if p.amount]
        elif only is None or not only.amount:
            return None
        else:
            collateral = only.isolated_wallet
            positions = [only]
        price = st.mark_price
        tiers = [bracket_for(st.brackets, abs(p.amount) * price) for p in positions]
        for _ in range(len(st.brackets) + 1):
            level = liquidation_level(collateral, [(p.amount, p.entry_price, tier.maint_margin_ratio, tier.cum)
                                                   for p, tier in zip(positions, tiers, strict=True)])
            if level is None or level.immediate:
                return level
            at_level = [bracket_for(st.brackets, abs(p.amount) * level.price) for p in positions]
            if at_level == tiers:
                return level
            tiers = at_level
        return level

    def first_liquidation(self, st: SymbolState, path: tuple[Decimal, ...], start: PathKey,
                          end: PathKey | None) -> tuple[PathKey, PositionState | None] | None:
        """The earliest point between ``start`` and ``end`` where the path liquidates a pool of this symbol, and
        the pool (None: the cross account; else the isolated position)."""
        earliest: tuple[PathKey, PositionState | None] | None = None
        pools: list[PositionState | None] = [None] if st.margin_type is MarginType.CROSSED else \
            [p for p in st.positions.values() if p.amount]
        for pool in pools:
            level = self.liquidation_level(st, pool)
            if level is None:
                continue
            key = start if level.immediate else first_reach(path, level.price, level.falling, start=start)
            if key is not None and (end is None or key <= end) and (earliest is None or key < earliest[0]):
                earliest = (key, pool)
        return earliest

    def isolated_underwater(self, st: SymbolState, position: PositionState) -> bool:
        """At the current mark, is this isolated position's margin at or below its maintenance margin?"""
        size = abs(position.amount) * st.mark_price
        return position.isolated_wallet + position.unrealized_pnl(st.mark_price) <= \
            maintenance_margin(st.brackets, size)

    def cross_underwater(self) -> bool:
        """At the current marks, is the cross account's margin at or below its maintenance margin?"""
        return self.cross_collateral(None) <= 0

    def liquidation_fill(self, st: SymbolState, position: PositionState, price: Decimal, low: Decimal,
                         high: Decimal) -> tuple[Decimal, Decimal]:
        """(fill price, clearance fee) of closing ``position`` at ``price``: the price on the tick against the
        account and inside [low, high]; the fee ``liquidationFee`` x notional, capped at what margin the pool
        has left once the position is closed (never below zero).

        An isolated position is never closed beyond its bankruptcy price (where its isolated wallet is used up):
        when the market gapped past it, the insurance fund takes the position over there (Binance's model), so
        the fill is at the bankruptcy price, on the tick in the account's favour, even outside [low, high].
        """
        amount = position.amount
        fill_price = round_to_tick(price, st.tick, up=amount < 0)
        fill_price = low if fill_price < low else high if fill_price > high else fill_price
        isolated = st.margin_type is MarginType.ISOLATED
        if isolated:
            bankruptcy = position.entry_price - position.isolated_wallet / amount
            if amount > 0 and fill_price < bankruptcy:
                fill_price = round_to_tick(bankruptcy, st.tick, up=True)
            elif amount < 0 and fill_price > bankruptcy:
                fill_price = round_to_tick(bankruptcy, st.tick, up=False)
        gross = (fill_price - position.entry_price) * amount
        if isolated:
            cushion = position.isolated_wallet + gross
        else:  # cross margin balance once this position is closed
            cushion = self.cross_wallet() + gross + self.cross_unrealized(exclude=position)
        fee = to_wallet(min(fill_price * abs(amount) * st.liquidation_fee_rate, cushion if cushion > 0 else ZERO))
        return fill_price, ZERO if fee < 0 else fee
