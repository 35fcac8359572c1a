"""Translate Binance wire payloads (user-data events, market streams, REST objects) into domain objects, once.

Nothing past this module sees single-letter keys. A payload that does not fit raises :class:`PayloadError`
naming the event and the field, so the caller can log the frame and skip it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from utils.domain import (
    ZERO,
    AlgoStatus,
    Balance,
    Candle,
    ExecutionType,
    Fill,
    MarginType,
    MarkPrice,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    Side,
    TimeInForce,
    WorkingType,
)
from utils.precision import DecimalParseError, to_decimal


class PayloadError(ValueError):
    """A frame or response that does not have the shape Binance documents."""


def _dec(data: Mapping[str, Any], key: str, default: Decimal | None = None) -> Decimal:
    value = data.get(key)
    if value is None or value == "":
        if default is not None:
            return default
        raise PayloadError(f"missing field {key!r}")
    try:
        return to_decimal(value)
    except DecimalParseError as exc:
        raise PayloadError(f"field {key!r}: {exc}") from None


def _int(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key)
    if value is None:
        if default is not None:
            return default
        raise PayloadError(f"missing field {key!r}")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise PayloadError(f"field {key!r}: not an integer: {value!r}")
    try:
        return int(value)
    except ValueError:
        raise PayloadError(f"field {key!r}: not an integer: {value!r}") from None


def _enum(enum_type: type, data: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = data.get(key)
    member = enum_type._value2member_map_.get(value) if value.__class__ is str else None  # type: ignore[attr-defined]
    if member is not None:
        return member  # spelled exactly as a member's value (what Binance sends)
    if value is None:
        if default is not None:
            return default
        raise PayloadError(f"missing field {key!r}")
    try:
        return enum_type(str(value).upper())
    except ValueError:
        raise PayloadError(f"field {key!r}: unknown {enum_type.__name__} {value!r}") from None


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"missing field {key!r}")
    return value


# ------------------------------------------------------------------------------------------ user data
@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An ORDER_TRADE_UPDATE: the order's new state, and the fill when it traded.

    A fill comes with execution type TRADE, and with CALCULATED for a liquidation or ADL (Binance reports those
    fills as CALCULATED, with a trade id and last quantity like any other fill).
    """

    event_time: int
    execution_type: ExecutionType
    order: Order
    fill: Fill | None


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    event_time: int
    reason: str
    balances: tuple[Balance, ...]
    positions: tuple[Position, ...]


@dataclass(frozen=True, slots=True)
class AlgoUpdate:
    event_time: int
    algo_id: int
    client_algo_id: str
    symbol: str
    side: Side
    order_type: OrderType
    status: AlgoStatus
    position_side: PositionSide
    quantity: Decimal
    trigger_price: Decimal
    close_position: bool
    reduce_only: bool
    working_type: WorkingType
    reject_reason: str
    triggered_order_id: int | None = None  # ``ai``: the order placed when it triggered ("" before)


@dataclass(frozen=True, slots=True)
class ListenKeyExpired:
    event_time: int


@dataclass(frozen=True, slots=True)
class OtherUserEvent:
    """A user-data event the bot does not act on (TRADE_LITE, MARGIN_CALL, ACCOUNT_CONFIG_UPDATE, ...)."""

    event_type: str
    event_time: int


UserEvent = OrderUpdate | AccountUpdate | AlgoUpdate | ListenKeyExpired | OtherUserEvent


