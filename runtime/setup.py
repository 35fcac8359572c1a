"""Building the trading core's parts from the symbols configuration, with no database: shared by every shell."""

from __future__ import annotations

from collections.abc import Iterable

from config.symbols import SymbolConfig, SymbolsConfig
from executor.planner import ExecutionSettings
from executor.risk import RiskLimits
from simulator.engine import SimExchange
from utils.domain import OrderType, PositionMode


def execution_settings_for(config: SymbolsConfig) -> list[ExecutionSettings]:
    result = []
    for symbol in config.symbols:
        for strategy in symbol.strategies:
            result.append(ExecutionSettings(
                strategy=strategy.name, symbol=symbol.symbol, sizing_mode=strategy.sizing.mode,
                sizing_value=strategy.sizing.value, leverage=symbol.leverage,
                entry_order_type=OrderType(strategy.entry_order_type.value),
                limit_offset_bps=strategy.limit_offset_bps, stop_loss_pct=strategy.stop_loss_pct,
                take_profit_pct=strategy.take_profit_pct,
            ))
    return result


def configure_exchange(exchange: SimExchange, symbols: Iterable[SymbolConfig], position_mode: PositionMode) -> None:
    """Set the simulated account's position mode, and each symbol's leverage and margin type, as configured."""
    hedge = position_mode is PositionMode.HEDGE
    if exchange.dual_side_position != hedge:
        exchange.set_position_mode(hedge)
    for symbol in symbols:
        exchange.set_leverage(symbol.symbol, symbol.leverage)
        if exchange.margin_type(symbol.symbol) is not symbol.margin_type:
            exchange.set_margin_type(symbol.symbol, symbol.margin_type)


def risk_limits_for(config: SymbolsConfig) -> tuple[RiskLimits, dict[str, RiskLimits]]:
    defaults = RiskLimits(**config.risk.defaults.model_dump())
    overrides = {name: RiskLimits(**config.risk.limits_for(name).model_dump()) for name in config.risk.overrides}
    return defaults, overrides
