"""User-data-stream events shaped exactly like Binance's (ORDER_TRADE_UPDATE, ACCOUNT_UPDATE, ALGO_UPDATE, ...).

Field names and value spellings follow the payloads in ../shared/binance/payloads (uds_*.json); numbers are
decimal strings without exponent, as Binance sends them. Amounts Binance computes (average and entry prices,
unrealized PnL, wallets, margins) are sent at the precision it uses, not at Decimal's 28 digits: ``price_text``
(8 decimals, trailing zeros dropped, like "70.92841") and ``money_text`` (8 decimals, padded, like
"0.76427700"); see docs/simulator.md, "Numbers on the wire". Enum members are written as ``member._value_`` (a
plain attribute; ``.value`` goes through a descriptor and costs several times more on this hot path).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from simulator.records import AlgoOrder
from utils.domain import Order
from utils.precision import to_wire

COMMISSION_ASSET = "USDT"
SELF_TRADE_PREVENTION = "EXPIRE_MAKER"  # Binance's default selfTradePreventionMode
MARGIN_TYPE_WIRE = {"CROSSED": "cross", "ISOLATED": "isolated"}
ALGO_NOT_TRIGGERED_ORDER_TYPE = "0"  # ALGO_UPDATE "act" before the trigger placed an order (Binance's example)
ALGO_NOT_TRIGGERED_AMOUNT = "0.00000"  # ... and "ap" / "aq" then
_EIGHT_PLACES = Decimal("0.00000001")


def num(value: Decimal | int) -> str:
    """Decimal -> Binance number string. ``str()`` when it has no exponent (5x faster), else ``to_wire``."""
    if not value:
        return "0"
    text = str(value)
    return to_wire(value) if "E" in text else text


def price_text(value: Decimal) -> str:
    """A price Binance derives (average, entry, break-even): rounded half-even to 8 decimals, trailing zeros
    dropped ("30053.1", "0.385077"); "0" for zero."""
    if not value:
        return "0"
    text = str(value.quantize(_EIGHT_PLACES, ROUND_HALF_EVEN))
    if "E" in text:
        text = f"{value.quantize(_EIGHT_PLACES, ROUND_HALF_EVEN):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def money_text(value: Decimal, *, pad_zero: bool = False) -> str:
    """An amount Binance derives (unrealized PnL, wallet, margin, notional, liquidation price): rounded half-even
    to 8 decimals and padded ("0.76427700"); zero is "0" (or "0.00000000" with ``pad_zero``, as account v3)."""
    if not value:
        return "0.00000000" if pad_zero else "0"
    text = str(value.quantize(_EIGHT_PLACES, ROUND_HALF_EVEN))
    return f"{value.quantize(_EIGHT_PLACES, ROUND_HALF_EVEN):f}" if "E" in text else text


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
            "ap": price_text(order.avg_price),
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
    return {"a": COMMISSION_ASSET, "wb": money_text(wallet_balance), "cw": money_text(cross_wallet_balance),
            "bc": money_text(balance_change)}


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
        "ep": price_text(entry_price),
        "bep": price_text(break_even_price),
        "cr": num(accumulated_realized),
        "up": money_text(unrealized_pnl),
        "mt": MARGIN_TYPE_WIRE[margin_type],
        "iw": money_text(isolated_wallet),
        "ps": position_side,
    }


def account_update(
    *, time: int, reason: str, balances: Sequence[dict[str, str]], positions: Sequence[dict[str, str]]
) -> dict[str, Any]:
    """ACCOUNT_UPDATE with reason ``m`` (ORDER, FUNDING_FEE, DEPOSIT, ...)."""
    return {"e": "ACCOUNT_UPDATE", "E": time, "T": time,
            "a": {"m": reason, "B": list(balances), "P": list(positions)}}


def algo_update(algo: AlgoOrder, *, time: int) -> dict[str, Any]:
    """ALGO_UPDATE for a conditional order as it stands after the change (the fields of uds_algo_update.json:
    before the trigger placed an order ``ai`` is "", ``act`` "0" and ``ap`` / ``aq`` "0.00000"; ``rm`` is the
    reject reason, "" when none)."""
    triggered = bool(algo.actual_order_id)
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
        "ai": str(algo.actual_order_id) if triggered else "",
        "ap": price_text(algo.avg_price) if triggered else ALGO_NOT_TRIGGERED_AMOUNT,
        "aq": num(algo.executed_quantity) if triggered else ALGO_NOT_TRIGGERED_AMOUNT,
        "act": algo.actual_order_type if triggered else ALGO_NOT_TRIGGERED_ORDER_TYPE,
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
        "rm": algo.reject_reason,
    }
    return {"e": "ALGO_UPDATE", "T": time, "E": time, "o": body}


def account_config_update_leverage(*, time: int, symbol: str, leverage: int) -> dict[str, Any]:
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": time, "T": time, "ac": {"s": symbol, "l": leverage}}
