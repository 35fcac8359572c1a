"""REST response bodies shaped like Binance's (orders, algo orders, trades, positionRisk v3, account v3).

The wire-compatible server turns engine objects into these; field names and order follow the payloads in
../shared/binance/payloads (rest_*.json).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from simulator.events import SELF_TRADE_PREVENTION, num
from simulator.records import AccountState, AlgoOrder, PositionRisk
from utils.domain import ZERO, Fill, Order, OrderType


def order_to_rest(
    order: Order, orig_type: OrderType | None = None, *, new_order_response: bool = False
) -> dict[str, Any]:
    """GET /fapi/v1/order (and openOrders, DELETE /order) body; ``new_order_response`` gives POST /order's."""
    body: dict[str, Any] = {
        "avgPrice": num(order.avg_price),
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
        body["actualPrice"] = num(algo.avg_price)
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
            "entryPrice": num(risk.entry_price),
            "breakEvenPrice": num(risk.break_even_price),
            "markPrice": num(risk.mark_price),
            "unRealizedProfit": num(risk.unrealized_pnl),
            "liquidationPrice": num(risk.liquidation_price),
            "isolatedMargin": num(risk.isolated_margin),
            "notional": num(risk.notional),
            "marginAsset": "USDT",
            "isolatedWallet": num(risk.isolated_wallet),
            "initialMargin": num(risk.initial_margin),
            "maintMargin": num(risk.maintenance_margin),
            "positionInitialMargin": num(risk.position_initial_margin),
            "openOrderInitialMargin": num(risk.open_order_initial_margin),
            "adl": 0,
            "bidNotional": num(risk.bid_notional),
            "askNotional": num(risk.ask_notional),
            "updateTime": risk.update_time,
        }
        for risk in risks
    ]


def account_v3(account: AccountState, risks: Sequence[PositionRisk]) -> dict[str, Any]:
    """GET /fapi/v3/account body (single-asset mode: one USDT asset)."""
    max_withdraw = min(account.available_balance, account.wallet_balance)
    max_withdraw = max_withdraw if max_withdraw > 0 else ZERO
    totals = {
        "totalInitialMargin": num(account.total_initial_margin),
        "totalMaintMargin": num(account.total_maintenance_margin),
        "totalWalletBalance": num(account.wallet_balance),
        "totalUnrealizedProfit": num(account.unrealized_pnl),
        "totalMarginBalance": num(account.equity),
        "totalPositionInitialMargin": num(account.total_position_initial_margin),
        "totalOpenOrderInitialMargin": num(account.total_open_order_initial_margin),
        "totalCrossWalletBalance": num(account.cross_wallet_balance),
        "totalCrossUnPnl": num(account.cross_unrealized_pnl),
        "availableBalance": num(account.available_balance),
        "maxWithdrawAmount": num(max_withdraw),
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
            "unrealizedProfit": num(risk.unrealized_pnl),
            "isolatedMargin": num(risk.isolated_margin),
            "notional": num(risk.notional),
            "isolatedWallet": num(risk.isolated_wallet),
            "initialMargin": num(risk.initial_margin),
            "maintMargin": num(risk.maintenance_margin),
            "updateTime": risk.update_time,
        }
        for risk in risks
        if risk.amount
    ]
    return {**totals, "assets": [asset], "positions": positions}


def leverage_response(symbol: str, leverage: int, max_notional: Decimal) -> dict[str, Any]:
    return {"leverage": leverage, "maxNotionalValue": num(max_notional), "symbol": symbol}


def margin_type_response() -> dict[str, Any]:
    return {"code": 200, "msg": "success"}


def cancel_all_response() -> dict[str, Any]:
    return {"code": 200, "msg": "The operation of cancel all open order is done."}

