"""Conditional (algo) orders: which requests the algo service accepts, and when a trigger price is reached.

Since December 2025 Binance takes STOP, STOP_MARKET, TAKE_PROFIT and TAKE_PROFIT_MARKET orders only through
``/fapi/v1/algoOrder``. These checks are the parts of that endpoint that need no book or account (the engine adds
position side, margin, count limits and the would-immediately-trigger check); what happens on a trigger is the
engine's (it places the order into the matching core). Rules and codes: docs/simulator.md, "Conditional orders".
"""

from __future__ import annotations

from decimal import Decimal

from simulator import codes
from simulator.records import AlgoOrder, SymbolState
from utils.domain import ZERO, OrderType, PositionSide, Side, TimeInForce, WorkingType
from utils.errors import BinanceError
from utils.filters import SymbolFilters

ALGO_TYPES = (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET, OrderType.STOP, OrderType.TAKE_PROFIT)
MARKET_ALGO_TYPES = (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET)
_ALGO_TIME_IN_FORCE = (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTX)


def trigger_falls(order_type: OrderType, side: Side) -> bool:
    """True when the order triggers as the price falls to its trigger (sell stops, buy take-profits)."""
    stop = order_type is OrderType.STOP_MARKET or order_type is OrderType.STOP
    return stop == (side is Side.SELL)


def trigger_reached(order_type: OrderType, side: Side, trigger_price: Decimal, price: Decimal) -> bool:
    """Has ``price`` reached the trigger (a touch counts)?"""
    if trigger_falls(order_type, side):
        return price <= trigger_price
    return price >= trigger_price


def working_price(st: SymbolState, working_type: WorkingType) -> Decimal:
    """The price a trigger of ``working_type`` watches, as the engine knows it now (0: none yet)."""
    if working_type is WorkingType.MARK_PRICE:
        return st.mark_price
    return st.last_price if st.has_candle else ZERO


def check_type_and_close_position(order_type: OrderType, trigger_price: Decimal | None, quantity: Decimal | None,
                                  close_position: bool, reduce_only: bool) -> None:
    """-1116 for a type the algo API does not take, -1102 without a trigger, and the closePosition rules."""
    if order_type not in ALGO_TYPES:
        raise codes.reject(codes.INVALID_ORDER_TYPE)
    if trigger_price is None:
        raise codes.mandatory("triggerPrice")
    if close_position:
        if order_type not in MARKET_ALGO_TYPES:
            raise BinanceError(-4136, f"Target strategy invalid for orderType {order_type.value},closePosition true")
        if quantity is not None:
            raise codes.reject(codes.QUANTITY_WITH_CLOSE_POSITION)
        if reduce_only:
            raise codes.not_required("reduceonly")


def check_prices_and_quantity(filters: SymbolFilters, *, order_type: OrderType, trigger_price: Decimal,
                              quantity: Decimal | None, price: Decimal | None, close_position: bool,
                              reduce_only: bool, time_in_force: TimeInForce) -> tuple[Decimal, Decimal]:
    """Price, time in force, trigger and quantity checks; returns the (quantity, price) to keep (0 when absent)."""
    is_market = order_type in MARKET_ALGO_TYPES
    if is_market:
        if price is not None:
            raise codes.not_required("price")
        price = ZERO
    else:
        if price is None:
            raise codes.mandatory("price")
        if (violation := filters.check_price(price)) is not None:
            raise BinanceError(violation.code, violation.message)
    if time_in_force not in _ALGO_TIME_IN_FORCE or (is_market and time_in_force is not TimeInForce.GTC):
        raise codes.reject(codes.INVALID_TIF)
    if (violation := filters.check_price(trigger_price)) is not None:
        raise BinanceError(violation.code, violation.message)
    if close_position:
        return ZERO, price
    if quantity is None:
        raise codes.mandatory("quantity")
    violation = filters.check_quantity(quantity, OrderType.MARKET if is_market else OrderType.LIMIT)
    if violation is None:
        violation = filters.check_notional(quantity, price or trigger_price, reduce_only)
    if violation is not None:
        raise BinanceError(violation.code, violation.message)
    return quantity, price


def check_book_limits(st: SymbolState, *, order_type: OrderType, side: Side, position_side: PositionSide,
                      close_position: bool) -> None:
    """-4045 at MAX_NUM_ALGO_ORDERS open; -4130 for a second closePosition order of one type and direction."""
    if len(st.algos) >= st.filters.max_num_algo_orders:
        raise codes.reject(codes.MAX_STOP_ORDERS)
    if close_position and any(
            w.algo.close_position and w.algo.order_type is order_type and w.algo.side is side
            and w.algo.position_side is position_side for w in st.algos.values()):
        raise codes.reject(codes.CLOSE_POSITION_EXISTS)


def closes_only(algo: AlgoOrder, dual_side: bool) -> bool:
    """Does the order this conditional places only close (reduceOnly, closePosition, or a hedge-mode close)?"""
    return algo.reduce_only or algo.close_position or (
        dual_side and (algo.position_side is PositionSide.LONG) != (algo.side is Side.BUY))
