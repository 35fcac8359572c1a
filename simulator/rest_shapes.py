"""REST response bodies shaped like Binance's (orders, algo orders, trades, positionRisk v3, account v3).

The wire-compatible server turns engine objects into these; field names and order follow the payloads in
../shared/binance/payloads (rest_*.json), and numbers the precision rules of ``simulator.events`` (``price_text``,
``money_text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from simulator.account import LeverageBracket
from simulator.events import SELF_TRADE_PREVENTION, money_text, num, price_text
from simulator.records import AccountState, AlgoOrder, PositionRisk
from utils.domain import ZERO, Fill, Order, OrderType


def order_to_rest(
    order: Order, orig_type: OrderType | None = None, *, new_order_response: bool = False
) -> dict[str, Any]:
    """GET /fapi/v1/order (and openOrders, allOrders) body; ``new_order_response`` gives POST /order's (and
    DELETE /order's, ``cancel_order_to_rest``): ``cumQty`` and no ``time``."""
    body: dict[str, Any] = {
        "avgPrice": price_text(order.avg_price),
        "clientOrderId": order.client_order_id,
        "cumQuote": num(order.cum_quote),
        "executedQty": num(order.executed_quantity),
        "orderId": order.order_id,
        "origQty": num(order.quantity),
        "origType": (orig_type or order.order_type).value,
        "price": num(order.price),
        "reduceOnly": order.reduce_only,
        "side": order.side.value,
        "positionSide": order.position_side.value,
        "status": order.status.value,
        "stopPrice": num(order.stop_price),
        "closePosition": order.close_position,
        "symbol": order.symbol,
        "time": order.create_time,
        "timeInForce": order.time_in_force.value,
        "type": order.order_type.value,
        "updateTime": order.update_time,
        "workingType": order.working_type.value,
        "priceProtect": False,
        "priceMatch": "NONE",
        "selfTradePreventionMode": SELF_TRADE_PREVENTION,
        "goodTillDate": 0,
    }
    if new_order_response:
        del body["time"]
        body["cumQty"] = num(order.executed_quantity)
    return body


def cancel_order_to_rest(order: Order, orig_type: OrderType | None = None) -> dict[str, Any]:
    """DELETE /fapi/v1/order body (rest_cancel_order.json): the POST /order shape, with ``cumQty``, no ``time``."""
    return order_to_rest(order, orig_type, new_order_response=True)


def algo_order_to_rest(algo: AlgoOrder) -> dict[str, Any]:
    """POST/GET/DELETE /fapi/v1/algoOrder body (rest_new_algo_order_response.json)."""
    body: dict[str, Any] = {
        "algoId": algo.algo_id,
        "clientAlgoId": algo.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": algo.order_type.value,
        "symbol": algo.symbol,
        "side": algo.side.value,
        "positionSide": algo.position_side.value,
        "timeInForce": algo.time_in_force.value,
        "quantity": num(algo.quantity),
        "algoStatus": algo.status.value,
        "triggerPrice": num(algo.trigger_price),
        "price": num(algo.price),
        "icebergQuantity": None,
        "selfTradePreventionMode": SELF_TRADE_PREVENTION,
        "workingType": algo.working_type.value,
        "priceMatch": "NONE",
        "closePosition": algo.close_position,
        "priceProtect": False,
        "reduceOnly": algo.reduce_only,
        "activatePrice": "",
        "callbackRate": "",
        "createTime": algo.create_time,
        "updateTime": algo.update_time,
        "triggerTime": algo.trigger_time,
        "goodTillDate": 0,
    }
    if algo.actual_order_id:
        body["actualOrderId"] = str(algo.actual_order_id)
        body["actualPrice"] = price_text(algo.avg_price)
        body["actualQty"] = num(algo.executed_quantity)
    return body


def fill_to_rest(fill: Fill) -> dict[str, Any]:
    """One GET /fapi/v1/userTrades entry."""
    return {
        "buyer": fill.side.value == "BUY",
        "commission": num(fill.commission),
        "commissionAsset": fill.commission_asset,
        "id": fill.trade_id,
        "maker": fill.maker,
        "orderId": fill.order_id,
        "price": num(fill.price),
        "qty": num(fill.quantity),
        "quoteQty": num(fill.quote_quantity),
        "realizedPnl": num(fill.realized_pnl),
        "side": fill.side.value,
        "positionSide": fill.position_side.value,
        "symbol": fill.symbol,
        "time": fill.time,
    }


