"""REST responses whose result types belong to the executor (algo acknowledgements, the account, exchangeInfo),
parsed once at the edge; everything else is in ``utils/binance_parse.py``. Bad shapes raise ``PayloadError``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from executor.commands import AlgoAck
from executor.gateway import AccountInfo
from utils.binance_parse import PayloadError, _dec, _enum, _int, _str
from utils.domain import ZERO, AlgoStatus
from utils.filters import FilterParseError, SymbolFilters
from utils.ratelimit import DEFAULT_LIMITS, RateLimit, RateLimitConfigError, parse_rate_limits

log = logging.getLogger("live.parse")


def parse_algo_ack(data: Any) -> AlgoAck:
    """``POST/GET /fapi/v1/algoOrder`` and each ``/openAlgoOrders`` entry."""
    if not isinstance(data, Mapping):
        raise PayloadError("algo order: not an object")
    try:
        actual = data.get("actualOrderId")
        return AlgoAck(
            algo_id=_int(data, "algoId"), client_algo_id=_str(data, "clientAlgoId"), symbol=_str(data, "symbol"),
            status=_enum(AlgoStatus, data, "algoStatus"),
            triggered_order_id=int(actual) if actual not in (None, "", "0", 0) and str(actual).isdigit() else None,
        )
    except PayloadError as exc:
        raise PayloadError(f"algo order: {exc}") from None


def parse_account(data: Any) -> AccountInfo:
    """``GET /fapi/v3/account`` (or v2): the totals (the margin balance is the equity)."""
    if not isinstance(data, Mapping):
        raise PayloadError("account: not an object")
    try:
        return AccountInfo(
            wallet_balance=_dec(data, "totalWalletBalance"), available_balance=_dec(data, "availableBalance"),
            equity=_dec(data, "totalMarginBalance", _dec(data, "totalWalletBalance")),
            unrealized_pnl=_dec(data, "totalUnrealizedProfit", ZERO),
        )
    except PayloadError as exc:
        raise PayloadError(f"account: {exc}") from None


@dataclass(frozen=True, slots=True)
class ExchangeInfo:
    """A parsed ``GET /fapi/v1/exchangeInfo``: every symbol's filters, the rate limits and the server time.

    ``problems`` names the symbols whose entry could not be parsed (they are left out of ``symbols``); the start-up
    refuses a configured symbol that is missing or has a problem.
    """

    server_time: int
    rate_limits: tuple[RateLimit, ...]
    symbols: Mapping[str, SymbolFilters]
    problems: Mapping[str, str] = field(default_factory=dict)

    def trading(self, symbol: str) -> bool:
        """True when ``symbol`` is listed and its status is TRADING (otherwise: no new entries)."""
        filters = self.symbols.get(symbol)
        return filters is not None and filters.status == "TRADING"


def parse_exchange_info_document(document: Any) -> ExchangeInfo:
    """The whole exchangeInfo document; a symbol entry that does not parse is listed in ``problems``."""
    if not isinstance(document, Mapping) or not isinstance(document.get("symbols"), list):
        raise PayloadError("exchangeInfo: no 'symbols' list")
    symbols: dict[str, SymbolFilters] = {}
    problems: dict[str, str] = {}
    for entry in document["symbols"]:
        name = str(entry.get("symbol", "?")) if isinstance(entry, Mapping) else "?"
        try:
            symbols[name] = SymbolFilters.from_exchange_info(entry)
        except (FilterParseError, AttributeError, TypeError) as exc:
            problems[name] = str(exc)
    try:
        rate_limits = parse_rate_limits(document.get("rateLimits") or []) or DEFAULT_LIMITS
    except RateLimitConfigError as exc:
        raise PayloadError(str(exc)) from None
    server_time = document.get("serverTime", 0)
    return ExchangeInfo(int(server_time) if isinstance(server_time, int) else 0, rate_limits, symbols, problems)
