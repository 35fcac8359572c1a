"""``BinanceGateway``: the :class:`~executor.gateway.ExchangeGateway` over Binance's REST API, plus what the live
start-up needs (server time, exchangeInfo, position mode, leverage, margin type, listenKey, klines, premiumIndex,
the key's permissions).

Responses are parsed once, here (``utils/binance_parse.py`` and ``live/parse.py``); errors are the classified
ones of ``utils/errors.py``. Every call names its rate-limit weight and priority: cancels, exits (reduce-only or
closePosition orders) and lookups go before new entries when the budget is short.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from executor.commands import AlgoAck
from executor.gateway import TRADES_PAGE, AccountInfo
from live.parse import ExchangeInfo, parse_account, parse_algo_ack, parse_exchange_info_document
from utils.binance_parse import (
    PayloadError,
    parse_premium_index,
    parse_rest_kline,
    parse_rest_order,
    parse_rest_position,
    parse_rest_trade,
)
from utils.domain import (
    AlgoStatus,
    Candle,
    Fill,
    MarginType,
    MarkPrice,
    Order,
    OrderIntent,
    OrderPurpose,
    OrderType,
    Position,
    PositionMode,
    PositionSide,
    TimeInForce,
)
from utils.errors import BinanceError, UnreadableResponseError
from utils.ratelimit import Priority
from utils.rest import ParamValue, RestClient

__all__ = ["BinanceGateway", "ExchangeInfo", "KeyPermissions"]

log = logging.getLogger("live.gateway")

NO_NEED_TO_CHANGE_MARGIN_TYPE = -4046
NO_NEED_TO_CHANGE_POSITION_MODE = -4059
KLINES_MAX = 1500


@dataclass(frozen=True, slots=True)
class KeyPermissions:
    """``GET /sapi/v1/account/apiRestrictions`` (Binance's spot API host): what the key may do."""

    enable_futures: bool
    enable_withdrawals: bool
    enable_reading: bool
    ip_restrict: bool


def _klines_weight(limit: int) -> int:
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _order_priority(intent: OrderIntent) -> Priority:
    if intent.reduce_only or intent.close_position or intent.purpose is not OrderPurpose.ENTRY:
        return Priority.EXIT
    return Priority.ENTRY


def _body(response: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(response, Mapping):
        raise UnreadableResponseError(f"{what}: unexpected answer {str(response)[:200]!r}")
    return response


class BinanceGateway:
    """Binance USD-M REST operations for the core and the live start-up, over one :class:`RestClient`.

    ``sapi_base_url`` (mainnet: ``https://api.binance.com``) is where :meth:`key_permissions` asks; None: not asked.
    """

    def __init__(self, rest: RestClient, *, sapi_base_url: str | None = None) -> None:
        self.rest = rest
        self.sapi_base_url = sapi_base_url
        self._algo_symbols: dict[str, str] = {}

    # ------------------------------------------------------------------------------------ ExchangeGateway
    @staticmethod
    def order_params(intent: OrderIntent) -> dict[str, ParamValue]:
        """``POST /fapi/v1/order`` parameters for a plain (LIMIT / MARKET) order, in Binance's order."""
        params: dict[str, ParamValue] = {
            "symbol": intent.symbol, "side": intent.side, "type": intent.order_type,
            "positionSide": intent.position_side, "quantity": intent.quantity,
        }
        if intent.order_type is OrderType.LIMIT:
            params["price"] = intent.price
            params["timeInForce"] = intent.time_in_force or TimeInForce.GTC
        elif intent.time_in_force is not None and intent.order_type is not OrderType.MARKET:
            params["timeInForce"] = intent.time_in_force
        if intent.reduce_only and intent.position_side is PositionSide.BOTH:
            params["reduceOnly"] = True  # hedge mode refuses the parameter: the position side says it
        params["newClientOrderId"] = intent.client_order_id
        params["newOrderRespType"] = "RESULT"
        return params

    @staticmethod
    def algo_params(intent: OrderIntent) -> dict[str, ParamValue]:
        """``POST /fapi/v1/algoOrder`` parameters for a conditional order (``triggerPrice`` from ``stop_price``)."""
        params: dict[str, ParamValue] = {
            "algoType": "CONDITIONAL", "symbol": intent.symbol, "side": intent.side,
            "positionSide": intent.position_side, "type": intent.order_type,
        }
        if intent.close_position:
            params["closePosition"] = True
        else:
            params["quantity"] = intent.quantity
            if intent.reduce_only and intent.position_side is PositionSide.BOTH:
                params["reduceOnly"] = True
        if intent.order_type in (OrderType.STOP, OrderType.TAKE_PROFIT):
            params["price"] = intent.price
            params["timeInForce"] = intent.time_in_force or TimeInForce.GTC
        params["triggerPrice"] = intent.stop_price
        params["workingType"] = intent.working_type
        params["clientAlgoId"] = intent.client_order_id
        return params

    async def place_order(self, intent: OrderIntent) -> Order:
        body = await self.rest.request("POST", "/fapi/v1/order", self.order_params(intent), signed=True,
                                       weight=0, orders=1, priority=_order_priority(intent))
        return self._order(body, "POST /fapi/v1/order")

    async def place_algo_order(self, intent: OrderIntent) -> AlgoAck:
        body = await self.rest.request("POST", "/fapi/v1/algoOrder", self.algo_params(intent), signed=True,
                                       weight=0, orders=1, priority=_order_priority(intent))
        return self._algo(body, "POST /fapi/v1/algoOrder")

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        body = await self.rest.request("DELETE", "/fapi/v1/order",
                                       {"symbol": symbol, "origClientOrderId": client_order_id}, signed=True,
                                       priority=Priority.EXIT)
        return self._order(body, "DELETE /fapi/v1/order")

    async def cancel_algo_order(self, client_algo_id: str) -> AlgoAck:
        body = _body(await self.rest.request("DELETE", "/fapi/v1/algoOrder", {"clientAlgoId": client_algo_id},
                                             signed=True, priority=Priority.EXIT), "DELETE /fapi/v1/algoOrder")
        # The answer is {"algoId", "clientAlgoId", "code": "200", "msg": "success"}: no symbol, no status.
        try:
            algo_id = int(body["algoId"])
        except (KeyError, TypeError, ValueError):
            raise UnreadableResponseError(f"DELETE /fapi/v1/algoOrder: unexpected answer {dict(body)!r}") from None
        return AlgoAck(algo_id, str(body.get("clientAlgoId") or client_algo_id),
                       self._algo_symbols.get(client_algo_id, ""), AlgoStatus.CANCELED)

    async def query_order(self, symbol: str, client_order_id: str) -> Order:
        body = await self.rest.request("GET", "/fapi/v1/order",
                                       {"symbol": symbol, "origClientOrderId": client_order_id}, signed=True,
                                       priority=Priority.EXIT)
        return self._order(body, "GET /fapi/v1/order")

    async def query_algo_order(self, client_algo_id: str) -> AlgoAck:
        body = await self.rest.request("GET", "/fapi/v1/algoOrder", {"clientAlgoId": client_algo_id}, signed=True,
                                       priority=Priority.EXIT)
        return self._algo(body, "GET /fapi/v1/algoOrder")

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        body = await self.rest.request("GET", "/fapi/v1/openOrders", {"symbol": symbol}, signed=True,
                                       weight=1 if symbol else 40)
        return [self._order(entry, "GET /fapi/v1/openOrders") for entry in self._list(body, "openOrders")]

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoAck]:
        body = await self.rest.request("GET", "/fapi/v1/openAlgoOrders", {"symbol": symbol}, signed=True,
                                       weight=1 if symbol else 40)
        if isinstance(body, Mapping) and isinstance(body.get("orders"), list):
            body = body["orders"]
        return [self._algo(entry, "GET /fapi/v1/openAlgoOrders") for entry in self._list(body, "openAlgoOrders")]

    async def positions(self, symbol: str | None = None) -> list[Position]:
        body = await self.rest.request("GET", "/fapi/v3/positionRisk", {"symbol": symbol}, signed=True, weight=5)
        return [self._parse(parse_rest_position, entry, "positionRisk")
                for entry in self._list(body, "positionRisk")]

    async def account(self) -> AccountInfo:
        body = await self.rest.request("GET", "/fapi/v3/account", signed=True, weight=5)
        return self._parse(parse_account, body, "account")

    async def user_trades(self, symbol: str, *, from_id: int | None = None, start_time: int | None = None,
                          end_time: int | None = None, limit: int = TRADES_PAGE) -> list[Fill]:
        params: dict[str, ParamValue] = {"symbol": symbol, "fromId": from_id, "startTime": start_time,
                                         "endTime": end_time, "limit": limit}
        body = await self.rest.request("GET", "/fapi/v1/userTrades", params, signed=True, weight=5)
        return [self._parse(parse_rest_trade, entry, "userTrades") for entry in self._list(body, "userTrades")]

    # ------------------------------------------------------------------------------------------ start-up
    async def server_time(self) -> int:
        return await self.rest.server_time()

    async def exchange_info(self) -> ExchangeInfo:
        """exchangeInfo, parsed; the client's rate limiter is set to its ``rateLimits`` from now on."""
        body = await self.rest.request("GET", "/fapi/v1/exchangeInfo", weight=1)
        info = self._parse(parse_exchange_info_document, body, "exchangeInfo")
        self.rest.rate_limiter.configure(info.rate_limits)
        return info

    async def position_mode(self) -> PositionMode:
        body = _body(await self.rest.request("GET", "/fapi/v1/positionSide/dual", signed=True, weight=30),
                     "GET /fapi/v1/positionSide/dual")
        dual = body.get("dualSidePosition")
        if not isinstance(dual, bool):
            raise UnreadableResponseError(f"positionSide/dual: dualSidePosition is {dual!r}")
        return PositionMode.HEDGE if dual else PositionMode.ONEWAY

    async def set_position_mode(self, mode: PositionMode) -> None:
        """Hedge (``dualSidePosition=true``) or one-way; Binance refuses (-4068 / -4067) while positions or open
        orders exist; "No need to change" (-4059) is success."""
        try:
            await self.rest.request("POST", "/fapi/v1/positionSide/dual",
                                    {"dualSidePosition": mode is PositionMode.HEDGE}, signed=True)
        except BinanceError as exc:
            if exc.code != NO_NEED_TO_CHANGE_POSITION_MODE:
                raise

    async def set_leverage(self, symbol: str, leverage: int) -> int:
        """Set ``symbol``'s leverage; returns what the exchange set."""
        body = _body(await self.rest.request("POST", "/fapi/v1/leverage", {"symbol": symbol, "leverage": leverage},
                                             signed=True), "POST /fapi/v1/leverage")
        try:
            return int(body["leverage"])
        except (KeyError, TypeError, ValueError):
            raise UnreadableResponseError(f"leverage: no leverage in {dict(body)!r}") from None

    async def set_margin_type(self, symbol: str, margin_type: MarginType) -> None:
        """ISOLATED or CROSSED; "No need to change margin type" (-4046) is success."""
        try:
            await self.rest.request("POST", "/fapi/v1/marginType", {"symbol": symbol, "marginType": margin_type},
                                    signed=True)
        except BinanceError as exc:
            if exc.code != NO_NEED_TO_CHANGE_MARGIN_TYPE:
                raise

    async def create_listen_key(self) -> str:
        body = _body(await self.rest.request("POST", "/fapi/v1/listenKey", api_key=True), "POST /fapi/v1/listenKey")
        key = body.get("listenKey")
        if not isinstance(key, str) or not key:
            raise UnreadableResponseError("listenKey: no key in the answer")
        return key

    async def keepalive_listen_key(self, listen_key: str) -> None:
        """Extend the key by 60 minutes; a dead key raises BinanceError -1125."""
        await self.rest.request("PUT", "/fapi/v1/listenKey", {"listenKey": listen_key}, api_key=True)

    async def delete_listen_key(self, listen_key: str) -> None:
        await self.rest.request("DELETE", "/fapi/v1/listenKey", {"listenKey": listen_key}, api_key=True)

    async def klines(self, symbol: str, *, start_time: int | None = None, end_time: int | None = None,
                     limit: int = KLINES_MAX, interval: str = "1m") -> list[Candle]:
        """Candles from ``start_time``; without ``end_time`` the last row of a page that is not full is the one still
        forming (``closed=False``), as Binance answers."""
        limit = max(1, min(limit, KLINES_MAX))
        params: dict[str, ParamValue] = {"symbol": symbol, "interval": interval, "startTime": start_time,
                                         "endTime": end_time, "limit": limit}
        rows = self._list(await self.rest.request("GET", "/fapi/v1/klines", params, weight=_klines_weight(limit)),
                          "klines")
        forming_last = end_time is None and len(rows) < limit
        candles = []
        for index, row in enumerate(rows):
            closed = not (forming_last and index == len(rows) - 1)
            candles.append(self._parse(functools.partial(parse_rest_kline, symbol=symbol, interval=interval,
                                                         closed=closed), row, "klines"))
        return candles

    async def premium_index(self, symbol: str) -> MarkPrice:
        body = await self.rest.request("GET", "/fapi/v1/premiumIndex", {"symbol": symbol}, weight=1)
        return self._parse(parse_premium_index, body, "premiumIndex")

    async def key_permissions(self) -> KeyPermissions | None:
        """The key's permissions from ``GET /sapi/v1/account/apiRestrictions`` on ``sapi_base_url``; None when there
        is no such host (testnet, the simulator) or it does not know the endpoint (404)."""
        if not self.sapi_base_url:
            return None
        sapi = RestClient(self.sapi_base_url, api_key=self.rest.api_key, signer=self.rest.signer,
                          recv_window_ms=self.rest.recv_window_ms, time_sync=self.rest.time_sync,
                          rate_limiter=self.rest.rate_limiter, timeout_sec=self.rest.timeout_sec)
        try:
            async with sapi:
                body = _body(await sapi.request("GET", "/sapi/v1/account/apiRestrictions", signed=True),
                             "apiRestrictions")
        except BinanceError as exc:
            if exc.http_status == 404:
                return None
            raise
        return KeyPermissions(enable_futures=bool(body.get("enableFutures")),
                              enable_withdrawals=bool(body.get("enableWithdrawals")),
                              enable_reading=bool(body.get("enableReading")),
                              ip_restrict=bool(body.get("ipRestrict")))

    # ------------------------------------------------------------------------------------------- parsing
    @staticmethod
    def _list(body: Any, what: str) -> list[Any]:
        if not isinstance(body, list):
            raise UnreadableResponseError(f"{what}: expected a list, got {type(body).__name__}")
        return body

    @staticmethod
    def _parse[T](parser: Callable[[Any], T], body: Any, what: str) -> T:
        try:
            result: T = parser(body)
        except PayloadError as exc:
            raise UnreadableResponseError(f"{what}: {exc}") from None
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            raise UnreadableResponseError(f"{what}: {type(exc).__name__}: {exc}") from None
        return result

    def _order(self, body: Any, what: str) -> Order:
        order: Order = self._parse(parse_rest_order, body, what)
        return order

    def _algo(self, body: Any, what: str) -> AlgoAck:
        ack: AlgoAck = self._parse(parse_algo_ack, body, what)
        if ack.symbol:
            self._algo_symbols[ack.client_algo_id] = ack.symbol
        return ack