def parse_order_trade_update(event: Mapping[str, Any]) -> OrderUpdate:
    o = event.get("o")
    if o.__class__ is not dict and not isinstance(o, Mapping):
        raise PayloadError("ORDER_TRADE_UPDATE without 'o'")
    execution_type = _enum(ExecutionType, o, "x")
    status = _enum(OrderStatus, o, "X")
    symbol = _str(o, "s")
    side = _enum(Side, o, "S")
    position_side = _enum(PositionSide, o, "ps", PositionSide.BOTH)
    executed = _dec(o, "z", ZERO)
    average = _dec(o, "ap", ZERO)
    trade_time = _int(o, "T", _int(event, "T", 0))
    order = Order(
        symbol=symbol,
        order_id=_int(o, "i"),
        client_order_id=_str(o, "c"),
        side=side,
        order_type=_enum(OrderType, o, "o"),
        status=status,
        quantity=_dec(o, "q", ZERO),
        price=_dec(o, "p", ZERO),
        time_in_force=_enum(TimeInForce, o, "f", TimeInForce.GTC),
        position_side=position_side,
        reduce_only=bool(o.get("R", False)),
        close_position=bool(o.get("cp", False)),
        stop_price=_dec(o, "sp", ZERO),
        executed_quantity=executed,
        cum_quote=(executed * average),
        avg_price=average,
        working_type=_enum(WorkingType, o, "wt", WorkingType.CONTRACT_PRICE),
        update_time=trade_time,
    )
    fill = None
    if execution_type is ExecutionType.TRADE or (
        execution_type is ExecutionType.CALCULATED and _dec(o, "l", ZERO) > 0
    ):
        last_quantity = _dec(o, "l")
        last_price = _dec(o, "L")
        fill = Fill(
            symbol=symbol,
            trade_id=_int(o, "t"),
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            side=side,
            position_side=position_side,
            price=last_price,
            quantity=last_quantity,
            quote_quantity=last_price * last_quantity,
            commission=_dec(o, "n", ZERO),
            commission_asset=str(o.get("N") or "USDT"),
            realized_pnl=_dec(o, "rp", ZERO),
            maker=bool(o.get("m", False)),
            time=trade_time,
        )
    return OrderUpdate(_int(event, "E"), execution_type, order, fill)


def parse_account_update(event: Mapping[str, Any]) -> AccountUpdate:
    a = event.get("a")
    if a.__class__ is not dict and not isinstance(a, Mapping):
        raise PayloadError("ACCOUNT_UPDATE without 'a'")
    time = _int(event, "T", _int(event, "E"))
    balances = tuple(
        Balance(asset=_str(b, "a"), wallet_balance=_dec(b, "wb"), cross_wallet_balance=_dec(b, "cw", ZERO),
                balance_change=_dec(b, "bc", ZERO))
        for b in a.get("B", [])
    )
    positions = tuple(
        Position(
            symbol=_str(p, "s"),
            position_side=_enum(PositionSide, p, "ps", PositionSide.BOTH),
            amount=_dec(p, "pa"),
            entry_price=_dec(p, "ep", ZERO),
            break_even_price=_dec(p, "bep", ZERO),
            realized_pnl=_dec(p, "cr", ZERO),
            unrealized_pnl=_dec(p, "up", ZERO),
            margin_type=_enum(MarginType, {"mt": "CROSSED" if str(p.get("mt", "cross")).lower().startswith("cross")
                                           else "ISOLATED"}, "mt"),
            isolated_wallet=_dec(p, "iw", ZERO),
            update_time=time,
        )
        for p in a.get("P", [])
    )
    return AccountUpdate(_int(event, "E"), str(a.get("m", "")), balances, positions)


def parse_algo_update(event: Mapping[str, Any]) -> AlgoUpdate:
    o = event.get("o")
    if not isinstance(o, Mapping):
        raise PayloadError("ALGO_UPDATE without 'o'")
    return AlgoUpdate(
        event_time=_int(event, "E"),
        algo_id=_int(o, "aid"),
        client_algo_id=_str(o, "caid"),
        symbol=_str(o, "s"),
        side=_enum(Side, o, "S"),
        order_type=_enum(OrderType, o, "o"),
        status=_enum(AlgoStatus, o, "X"),
        position_side=_enum(PositionSide, o, "ps", PositionSide.BOTH),
        quantity=_dec(o, "q", ZERO),
        trigger_price=_dec(o, "tp", ZERO),
        close_position=bool(o.get("cp", False)),
        reduce_only=bool(o.get("R", False)),
        working_type=_enum(WorkingType, o, "wt", WorkingType.CONTRACT_PRICE),
        reject_reason=str(o.get("rm") or ""),
        triggered_order_id=_int(o, "ai") if o.get("ai") not in (None, "", "0", 0) else None,
    )


