"""The simulator's shipped exchange documents (exchangeInfo, leverage brackets for BTCUSDT, ETHUSDT, LTCUSDT) and
loaders for them.

Where the values come from is written in docs/simulator.md ("Symbols", "Leverage brackets").
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from simulator.account import LeverageBracket, parse_leverage_brackets
from utils.filters import SymbolFilters, parse_exchange_info
from utils.precision import to_decimal

EXCHANGE_INFO_PATH = Path(__file__).with_name("exchange_info.json")
LEVERAGE_BRACKETS_PATH = Path(__file__).with_name("leverage_brackets.json")

# Used when an exchangeInfo entry has no liquidationFee (Binance's usual clearance fee is 1.0% to 1.5%).
DEFAULT_LIQUIDATION_FEE_RATE = Decimal("0.0125")


def load_exchange_info(path: str | Path | None = None) -> dict[str, Any]:
    """The exchangeInfo document at ``path`` (default: the one shipped with the simulator), as parsed JSON."""
    with open(path or EXCHANGE_INFO_PATH, encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def load_symbol_filters(path: str | Path | None = None) -> dict[str, SymbolFilters]:
    """Every symbol's filters from the document at ``path`` (default: the shipped one), by symbol name."""
    return parse_exchange_info(load_exchange_info(path))


def liquidation_fee_rates(document: Mapping[str, Any]) -> dict[str, Decimal]:
    """Each symbol's ``liquidationFee`` (the clearance fee rate charged on a liquidation), by symbol name."""
    return {
        entry["symbol"]: to_decimal(entry.get("liquidationFee", DEFAULT_LIQUIDATION_FEE_RATE))
        for entry in document.get("symbols", [])
    }


def load_leverage_brackets(path: str | Path | None = None) -> dict[str, tuple[LeverageBracket, ...]]:
    """Every symbol's tiers from a GET /fapi/v1/leverageBracket document at ``path`` (default: the shipped one)."""
    if path is None:
        return dict(_shipped_leverage_brackets())
    with open(path, encoding="utf-8") as handle:
        return parse_leverage_brackets(json.load(handle))


@functools.cache
def _shipped_leverage_brackets() -> dict[str, tuple[LeverageBracket, ...]]:
    # Read once: the shipped file is data that belongs to the code, like exchange_info.json.
    with open(LEVERAGE_BRACKETS_PATH, encoding="utf-8") as handle:
        return parse_leverage_brackets(json.load(handle))
