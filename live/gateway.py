"""``BinanceGateway``: the :class:`~executor.gateway.ExchangeGateway` over Binance's REST API, plus what the live
start-up needs (server time, exchangeInfo, position mode, leverage, margin type, listenKey, klines, premiumIndex).

Responses are parsed once, here (``utils/binance_parse.py`` and ``live/parse.py``); errors are the classified
ones of ``utils/errors.py``. Every call names its rate-limit weight and priority: cancels, exits (reduce-only or
closePosition orders) and lookups go before new entries when the budget is short.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from executor.commands import AlgoAck
from executor.gateway import TRADES_PAGE, AccountInfo
from utils.domain import Candle, Fill, MarginType, MarkPrice, Order, OrderIntent, Position, PositionMode
from utils.filters import SymbolFilters
from utils.ratelimit import RateLimit
from utils.rest import RestClient


@dataclass(frozen=True, slots=True)
class ExchangeInfo:
    """A parsed ``GET /fapi/v1/exchangeInfo``: every symbol's filters, the rate limits and the server time."""

    server_time: int
    rate_limits: tuple[RateLimit, ...]
    symbols: Mapping[str, SymbolFilters]

    def trading(self, symbol: str) -> bool:
        """True when ``symbol`` is listed and its status is TRADING (otherwise: no new entries)."""
        filters = self.symbols.get(symbol)
        return filters is not None and filters.status == "TRADING"


@dataclass(frozen=True, slots=True)
class KeyPermissions:
    """``GET /sapi/v1/account/apiRestrictions`` (Binance's spot API host): what the key may do."""

    enable_futures: bool
    enable_withdrawals: bool
    enable_reading: bool
    ip_restrict: bool
    raw: Mapping[str, Any]


class BinanceGateway:
    """Binance USD-M REST operations for the core and the live start-up, over one :class:`RestClient`."""

    def __init__(self, rest: RestClient, *, sapi_base_url: str | None = None) -> None:
        self.rest = rest
        self.sapi_base_url = sapi_base_url

    # ------------------------------------------------------------------------------------ ExchangeGateway
    async def place_order(self, intent: OrderIntent) -> Order:
        raise NotImplementedError

    async def place_algo_order(self, intent: OrderIntent) -> AlgoAck:
        raise NotImplementedError

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        raise NotImplementedError

    async def cancel_algo_order(self, client_algo_id: str) -> AlgoAck:
        raise NotImplementedError

    async def query_order(self, symbol: str, client_order_id: str) -> Order:
        raise NotImplementedError

    async def query_algo_order(self, client_algo_id: str) -> AlgoAck:
        raise NotImplementedError

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        raise NotImplementedError

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoAck]:
        raise NotImplementedError

    async def positions(self, symbol: str | None = None) -> list[Position]:
        raise NotImplementedError

    async def account(self) -> AccountInfo:
        raise NotImplementedError

    async def user_trades(self, symbol: str, *, from_id: int | None = None, start_time: int | None = None,
                          end_time: int | None = None, limit: int = TRADES_PAGE) -> list[Fill]:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ start-up
    async def server_time(self) -> int:
        raise NotImplementedError

    async def exchange_info(self) -> ExchangeInfo:
        raise NotImplementedError

    async def position_mode(self) -> PositionMode:
        raise NotImplementedError

    async def set_position_mode(self, mode: PositionMode) -> None:
        raise NotImplementedError

    async def set_leverage(self, symbol: str, leverage: int) -> int:
        raise NotImplementedError

    async def set_margin_type(self, symbol: str, margin_type: MarginType) -> None:
        raise NotImplementedError

    async def create_listen_key(self) -> str:
        raise NotImplementedError

    async def keepalive_listen_key(self, listen_key: str) -> None:
        raise NotImplementedError

    async def delete_listen_key(self, listen_key: str) -> None:
        raise NotImplementedError

    async def klines(self, symbol: str, *, start_time: int | None = None, end_time: int | None = None,
                     limit: int = 1500, interval: str = "1m") -> list[Candle]:
        raise NotImplementedError

    async def premium_index(self, symbol: str) -> MarkPrice:
        raise NotImplementedError

    async def key_permissions(self) -> KeyPermissions | None:
        raise NotImplementedError