def parse_user_event(event: Any) -> UserEvent:
    """Any user-data-stream event (the combined-stream wrapper ``{"stream", "data"}`` is accepted too)."""
    if event.__class__ is not dict and isinstance(event, Mapping) and "data" in event and "stream" in event:
        event = event["data"]
    elif event.__class__ is dict and "stream" in event and "data" in event:
        event = event["data"]
    if event.__class__ is not dict and not isinstance(event, Mapping):
        raise PayloadError(f"user event is not an object: {type(event).__name__}")
    event_type = event.get("e")
    try:
        if event_type == "ORDER_TRADE_UPDATE":
            return parse_order_trade_update(event)
        if event_type == "ACCOUNT_UPDATE":
            return parse_account_update(event)
        if event_type == "ALGO_UPDATE":
            return parse_algo_update(event)
        if event_type == "listenKeyExpired":
            return ListenKeyExpired(_int(event, "E"))
        if isinstance(event_type, str) and event_type:
            return OtherUserEvent(event_type, _int(event, "E", 0))
    except PayloadError as exc:
        raise PayloadError(f"{event_type}: {exc}") from None
    raise PayloadError("user event without an 'e' field")


# ---------------------------------------------------------------------------------------- market data
def parse_kline_event(event: Mapping[str, Any]) -> Candle:
    """A ``kline`` stream event (``k.x`` tells whether the candle is closed)."""
    k = event.get("k")
    if event.get("e") != "kline" or not isinstance(k, Mapping):
        raise PayloadError("not a kline event")
    try:
        return Candle(
            symbol=_str(k, "s"), open_time=_int(k, "t"), close_time=_int(k, "T"),
            open=_dec(k, "o"), high=_dec(k, "h"), low=_dec(k, "l"), close=_dec(k, "c"), volume=_dec(k, "v"),
            quote_volume=_dec(k, "q", ZERO), trades=_int(k, "n", 0), taker_buy_volume=_dec(k, "V", ZERO),
            taker_buy_quote_volume=_dec(k, "Q", ZERO), interval=str(k.get("i", "1m")), closed=bool(k.get("x")),
        )
    except PayloadError as exc:
        raise PayloadError(f"kline: {exc}") from None


def parse_mark_price_event(event: Mapping[str, Any]) -> MarkPrice:
    if event.get("e") != "markPriceUpdate":
        raise PayloadError("not a markPriceUpdate event")
    try:
        return MarkPrice(
            symbol=_str(event, "s"), event_time=_int(event, "E"), mark_price=_dec(event, "p"),
            index_price=_dec(event, "i", ZERO), funding_rate=_dec(event, "r", ZERO),
            next_funding_time=_int(event, "T", 0), estimated_settle_price=_dec(event, "P", ZERO),
        )
    except PayloadError as exc:
        raise PayloadError(f"markPriceUpdate: {exc}") from None


# ------------------------------------------------------------------------------------------------ REST
def parse_rest_order(data: Mapping[str, Any]) -> Order:
    """An order object from ``GET/POST/DELETE /fapi/v1/order`` or ``/openOrders``."""
    if not isinstance(data, Mapping):
        raise PayloadError("order: not an object")
    try:
        executed = _dec(data, "executedQty", ZERO)
        return Order(
            symbol=_str(data, "symbol"), order_id=_int(data, "orderId"), client_order_id=_str(data, "clientOrderId"),
            side=_enum(Side, data, "side"), order_type=_enum(OrderType, data, "type"),
            status=_enum(OrderStatus, data, "status"), quantity=_dec(data, "origQty", ZERO),
            price=_dec(data, "price", ZERO), time_in_force=_enum(TimeInForce, data, "timeInForce", TimeInForce.GTC),
            position_side=_enum(PositionSide, data, "positionSide", PositionSide.BOTH),
            reduce_only=bool(data.get("reduceOnly", False)), close_position=bool(data.get("closePosition", False)),
            stop_price=_dec(data, "stopPrice", ZERO), executed_quantity=executed,
            cum_quote=_dec(data, "cumQuote", ZERO), avg_price=_dec(data, "avgPrice", ZERO),
            working_type=_enum(WorkingType, data, "workingType", WorkingType.CONTRACT_PRICE),
            create_time=_int(data, "time", _int(data, "updateTime", 0)), update_time=_int(data, "updateTime", 0),
        )
    except PayloadError as exc:
        raise PayloadError(f"order: {exc}") from None


