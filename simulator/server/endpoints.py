"""The REST endpoints: Binance USD-M's paths, security types, weights and parameters, and what each one does.

``ENDPOINTS`` maps (method, path) to an ``Endpoint``: which parameters it reads (see ``params``), its request weight
(a number, or a function of the parameters, e.g. klines by ``limit``), whether it counts on the order limits, and
its handler. A handler is plain synchronous code over one account's ``SimExchange`` (or the market replay) that
returns the response body; Binance errors are raised as ``BinanceError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from simulator import codes, rest_shapes
from simulator.server import errors, rest_bodies
from simulator.server.params import Kind, Param, RawParameters, enum
from simulator.server.replay import KLINE_INTERVALS
from utils.domain import MarginType, OrderType, PositionSide, Side, TimeInForce, WorkingType
from utils.errors import BinanceError

if TYPE_CHECKING:
    from simulator.server.app import Account, SimServer


class Security(Enum):
    NONE = "NONE"
    USER_STREAM = "USER_STREAM"   # API key only
    SIGNED = "SIGNED"             # TRADE / USER_DATA: API key, timestamp, signature


Handler = Callable[["SimServer", "Account | None", dict[str, Any]], Any]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    security: Security
    params: tuple[Param, ...]
    handler: Handler
    weight: int | Callable[[RawParameters], int] = 1
    counts_as_order: bool = False
    funding_pool: bool = False

    def weight_of(self, raw: RawParameters) -> int:
        return self.weight if isinstance(self.weight, int) else self.weight(raw)


SIGNED_PARAMS = (Param("recvWindow", Kind.LONG), Param("timestamp", Kind.LONG, required=True),
                 Param("signature", required=True))

_SIDE = enum("side", [s.value for s in Side], required=True, invalid=lambda: BinanceError(-1117, "Invalid side."))
_ORDER_TYPES = [t.value for t in OrderType if t is not OrderType.LIQUIDATION]
_TYPE = enum("type", _ORDER_TYPES, required=True, invalid=lambda: codes.reject(codes.INVALID_ORDER_TYPE))
_TIME_IN_FORCE = enum("timeInForce", [t.value for t in TimeInForce], invalid=lambda: codes.reject(codes.INVALID_TIF))
_POSITION_SIDE = enum("positionSide", [p.value for p in PositionSide])
_WORKING_TYPE = enum("workingType", [w.value for w in WorkingType])
_PRICE_MATCH = enum("priceMatch", ["NONE", "OPPONENT", "OPPONENT_5", "OPPONENT_10", "OPPONENT_20", "QUEUE",
                                   "QUEUE_5", "QUEUE_10", "QUEUE_20"])
_STP = enum("selfTradePreventionMode", ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"])
_RESPONSE_TYPE = enum("newOrderRespType", ["ACK", "RESULT"])
_SYMBOL = Param("symbol", Kind.SYMBOL, required=True)
_OPTIONAL_SYMBOL = Param("symbol", Kind.SYMBOL)
_LIMIT = Param("limit", Kind.INT)
_TIMES = (Param("startTime", Kind.LONG), Param("endTime", Kind.LONG))


def _symbol_weight(with_symbol: int, without: int) -> Callable[[RawParameters], int]:
    return lambda raw: with_symbol if raw.get("symbol") else without


def _klines_weight(raw: RawParameters) -> int:
    text = raw.get("limit") or "500"
    limit = int(text) if text.isdigit() and len(text) < 10 else 500
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _account(account: Account | None) -> Account:
    assert account is not None, "a signed or user-stream endpoint always has an account"
    return account


def _check_limit(values: Mapping[str, Any], default: int, maximum: int) -> int:
    limit = int(values.get("limit", default))
    if not 1 <= limit <= maximum:
        raise codes.reject(codes.INVALID_LIMIT)
    return limit


def _check_times(values: Mapping[str, Any]) -> None:
    start, end = values.get("startTime"), values.get("endTime")
    if start is not None and end is not None and start > end:
        raise BinanceError(-1023, "Start time is greater than end time.")


def _check_symbol(server: SimServer, symbol: str) -> str:
    if symbol not in server.symbols:
        raise errors.invalid_symbol()
    return symbol


def _refuse_conditional_fields(values: Mapping[str, Any], names: Sequence[str]) -> None:
    """LIMIT and MARKET orders take no trigger fields (-1106), as on Binance."""
    for name in names:
        if name in values:
            raise errors.not_required(name)
    if values.get("closePosition") is True:
        raise errors.not_required("closePosition")


# ============================================================================================= market data
def ping(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    return {}


def server_time(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    return {"serverTime": server.gateway.server_time_ms()}


def exchange_information(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    return rest_bodies.exchange_info(server.exchange_info_document, server.gateway.server_time_ms(),
                                     server.config.rate_limits.exchange_info())


def klines(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    symbol = _check_symbol(server, values["symbol"])
    limit = _check_limit(values, 500, 1500)
    _check_times(values)
    candles = server.replay.klines(symbol, values["interval"], server.market_clock.now_ms(),
                                   start_time=values.get("startTime"), end_time=values.get("endTime"), limit=limit)
    return [rest_bodies.kline_row(candle) for candle in candles]


def premium_index(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    exchange = server.reference_exchange
    now = server.market_clock.now_ms()
    if "symbol" in values:
        return rest_bodies.premium_index(exchange, _check_symbol(server, values["symbol"]), now)
    return [rest_bodies.premium_index(exchange, symbol, now) for symbol in server.symbols
            if exchange.last_price(symbol)]


def funding_rate_history(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    symbol = values.get("symbol")
    if symbol is not None:
        _check_symbol(server, symbol)
    limit = _check_limit(values, 100, 1000)
    _check_times(values)
    records = server.replay.funding_history(symbol, start_time=values.get("startTime"),
                                            end_time=values.get("endTime"), limit=limit)
    return [rest_bodies.funding_rate(record) for record in records]


def funding_information(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    config = server.sim_config
    return [rest_bodies.funding_info(symbol, config.funding_interval_hours.get(
        symbol, config.default_funding_interval_hours)) for symbol in server.symbols]


# ============================================================================================= orders
def _order_body(account: Account, order_id: int, symbol: str, order: Any, *, short: bool) -> dict[str, Any]:
    orig_type = account.exchange.order_orig_type(symbol, order_id)
    return rest_shapes.order_to_rest(order, orig_type, new_order_response=short)  # short: POST/DELETE's shape


def new_order(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    account = _account(account)
    symbol = _check_symbol(server, values["symbol"])
    order_type = OrderType(values["type"])
    if not order_type.is_conditional:
        _refuse_conditional_fields(values, ("stopPrice", "activationPrice", "callbackRate"))
    if values.get("priceMatch", "NONE") != "NONE":
        raise errors.unsupported_combination("priceMatch")
    if values.get("priceProtect") is True:
        raise errors.unsupported_combination("priceProtect")
    time_in_force = values.get("timeInForce")
    order = account.exchange.new_order(
        symbol=symbol, side=Side(values["side"]), order_type=order_type, quantity=values.get("quantity"),
        price=values.get("price"), time_in_force=TimeInForce(time_in_force) if time_in_force else None,
        position_side=PositionSide(values.get("positionSide", "BOTH")), reduce_only=values.get("reduceOnly", False),
        client_order_id=values.get("newClientOrderId"))
    shown = order if values.get("newOrderRespType", "ACK") == "RESULT" else rest_bodies.accepted_order(order)
    return _order_body(account, order.order_id, symbol, shown, short=True)


def _query(server: SimServer, account: Account | None, values: dict[str, Any], *, open_only: bool) -> Any:
    account = _account(account)
    symbol = _check_symbol(server, values["symbol"])
    order = account.exchange.query_order(symbol, order_id=values.get("orderId"),
                                         client_order_id=values.get("origClientOrderId"))
    if open_only and not order.status.is_open:
        raise codes.reject(codes.NO_SUCH_ORDER)
    return _order_body(account, order.order_id, symbol, order, short=False)


def query_order(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    return _query(server, account, values, open_only=False)


def query_open_order(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    return _query(server, account, values, open_only=True)


def cancel_order(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    account = _account(account)
    symbol = _check_symbol(server, values["symbol"])
    order = account.exchange.cancel_order(symbol, order_id=values.get("orderId"),
                                          client_order_id=values.get("origClientOrderId"))
    return _order_body(account, order.order_id, symbol, order, short=True)


def open_orders(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    account = _account(account)
    symbol = values.get("symbol")
    if symbol is not None:
        _check_symbol(server, symbol)
    return [_order_body(account, order.order_id, order.symbol, order, short=False)
            for order in account.exchange.open_orders(symbol)]


def cancel_all_open_orders(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    _account(account).exchange.cancel_all_orders(_check_symbol(server, values["symbol"]))
    return rest_shapes.cancel_all_response()


def all_orders(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    account = _account(account)
    symbol = _check_symbol(server, values["symbol"])
    _check_times(values)
    orders = account.exchange.all_orders(symbol, order_id=values.get("orderId"), start_time=values.get("startTime"),
                                         end_time=values.get("endTime"), limit=int(values.get("limit", 500)))
    return [_order_body(account, order.order_id, symbol, order, short=False) for order in orders]


# ============================================================================================= algo orders
def new_algo_order(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    account = _account(account)
    symbol = _check_symbol(server, values["symbol"])
    if values.get("priceMatch", "NONE") != "NONE":
        raise errors.unsupported_combination("priceMatch")
    if values.get("priceProtect") is True:
        raise errors.unsupported_combination("priceProtect")
    order_type = OrderType(values["type"])
    if order_type is not OrderType.TRAILING_STOP_MARKET:
        for name in ("activatePrice", "callbackRate"):
            if name in values:
                raise errors.not_required(name)
    if "triggerPrice" not in values:
        raise errors.mandatory("triggerPrice")
    algo = account.exchange.new_algo_order(
        symbol=symbol, side=Side(values["side"]), order_type=order_type, trigger_price=values["triggerPrice"],
        quantity=values.get("quantity"), price=values.get("price"),
        close_position=values.get("closePosition", False),
        working_type=WorkingType(values.get("workingType", "CONTRACT_PRICE")),
        position_side=PositionSide(values.get("positionSide", "BOTH")), reduce_only=values.get("reduceOnly", False),
        client_algo_id=values.get("clientAlgoId"), time_in_force=TimeInForce(values.get("timeInForce", "GTC")))
    return rest_shapes.algo_order_to_rest(algo)


def query_algo_order(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    algo = _account(account).exchange.query_algo_order(algo_id=values.get("algoId"),
                                                       client_algo_id=values.get("clientAlgoId"))
    return rest_shapes.algo_order_to_rest(algo)


def cancel_algo_order(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    algo = _account(account).exchange.cancel_algo_order(algo_id=values.get("algoId"),
                                                        client_algo_id=values.get("clientAlgoId"))
    return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}


def open_algo_orders(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    symbol = values.get("symbol")
    if symbol is not None:
        _check_symbol(server, symbol)
    algos = _account(account).exchange.open_algo_orders(symbol)
    if "algoId" in values:
        algos = [algo for algo in algos if algo.algo_id == values["algoId"]]
    return [rest_shapes.algo_order_to_rest(algo) for algo in algos]


def cancel_all_algo_open_orders(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    _account(account).exchange.cancel_all_algo_orders(_check_symbol(server, values["symbol"]))
    return rest_shapes.cancel_all_response()


# ============================================================================================= account
def position_risk(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    symbol = values.get("symbol")
    if symbol is not None:
        _check_symbol(server, symbol)
    return _account(account).exchange.position_risk_v3(symbol)


def account_information(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    return _account(account).exchange.account_v3()


def balance(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    account = _account(account)
    return rest_bodies.balance_v2(account.exchange.account(), account.alias)


def user_trades(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    account = _account(account)
    symbol = _check_symbol(server, values["symbol"])
    limit = _check_limit(values, 500, 1000)
    _check_times(values)
    order_id = values.get("orderId")
    if order_id is not None and "fromId" in values:
        raise codes.reject(codes.BAD_PARAM_COMBO)
    fills = account.exchange.user_trades(symbol, start_time=values.get("startTime"), end_time=values.get("endTime"),
                                         from_id=values.get("fromId"), limit=1000 if order_id is not None else limit)
    if order_id is not None:
        fills = [fill for fill in fills if fill.order_id == order_id][-limit:]
    return [rest_shapes.fill_to_rest(fill) for fill in fills]


def change_leverage(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    symbol = _check_symbol(server, values["symbol"])
    return _account(account).exchange.set_leverage(symbol, values["leverage"])


def change_margin_type(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    symbol = _check_symbol(server, values["symbol"])
    _account(account).exchange.set_margin_type(symbol, MarginType(values["marginType"]))
    return rest_shapes.margin_type_response()


def change_position_mode(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    _account(account).exchange.set_position_mode(values["dualSidePosition"])
    return rest_shapes.margin_type_response()


def position_mode(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    return {"dualSidePosition": _account(account).exchange.dual_side_position}


def leverage_brackets(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    exchange = _account(account).exchange
    if "symbol" in values:
        symbol = _check_symbol(server, values["symbol"])
        return rest_shapes.leverage_brackets(symbol, exchange.leverage_brackets(symbol))
    return [rest_shapes.leverage_brackets(symbol, exchange.leverage_brackets(symbol)) for symbol in server.symbols]


def api_restrictions(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    """``GET /sapi/v1/account/apiRestrictions``: on Binance a spot-host endpoint (``api.binance.com``), served here
    too so that a test can point the bot's ``SAPI_BASE_URL`` at the simulator."""
    credentials = _account(account).credentials
    return {"ipRestrict": False, "createTime": 1_623_840_271_000, "enableReading": True,
            "enableWithdrawals": credentials.allows_withdrawals, "enableInternalTransfer": False,
            "enableMargin": False, "enableFutures": credentials.allows_futures, "permitsUniversalTransfer": False,
            "enableVanillaOptions": False, "enableFixApiTrade": False, "enableFixReadOnly": False,
            "enableSpotAndMarginTrading": False, "enablePortfolioMarginTrading": False}


