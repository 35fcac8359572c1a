"""A symbol's exchange filters (from exchangeInfo): rounding to them, and checking an order against them.

Every check returns a typed :class:`FilterViolation` naming the Binance error it prevents, so the bot refuses
an order locally for the same reason, with the same code, as the exchange would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from utils.domain import OrderType, Side
from utils.precision import (
    decimal_places,
    is_multiple,
    round_down_to_step,
    round_up_to_step,
    to_decimal,
    to_wire,
)


class FilterParseError(ValueError):
    """An exchangeInfo symbol entry lacks a filter or field the bot needs."""


@dataclass(frozen=True, slots=True)
class FilterViolation:
    """Why an order would be rejected: the Binance code and message it would get."""

    code: int
    message: str
    filter_type: str

    def __str__(self) -> str:
        return f"{self.filter_type} ({self.code}): {self.message}"


# Binance's messages for the codes the filters prevent.
MSG_PRECISION = "Precision is over the maximum defined for this asset."
MSG_QTY_LE_ZERO = "Quantity less than zero."
MSG_QTY_MIN = "Quantity less than min quantity."
MSG_QTY_MAX = "Quantity greater than max quantity."
MSG_PRICE_LE_ZERO = "Price less than 0."
MSG_PRICE_MIN = "Price less than min price."
MSG_PRICE_MAX = "Price greater than max price."
MSG_TICK = "Price not increased by tick size."
MSG_STEP = "Qty not increased by step size."
MSG_MAX_ORDERS = "Reach max open order limit."


@dataclass(frozen=True, slots=True)
class LotSize:
    min_qty: Decimal
    max_qty: Decimal
    step_size: Decimal


@dataclass(frozen=True, slots=True)
class SymbolFilters:
    """One symbol's trading rules, parsed once from its exchangeInfo entry."""

    symbol: str
    status: str
    price_precision: int
    quantity_precision: int
    min_price: Decimal
    max_price: Decimal
    tick_size: Decimal
    lot: LotSize
    market_lot: LotSize
    min_notional: Decimal
    multiplier_up: Decimal
    multiplier_down: Decimal
    max_num_orders: int
    max_num_algo_orders: int
    maint_margin_percent: Decimal = Decimal("2.5")
    required_margin_percent: Decimal = Decimal("5")
    base_asset: str = ""
    quote_asset: str = "USDT"
    margin_asset: str = "USDT"

    @classmethod
    def from_exchange_info(cls, entry: Mapping[str, Any]) -> SymbolFilters:
        symbol = entry.get("symbol", "?")
        try:
            by_type = {f["filterType"]: f for f in entry["filters"]}
            price = by_type["PRICE_FILTER"]
            lot = by_type["LOT_SIZE"]
            market_lot = by_type.get("MARKET_LOT_SIZE", lot)
            notional = by_type.get("MIN_NOTIONAL", {"notional": "0"})
            percent = by_type.get("PERCENT_PRICE", {"multiplierUp": "0", "multiplierDown": "0"})
            max_orders = by_type.get("MAX_NUM_ORDERS", {"limit": 200})
            max_algo = by_type.get("MAX_NUM_ALGO_ORDERS", {"limit": 10})

            def lot_of(f: Mapping[str, Any]) -> LotSize:
                return LotSize(to_decimal(f["minQty"]), to_decimal(f["maxQty"]), to_decimal(f["stepSize"]))

            return cls(
                symbol=entry["symbol"],
                status=entry.get("status", "TRADING"),
                price_precision=int(entry["pricePrecision"]),
                quantity_precision=int(entry["quantityPrecision"]),
                min_price=to_decimal(price["minPrice"]),
                max_price=to_decimal(price["maxPrice"]),
                tick_size=to_decimal(price["tickSize"]),
                lot=lot_of(lot),
                market_lot=lot_of(market_lot),
                # Older documents call the field minNotional; the futures API names it notional.
                min_notional=to_decimal(notional.get("notional", notional.get("minNotional", "0"))),
                multiplier_up=to_decimal(percent["multiplierUp"]),
                multiplier_down=to_decimal(percent["multiplierDown"]),
                max_num_orders=int(max_orders["limit"]),
                max_num_algo_orders=int(max_algo["limit"]),
                maint_margin_percent=to_decimal(entry.get("maintMarginPercent", "2.5")),
                required_margin_percent=to_decimal(entry.get("requiredMarginPercent", "5")),
                base_asset=entry.get("baseAsset", ""),
                quote_asset=entry.get("quoteAsset", "USDT"),
                margin_asset=entry.get("marginAsset", "USDT"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FilterParseError(f"exchangeInfo entry for {symbol}: missing or bad field {exc}") from exc

    # ----------------------------------------------------------------------------------------- rounding
    def lot_for(self, order_type: OrderType) -> LotSize:
        return self.market_lot if order_type in (OrderType.MARKET, OrderType.STOP_MARKET,
                                                 OrderType.TAKE_PROFIT_MARKET,
                                                 OrderType.TRAILING_STOP_MARKET) else self.lot

    def round_quantity(self, quantity: Decimal, order_type: OrderType = OrderType.LIMIT) -> Decimal:
        """Round DOWN to the step (never more than asked) and cap at maxQty. May return less than minQty."""
        lot = self.lot_for(order_type)
        capped = min(quantity, lot.max_qty)
        if capped < lot.min_qty:
            return Decimal(0)
        # Binance counts steps from minQty: valid quantities are minQty + k * stepSize.
        return lot.min_qty + round_down_to_step(capped - lot.min_qty, lot.step_size)

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """Round to the tick in the side's safe direction: a buy never pays more, a sell never gets less."""
        if side is Side.BUY:
            rounded = round_down_to_step(price, self.tick_size)
        else:
            rounded = round_up_to_step(price, self.tick_size)
        return min(max(rounded, self.min_price), round_down_to_step(self.max_price, self.tick_size))

    def percent_price_bounds(self, mark_price: Decimal) -> tuple[Decimal, Decimal]:
        """(lowest, highest) limit price allowed against this mark price, on the tick grid."""
        low = round_up_to_step(mark_price * self.multiplier_down, self.tick_size)
        high = round_down_to_step(mark_price * self.multiplier_up, self.tick_size)
        return low, high

    # --------------------------------------------------------------------------------------- validation
    def check_quantity(self, quantity: Decimal, order_type: OrderType) -> FilterViolation | None:
        lot = self.lot_for(order_type)
        name = "LOT_SIZE" if lot is self.lot else "MARKET_LOT_SIZE"
        if quantity <= 0:
            return FilterViolation(-4003, MSG_QTY_LE_ZERO, name)
        if decimal_places(quantity) > self.quantity_precision:
            return FilterViolation(-1111, MSG_PRECISION, name)
        if quantity < lot.min_qty:
            return FilterViolation(-4004, MSG_QTY_MIN, name)
        if quantity > lot.max_qty:
            return FilterViolation(-4005, MSG_QTY_MAX, name)
        if not is_multiple(quantity - lot.min_qty, lot.step_size):
            return FilterViolation(-4023, MSG_STEP, name)
        return None

    def check_price(self, price: Decimal) -> FilterViolation | None:
        if price <= 0:
            return FilterViolation(-4001, MSG_PRICE_LE_ZERO, "PRICE_FILTER")
        if decimal_places(price) > self.price_precision:
            return FilterViolation(-1111, MSG_PRECISION, "PRICE_FILTER")
        if self.min_price and price < self.min_price:
            return FilterViolation(-4013, MSG_PRICE_MIN, "PRICE_FILTER")
        if self.max_price and price > self.max_price:
            return FilterViolation(-4002, MSG_PRICE_MAX, "PRICE_FILTER")
        if not is_multiple(price - self.min_price, self.tick_size):
            return FilterViolation(-4014, MSG_TICK, "PRICE_FILTER")
        return None

    def check_percent_price(self, price: Decimal, mark_price: Decimal,
                            side: Side | None = None) -> FilterViolation | None:
        """USD-M PERCENT_PRICE: a BUY needs price <= mark x multiplierUp, a SELL price >= mark x multiplierDown
        (each side only its own bound, as Binance's USD-M filter rules say). Without a side both bounds are
        checked, which refuses some orders Binance accepts (deep bids, far take-profits): pass the side."""
        if self.multiplier_up == 0 or mark_price <= 0:
            return None
        low, high = self.percent_price_bounds(mark_price)
        if price > high and side is not Side.SELL:
            return FilterViolation(-4016, f"Limit price can't be higher than {to_wire(high)}.", "PERCENT_PRICE")
        if price < low and side is not Side.BUY:
            return FilterViolation(-4024, f"Limit price can't be lower than {to_wire(low)}.", "PERCENT_PRICE")
        return None

    def check_notional(self, quantity: Decimal, price: Decimal, reduce_only: bool) -> FilterViolation | None:
        if reduce_only or self.min_notional == 0:
            return None
        if quantity * price < self.min_notional:
            return FilterViolation(
                -4164,
                f"Order's notional must be no smaller than {to_wire(self.min_notional)} "
                "(unless you choose reduce only).",
                "MIN_NOTIONAL",
            )
        return None

    def check_open_orders(self, open_orders: int) -> FilterViolation | None:
        if open_orders >= self.max_num_orders:
            return FilterViolation(-2025, MSG_MAX_ORDERS, "MAX_NUM_ORDERS")
        return None

    def validate(
        self,
        *,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        mark_price: Decimal,
        reduce_only: bool = False,
        open_orders: int = 0,
        last_price: Decimal | None = None,
        side: Side | None = None,
    ) -> FilterViolation | None:
        """First filter the order breaks, in Binance's order of checks, or None if it passes them all.

        ``price`` is the limit price (None for market orders, whose MIN_NOTIONAL Binance values at the mark
        price; ``last_price``, when given, is used instead). ``side`` limits PERCENT_PRICE to that side's bound.
        """
        if (violation := self.check_quantity(quantity, order_type)) is not None:
            return violation
        if order_type is OrderType.LIMIT:
            if price is None:
                return FilterViolation(-1102, "Mandatory parameter 'price' was not sent, was empty/null, "
                                       "or malformed.", "PRICE_FILTER")
            if (violation := self.check_price(price)) is not None:
                return violation
            if (violation := self.check_percent_price(price, mark_price, side)) is not None:
                return violation
            reference = price
        else:
            reference = last_price if last_price is not None else mark_price
        if (violation := self.check_notional(quantity, reference, reduce_only)) is not None:
            return violation
        return self.check_open_orders(open_orders)

    def min_quantity_for_notional(self, price: Decimal, order_type: OrderType = OrderType.LIMIT) -> Decimal:
        """Smallest valid quantity whose notional at ``price`` reaches MIN_NOTIONAL."""
        lot = self.lot_for(order_type)
        needed = round_up_to_step(self.min_notional / price, lot.step_size) if price > 0 else lot.min_qty
        return max(needed, lot.min_qty)


def parse_exchange_info(document: Mapping[str, Any]) -> dict[str, SymbolFilters]:
    """All symbols of an exchangeInfo response, by name."""
    return {entry["symbol"]: SymbolFilters.from_exchange_info(entry) for entry in document.get("symbols", [])}
