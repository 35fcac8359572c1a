"""What every shell builds the same way from the settings and the database: the risk engine and the execution core.

Sim mode, the live shell and ``main.py reconcile`` all trade (or check) with the same core, seeded from the same
database, under the same limits; building it in one place keeps them from drifting apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from config import AppConfig
from database.journal import load_seed
from database.repository import Repository
from executor.core import ExecutionCore, ExecutionPolicy
from executor.planner import ExecutionSettings
from executor.risk import GLOBAL_SCOPE, RiskEngine, RiskLimits, StateRecord, strategy_scope
from runtime.heartbeat import Heartbeat
from runtime.setup import execution_settings_for, risk_limits_for
from strategies.registry import load_strategy
from strategies.runner import StrategyRunner
from utils.domain import ZERO
from utils.filters import SymbolFilters

log = logging.getLogger("runtime.assembly")


def execution_settings(config: AppConfig) -> list[ExecutionSettings]:
    return execution_settings_for(config.symbols_config)


def execution_policy(config: AppConfig) -> ExecutionPolicy:
    """The order path's timing rules and reconciliation choices, from the settings."""
    settings = config.settings
    return ExecutionPolicy(unknown_outcome_window_ms=settings.unknown_outcome_window_sec * 1000,
                           cancel_foreign_orders=settings.foreign_orders.value == "cancel")


def risk_limits(config: AppConfig) -> tuple[RiskLimits, dict[str, RiskLimits]]:
    return risk_limits_for(config.symbols_config)


def load_risk_state(repository: Repository, scopes: list[str]) -> dict[str, StateRecord]:
    """Risk states stored by an earlier run (a halt survives a restart)."""
    restored: dict[str, StateRecord] = {}
    for scope in scopes:
        stored = repository.get_risk_state(scope)
        if stored is not None and isinstance(stored.details, dict):
            try:
                restored[scope] = StateRecord.from_dict(stored.details)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("stored risk state unreadable; starting it HALTED", extra={"scope": scope,
                                                                                     "error": str(exc)})
                restored[scope] = StateRecord.from_dict({"scope": scope, "state": "HALTED",
                                                         "reason": f"stored state unreadable: {exc}",
                                                         "guard": "operator", "since_ms": 0})
    return restored


def strategy_runner(config: AppConfig) -> StrategyRunner:
    """Every configured strategy on each of its symbols."""
    runner = StrategyRunner()
    for symbol in config.symbols:
        for strategy in symbol.strategies:
            runner.add(load_strategy(strategy.name, symbol.symbol, strategy.params))
    return runner


def risk_engine(config: AppConfig, repository: Repository) -> tuple[RiskEngine, list[str]]:
    """The risk engine with the configured limits and the states stored by earlier runs, and its scopes."""
    defaults, overrides = risk_limits(config)
    scopes = [GLOBAL_SCOPE] + [strategy_scope(name) for name in sorted(config.symbols_config.strategy_names())]
    return RiskEngine(defaults, overrides, state=load_risk_state(repository, scopes)), scopes


def operator_changes(repository: Repository, risk: RiskEngine, scopes: list[str]) -> list[StateRecord]:
    """Stored trading states that differ from the risk engine's: changed by an operator (``main.py risk clear``).

    Only meaningful while the core is idle: its own changes are stored by then.
    """
    every = sorted(set(risk.states()) | set(scopes))
    return [record for scope, record in load_risk_state(repository, every).items() if record != risk.state(scope)]


def add_core_sections(hb: Heartbeat, core: ExecutionCore, risk: RiskEngine, runner: StrategyRunner) -> None:
    """The heartbeat sections every shell shares: trading states, strategies, open orders, positions, account,
    the executor's counters."""

    def trading() -> dict[str, Any]:
        states = risk.states()
        return {scope: {"state": record.state.value, "reason": record.reason}
                for scope, record in sorted(states.items())} or {GLOBAL_SCOPE: {"state": "ACTIVE", "reason": ""}}

    hb.section("trading", trading)
    hb.section("strategies", runner.status)
    hb.section("open_orders", lambda: [
        {"client_order_id": cid, "symbol": t.intent.symbol, "side": t.intent.side.value,
         "type": t.intent.order_type.value, "quantity": str(t.intent.quantity),
         "status": t.status.value if t.status else t.intent_state.value}
        for cid, t in core.open_orders_by_id().items()])
    hb.section("positions", lambda: [
        {"symbol": s, "position_side": side.value, "amount": str(h.amount), "owner": h.owner or "",
         "entry_price": str(core.entry_prices.get((s, side), ZERO))}
        for (s, side), h in core.holdings.items() if h.amount])
    hb.section("account", lambda: {"wallet_balance": str(core.wallet_balance), "equity": str(core.equity())})
    hb.section("executor", core.stats.as_dict)


@dataclass
class CoreParts:
    core: ExecutionCore
    risk: RiskEngine
    risk_scopes: list[str]


def build_core(config: AppConfig, repository: Repository, filters: dict[str, SymbolFilters], *,
               policy: ExecutionPolicy | None = None) -> CoreParts:
    """The execution core for ``config``'s symbols and strategies, its books and risk state seeded from the
    database (a halt, the day's counters and loss streaks survive restarts)."""
    risk, scopes = risk_engine(config, repository)
    core = ExecutionCore(
        risk=risk, filters=filters, settings=execution_settings(config),
        position_mode=config.settings.position_mode, seed=load_seed(repository),
        policy=policy or execution_policy(config),
        leverage={symbol.symbol: symbol.leverage for symbol in config.symbols},
    )
    return CoreParts(core, risk, scopes)
