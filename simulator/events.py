"""User-data-stream events shaped exactly like Binance's (ORDER_TRADE_UPDATE, ACCOUNT_UPDATE, ALGO_UPDATE, ...).

Field names and value spellings follow the payloads in ../shared/binance/payloads (uds_*.json); numbers are
decimal strings without exponent, as Binance sends them. Enum members are written as ``member._value_`` (a plain
attribute; ``.value`` goes through a descriptor and costs several times more on this hot path).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from simulator.records import AlgoOrder
from utils.domain import Order
from utils.precision import to_wire

COMMISSION_ASSET = "USDT"
SELF_TRADE_PREVENTION = "EXPIRE_MAKER"  # Binance's default selfTradePreventionMode
MARGIN_TYPE_WIRE = {"CROSSED": "cross", "ISOLATED": "isolated"}


def num(value: Decimal | int) -> str:
    """Decimal -> Binance number string. ``str()`` when it has no exponent (5x faster), else ``to_wire``."""
    if not value:
        return "0"
    text = str(value)
    return to_wire(value) if "E" in text else text


def order_trade_update(
    order: Order,
    *,
    time: int,
    execution_type: str,
    orig_type: str,
    last_quantity: Decimal | int = 0,
    last_price: Decimal | int = 0,
    commission: Decimal | int = 0,
    trade_id: int = 0,
    maker: bool = False,
    realized_pnl: Decimal | int = 0,
    bid_notional: Decimal | int = 0,
    ask_notional: Decimal | int = 0,
) -> dict[str, Any]:
    """ORDER_TRADE_UPDATE for ``order`` as it stands after the change (``x`` = ``execution_type``)."""
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": time,
        "T": time,
        "o": {
            "s": order.symbol,
            "c": order.client_order_id,
            "S": order.side._value_,
            "o": order.order_type._value_,
            "f": order.time_in_force._value_,
            "q": num(order.quantity),
            "p": num(order.price),
            "ap": num(order.avg_price),
            "sp": num(order.stop_price),
            "x": execution_type,
            "X": order.status._value_,
            "i": order.order_id,
            "l": num(last_quantity),
            "z": num(order.executed_quantity),
            "L": num(last_price),
            "N": COMMISSION_ASSET,
            "n": num(commission),
            "T": time,
            "t": trade_id,
            "b": num(bid_notional),
            "a": num(ask_notional),
            "m": maker,
            "R": order.reduce_only,
            "wt": order.working_type._value_,
            "ot": orig_type,
            "ps": order.position_side._value_,
            "cp": order.close_position,
            "pP": False,
            "si": 0,
            "ss": 0,
            "rp": num(realized_pnl),
            "V": SELF_TRADE_PREVENTION,
            "pm": "NONE",
            "gtd": 0,
            "er": "0",
        },
    }


def balance_entry(wallet_balance: Decimal, cross_wallet_balance: Decimal, balance_change: Decimal) -> dict[str, str]:
    return {"a": COMMISSION_ASSET, "wb": num(wallet_balance), "cw": num(cross_wallet_balance),
            "bc": num(balance_change)}


def position_entry(
    *,
    symbol: str,
    amount: Decimal,
    entry_price: Decimal,
    break_even_price: Decimal,
    accumulated_realized: Decimal,
    unrealized_pnl: Decimal,
    margin_type: str,
    isolated_wallet: Decimal,
    position_side: str,
) -> dict[str, str]:
    return {
        "s": symbol,
        "pa": num(amount),
        "ep": num(entry_price),
        "bep": num(break_even_price),
        "cr": num(accumulated_realized),
        "up": num(unrealized_pnl),
        "mt": MARGIN_TYPE_WIRE[margin_type],
        "iw": num(isolated_wallet),
        "ps": position_side,
    }


def account_update(
    *, time: int, reason: str, balances: Sequence[dict[str, str]], positions: Sequence[dict[str, str]]
) -> dict[str, Any]:
    """ACCOUNT_UPDATE with reason ``m`` (ORDER, FUNDING_FEE, DEPOSIT, ...)."""
    return {"e": "ACCOUNT_UPDATE", "E": time, "T": time,
            "a": {"m": reason, "B": list(balances), "P": list(positions)}}


def algo_update(algo: AlgoOrder, *, time: int) -> dict[str, Any]:
    """ALGO_UPDATE for a conditional order as it stands after the change."""
    body: dict[str, Any] = {
        "caid": algo.client_algo_id,
        "aid": algo.algo_id,
        "at": "CONDITIONAL",
        "o": algo.order_type._value_,
        "s": algo.symbol,
        "S": algo.side._value_,
        "ps": algo.position_side._value_,
        "f": algo.time_in_force._value_,
        "q": num(algo.quantity),
        "X": algo.status._value_,
        "ai": str(algo.actual_order_id) if algo.actual_order_id else "",
        "ap": num(algo.avg_price),
        "aq": num(algo.executed_quantity),
        "act": algo.actual_order_type,
        "tp": num(algo.trigger_price),
        "p": num(algo.price),
        "V": SELF_TRADE_PREVENTION,
        "wt": algo.working_type._value_,
        "pm": "NONE",
        "cp": algo.close_position,
        "pP": False,
        "R": algo.reduce_only,
        "tt": algo.trigger_time,
        "gtd": 0,
    }
    if algo.reject_reason:
        body["rm"] = algo.reject_reason
    return {"e": "ALGO_UPDATE", "T": time, "E": time, "o": body}


def account_config_update_leverage(*, time: int, symbol: str, leverage: int) -> dict[str, Any]:
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": time, "T": time, "ac": {"s": symbol, "l": leverage}}