# ============================================================================================= listenKey
def _check_named_key(server: SimServer, account: Account, values: dict[str, Any]) -> None:
    named = values.get("listenKey")
    if named is not None and named != server.user_streams.key_of(account.api_key):
        raise errors.invalid_listen_key()


def start_user_stream(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    return {"listenKey": server.user_streams.start(_account(account).api_key)}


def keepalive_user_stream(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    account = _account(account)
    _check_named_key(server, account, values)
    return {"listenKey": server.user_streams.keepalive(account.api_key)}


def close_user_stream(server: SimServer, account: Account | None, values: dict[str, Any]) -> Any:
    account = _account(account)
    _check_named_key(server, account, values)
    server.user_streams.close(account.api_key)
    return {}


# ============================================================================================= the table
_ORDER_PARAMS = (
    _SYMBOL, _SIDE, _POSITION_SIDE, _TYPE, _TIME_IN_FORCE, Param("quantity", Kind.DECIMAL),
    Param("reduceOnly", Kind.BOOL), Param("price", Kind.DECIMAL), Param("newClientOrderId", Kind.CLIENT_ID),
    Param("stopPrice", Kind.DECIMAL), Param("closePosition", Kind.BOOL), Param("activationPrice", Kind.DECIMAL),
    Param("callbackRate", Kind.DECIMAL), _WORKING_TYPE, Param("priceProtect", Kind.BOOL), _RESPONSE_TYPE,
    _PRICE_MATCH, _STP, Param("goodTillDate", Kind.LONG),
)
_ALGO_PARAMS = (
    enum("algoType", ["CONDITIONAL"], required=True), _SYMBOL, _SIDE, _POSITION_SIDE, _TYPE, _TIME_IN_FORCE,
    Param("quantity", Kind.DECIMAL), Param("price", Kind.DECIMAL), Param("triggerPrice", Kind.DECIMAL),
    _WORKING_TYPE, _PRICE_MATCH, Param("closePosition", Kind.BOOL), Param("priceProtect", Kind.BOOL),
    Param("reduceOnly", Kind.BOOL), Param("activatePrice", Kind.DECIMAL), Param("callbackRate", Kind.DECIMAL),
    Param("clientAlgoId", Kind.CLIENT_ID), _RESPONSE_TYPE, _STP, Param("goodTillDate", Kind.LONG),
)
_ORDER_ID_PARAMS = (_SYMBOL, Param("orderId", Kind.LONG), Param("origClientOrderId", Kind.CLIENT_ID))
_ALGO_ID_PARAMS = (Param("algoId", Kind.LONG), Param("clientAlgoId", Kind.CLIENT_ID))
_NONE, _KEY, _SIGNED = Security.NONE, Security.USER_STREAM, Security.SIGNED

_TABLE = (
    Endpoint("GET", "/fapi/v1/ping", _NONE, (), ping),
    Endpoint("GET", "/fapi/v1/time", _NONE, (), server_time),
    Endpoint("GET", "/fapi/v1/exchangeInfo", _NONE, (), exchange_information),
    Endpoint("GET", "/fapi/v1/klines", _NONE, (
        _SYMBOL, enum("interval", list(KLINE_INTERVALS), required=True, invalid=errors.invalid_interval),
        *_TIMES, _LIMIT), klines, _klines_weight),
    Endpoint("GET", "/fapi/v1/premiumIndex", _NONE, (_OPTIONAL_SYMBOL,), premium_index, _symbol_weight(1, 10)),
    Endpoint("GET", "/fapi/v1/fundingRate", _NONE, (_OPTIONAL_SYMBOL, *_TIMES, _LIMIT), funding_rate_history, 0,
             funding_pool=True),
    Endpoint("GET", "/fapi/v1/fundingInfo", _NONE, (), funding_information, 0, funding_pool=True),
    Endpoint("POST", "/fapi/v1/order", _SIGNED, _ORDER_PARAMS, new_order, 0, counts_as_order=True),
    Endpoint("GET", "/fapi/v1/order", _SIGNED, _ORDER_ID_PARAMS, query_order),
    Endpoint("DELETE", "/fapi/v1/order", _SIGNED, _ORDER_ID_PARAMS, cancel_order),
    Endpoint("GET", "/fapi/v1/openOrder", _SIGNED, _ORDER_ID_PARAMS, query_open_order),
    Endpoint("GET", "/fapi/v1/openOrders", _SIGNED, (_OPTIONAL_SYMBOL,), open_orders, _symbol_weight(1, 40)),
    Endpoint("DELETE", "/fapi/v1/allOpenOrders", _SIGNED, (_SYMBOL,), cancel_all_open_orders),
    Endpoint("GET", "/fapi/v1/allOrders", _SIGNED, (_SYMBOL, Param("orderId", Kind.LONG), *_TIMES, _LIMIT),
             all_orders, 5),
    Endpoint("POST", "/fapi/v1/algoOrder", _SIGNED, _ALGO_PARAMS, new_algo_order, 0, counts_as_order=True),
    Endpoint("GET", "/fapi/v1/algoOrder", _SIGNED, _ALGO_ID_PARAMS, query_algo_order),
    Endpoint("DELETE", "/fapi/v1/algoOrder", _SIGNED, _ALGO_ID_PARAMS, cancel_algo_order),
    Endpoint("GET", "/fapi/v1/openAlgoOrders", _SIGNED, (
        enum("algoType", ["CONDITIONAL"]), _OPTIONAL_SYMBOL, Param("algoId", Kind.LONG)), open_algo_orders,
        _symbol_weight(1, 40)),
    Endpoint("DELETE", "/fapi/v1/algoOpenOrders", _SIGNED, (_SYMBOL,), cancel_all_algo_open_orders),
    Endpoint("GET", "/fapi/v3/positionRisk", _SIGNED, (_OPTIONAL_SYMBOL,), position_risk, 5),
    Endpoint("GET", "/fapi/v3/account", _SIGNED, (), account_information, 5),
    Endpoint("GET", "/fapi/v2/balance", _SIGNED, (), balance, 5),
    Endpoint("GET", "/fapi/v1/userTrades", _SIGNED, (
        _SYMBOL, Param("orderId", Kind.LONG), *_TIMES, Param("fromId", Kind.LONG), _LIMIT), user_trades, 5),
    Endpoint("POST", "/fapi/v1/leverage", _SIGNED, (_SYMBOL, Param("leverage", Kind.INT, required=True)),
             change_leverage),
    Endpoint("POST", "/fapi/v1/marginType", _SIGNED, (
        _SYMBOL, enum("marginType", [m.value for m in MarginType], required=True)), change_margin_type),
    Endpoint("POST", "/fapi/v1/positionSide/dual", _SIGNED, (
        Param("dualSidePosition", Kind.BOOL, required=True),), change_position_mode),
    Endpoint("GET", "/fapi/v1/positionSide/dual", _SIGNED, (), position_mode, 30),
    Endpoint("GET", "/fapi/v1/leverageBracket", _SIGNED, (_OPTIONAL_SYMBOL,), leverage_brackets),
    Endpoint("GET", "/sapi/v1/account/apiRestrictions", _SIGNED, (), api_restrictions),
    Endpoint("POST", "/fapi/v1/listenKey", _KEY, (), start_user_stream),
    Endpoint("PUT", "/fapi/v1/listenKey", _KEY, (Param("listenKey"),), keepalive_user_stream),
    Endpoint("DELETE", "/fapi/v1/listenKey", _KEY, (Param("listenKey"),), close_user_stream),
)

ENDPOINTS: dict[tuple[str, str], Endpoint] = {(e.method, e.path): e for e in _TABLE}
PATHS = frozenset(e.path for e in _TABLE)
