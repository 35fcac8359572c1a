"""REST bodies the engine's ``rest_shapes`` does not build: market data, balance, the ACK view of a new order.

Field names, order and types follow ../shared/binance/payloads (rest_*.json) and the official SDK's models
(numbers as strings except where Binance sends JSON numbers: kline times and trade counts).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from simulator.engine import SimExchange
from simulator.events import money_text
from simulator.records import AccountState
from simulator.server.replay import FundingRecord
from utils.domain import Candle, Order, OrderStatus


def _text(value: Decimal) -> str:
    return format(value, "f")


def eight_decimals(value: Decimal) -> str:
    """Mark prices and funding rates as Binance sends them: 8 decimals, padded ("11794.15000000")."""
    return money_text(value, pad_zero=True)


def exchange_info(document: Mapping[str, Any], server_time: int, rate_limits: list[dict[str, Any]]) -> dict[str, Any]:
    body = copy.deepcopy(dict(document))
    body["serverTime"] = server_time
    body["rateLimits"] = rate_limits
    return body


def kline_row(candle: Candle) -> list[Any]:
    """One GET /fapi/v1/klines entry (12 fields, the last one Binance's unused "ignore")."""
    return [candle.open_time, _text(candle.open), _text(candle.high), _text(candle.low), _text(candle.close),
            _text(candle.volume), candle.close_time, _text(candle.quote_volume), candle.trades,
            _text(candle.taker_buy_volume), _text(candle.taker_buy_quote_volume), "0"]


def premium_index(exchange: SimExchange, symbol: str, time: int) -> dict[str, Any]:
    mark = eight_decimals(exchange.mark_price(symbol))
    return {
        "symbol": symbol, "markPrice": mark, "indexPrice": mark, "estimatedSettlePrice": mark,
        "lastFundingRate": eight_decimals(exchange.funding_rate(symbol)), "interestRate": "0.00010000",
        "nextFundingTime": exchange.next_funding_time(symbol), "time": time,
    }


def funding_rate(record: FundingRecord) -> dict[str, Any]:
    return {"symbol": record.symbol, "fundingRate": eight_decimals(record.funding_rate),
            "fundingTime": record.funding_time, "markPrice": eight_decimals(record.mark_price)}


def funding_info(symbol: str, interval_hours: int) -> dict[str, Any]:
    return {"symbol": symbol, "adjustedFundingRateCap": "0.02000000", "adjustedFundingRateFloor": "-0.02000000",
            "fundingIntervalHours": interval_hours, "disclaimer": False}


def balance_v2(account: AccountState, alias: str) -> list[dict[str, Any]]:
    """GET /fapi/v2/balance (single-asset mode: one USDT entry; amounts padded to 8 decimals, as account v3)."""
    max_withdraw = min(account.available_balance, account.wallet_balance)
    return [{
        "accountAlias": alias, "asset": "USDT", "balance": eight_decimals(account.wallet_balance),
        "crossWalletBalance": eight_decimals(account.cross_wallet_balance),
        "crossUnPnl": eight_decimals(account.cross_unrealized_pnl),
        "availableBalance": eight_decimals(account.available_balance),
        "maxWithdrawAmount": eight_decimals(max_withdraw if max_withdraw > 0 else Decimal(0)),
        "marginAvailable": True, "updateTime": account.update_time,
    }]


def accepted_order(order: Order) -> Order:
    """What newOrderRespType=ACK reports: the order as accepted, before any execution."""
    return Order(order.symbol, order.order_id, order.client_order_id, order.side, order.order_type, OrderStatus.NEW,
                 order.quantity, order.price, order.time_in_force, order.position_side, order.reduce_only,
                 order.close_position, order.stop_price, update_time=order.create_time,
                 working_type=order.working_type, create_time=order.create_time)