def parse_rest_trade(data: Mapping[str, Any]) -> Fill:
    """A trade from ``GET /fapi/v1/userTrades``."""
    if not isinstance(data, Mapping):
        raise PayloadError("userTrade: not an object")
    try:
        return Fill(
            symbol=_str(data, "symbol"), trade_id=_int(data, "id"), order_id=_int(data, "orderId"),
            client_order_id=str(data.get("clientOrderId", "")), side=_enum(Side, data, "side"),
            position_side=_enum(PositionSide, data, "positionSide", PositionSide.BOTH), price=_dec(data, "price"),
            quantity=_dec(data, "qty"), quote_quantity=_dec(data, "quoteQty", ZERO),
            commission=_dec(data, "commission", ZERO), commission_asset=str(data.get("commissionAsset", "USDT")),
            realized_pnl=_dec(data, "realizedPnl", ZERO), maker=bool(data.get("maker", False)),
            time=_int(data, "time"),
        )
    except PayloadError as exc:
        raise PayloadError(f"userTrade: {exc}") from None


def parse_rest_position(data: Mapping[str, Any]) -> Position:
    """A position from ``GET /fapi/v3/positionRisk`` (or v2)."""
    if not isinstance(data, Mapping):
        raise PayloadError("position: not an object")
    try:
        return Position(
            symbol=_str(data, "symbol"),
            position_side=_enum(PositionSide, data, "positionSide", PositionSide.BOTH),
            amount=_dec(data, "positionAmt"), entry_price=_dec(data, "entryPrice", ZERO),
            break_even_price=_dec(data, "breakEvenPrice", ZERO), unrealized_pnl=_dec(data, "unRealizedProfit", ZERO),
            mark_price=_dec(data, "markPrice", ZERO), leverage=_int(data, "leverage", 1),
            isolated_wallet=_dec(data, "isolatedWallet", ZERO), update_time=_int(data, "updateTime", 0),
        )
    except PayloadError as exc:
        raise PayloadError(f"position: {exc}") from None


def parse_rest_kline(row: Any, symbol: str, *, closed: bool = True, interval: str = "1m") -> Candle:
    """One row of ``GET /fapi/v1/klines`` (an array of 12: open time, o, h, l, c, volume, close time, quote volume,
    trades, taker buy base, taker buy quote, ignore). Whether it is closed the caller knows (the last row of an
    open-ended request is the forming candle)."""
    if not isinstance(row, (list, tuple)) or len(row) < 11:
        raise PayloadError(f"kline row: expected an array of 12, got {str(row)[:80]!r}")
    fields = dict(zip(("t", "o", "h", "l", "c", "v", "T", "q", "n", "V", "Q"), row, strict=False))
    try:
        return Candle(
            symbol=symbol, open_time=_int(fields, "t"), close_time=_int(fields, "T"), open=_dec(fields, "o"),
            high=_dec(fields, "h"), low=_dec(fields, "l"), close=_dec(fields, "c"), volume=_dec(fields, "v"),
            quote_volume=_dec(fields, "q", ZERO), trades=_int(fields, "n", 0),
            taker_buy_volume=_dec(fields, "V", ZERO), taker_buy_quote_volume=_dec(fields, "Q", ZERO),
            interval=interval, closed=closed,
        )
    except PayloadError as exc:
        raise PayloadError(f"kline row: {exc}") from None


def parse_premium_index(data: Mapping[str, Any]) -> MarkPrice:
    """``GET /fapi/v1/premiumIndex`` for one symbol."""
    if not isinstance(data, Mapping):
        raise PayloadError("premiumIndex: not an object")
    try:
        return MarkPrice(
            symbol=_str(data, "symbol"), event_time=_int(data, "time", 0), mark_price=_dec(data, "markPrice"),
            index_price=_dec(data, "indexPrice", ZERO), funding_rate=_dec(data, "lastFundingRate", ZERO),
            next_funding_time=_int(data, "nextFundingTime", 0),
            estimated_settle_price=_dec(data, "estimatedSettlePrice", ZERO),
        )
    except PayloadError as exc:
        raise PayloadError(f"premiumIndex: {exc}") from None