def position_risk_v3(risks: Sequence[PositionRisk]) -> list[dict[str, Any]]:
    """GET /fapi/v3/positionRisk body."""
    return [
        {
            "symbol": risk.symbol,
            "positionSide": risk.position_side.value,
            "positionAmt": num(risk.amount),
            "entryPrice": price_text(risk.entry_price),
            "breakEvenPrice": price_text(risk.break_even_price),
            "markPrice": num(risk.mark_price),
            "unRealizedProfit": money_text(risk.unrealized_pnl),
            "liquidationPrice": money_text(risk.liquidation_price),
            "isolatedMargin": money_text(risk.isolated_margin),
            "notional": money_text(risk.notional),
            "marginAsset": "USDT",
            "isolatedWallet": money_text(risk.isolated_wallet),
            "initialMargin": money_text(risk.initial_margin),
            "maintMargin": money_text(risk.maintenance_margin),
            "positionInitialMargin": money_text(risk.position_initial_margin),
            "openOrderInitialMargin": money_text(risk.open_order_initial_margin),
            "adl": 0,
            "bidNotional": money_text(risk.bid_notional),
            "askNotional": money_text(risk.ask_notional),
            "updateTime": risk.update_time,
        }
        for risk in risks
    ]


def account_v3(account: AccountState, risks: Sequence[PositionRisk]) -> dict[str, Any]:
    """GET /fapi/v3/account body (single-asset mode: one USDT asset)."""
    max_withdraw = min(account.available_balance, account.wallet_balance)
    max_withdraw = max_withdraw if max_withdraw > 0 else ZERO
    def padded(value: Decimal) -> str:
        return money_text(value, pad_zero=True)

    totals = {
        "totalInitialMargin": padded(account.total_initial_margin),
        "totalMaintMargin": padded(account.total_maintenance_margin),
        "totalWalletBalance": padded(account.wallet_balance),
        "totalUnrealizedProfit": padded(account.unrealized_pnl),
        "totalMarginBalance": padded(account.equity),
        "totalPositionInitialMargin": padded(account.total_position_initial_margin),
        "totalOpenOrderInitialMargin": padded(account.total_open_order_initial_margin),
        "totalCrossWalletBalance": padded(account.cross_wallet_balance),
        "totalCrossUnPnl": padded(account.cross_unrealized_pnl),
        "availableBalance": padded(account.available_balance),
        "maxWithdrawAmount": padded(max_withdraw),
    }
    asset = {
        "asset": "USDT",
        "walletBalance": totals["totalWalletBalance"],
        "unrealizedProfit": totals["totalUnrealizedProfit"],
        "marginBalance": totals["totalMarginBalance"],
        "maintMargin": totals["totalMaintMargin"],
        "initialMargin": totals["totalInitialMargin"],
        "positionInitialMargin": totals["totalPositionInitialMargin"],
        "openOrderInitialMargin": totals["totalOpenOrderInitialMargin"],
        "crossWalletBalance": totals["totalCrossWalletBalance"],
        "crossUnPnl": totals["totalCrossUnPnl"],
        "availableBalance": totals["availableBalance"],
        "maxWithdrawAmount": totals["maxWithdrawAmount"],
        "updateTime": account.update_time,
    }
    positions = [
        {
            "symbol": risk.symbol,
            "positionSide": risk.position_side.value,
            "positionAmt": num(risk.amount),
            "unrealizedProfit": money_text(risk.unrealized_pnl, pad_zero=True),
            "isolatedMargin": money_text(risk.isolated_margin, pad_zero=True),
            "notional": money_text(risk.notional),
            "isolatedWallet": money_text(risk.isolated_wallet),
            "initialMargin": money_text(risk.initial_margin),
            "maintMargin": money_text(risk.maintenance_margin),
            "updateTime": risk.update_time,
        }
        for risk in risks
        if risk.amount
    ]
    return {**totals, "assets": [asset], "positions": positions}


def leverage_brackets(symbol: str, brackets: Sequence[LeverageBracket]) -> dict[str, Any]:
    """One symbol's entry of GET /fapi/v1/leverageBracket (numbers as Binance sends them there: JSON numbers)."""
    return {"symbol": symbol, "brackets": [
        {"bracket": tier.bracket, "initialLeverage": tier.initial_leverage, "notionalCap": _number(tier.notional_cap),
         "notionalFloor": _number(tier.notional_floor), "maintMarginRatio": _number(tier.maint_margin_ratio),
         "cum": _number(tier.cum)} for tier in brackets]}


def _number(value: Decimal) -> int | float:
    """A JSON number for a bracket field: an int when whole, else the float of its exact decimal string."""
    return int(value) if value == value.to_integral_value() else float(str(value))


def leverage_response(symbol: str, leverage: int, max_notional: Decimal) -> dict[str, Any]:
    return {"leverage": leverage, "maxNotionalValue": num(max_notional), "symbol": symbol}


def margin_type_response() -> dict[str, Any]:
    return {"code": 200, "msg": "success"}


def cancel_all_response() -> dict[str, Any]:
    return {"code": 200, "msg": "The operation of cancel all open order is done."}

