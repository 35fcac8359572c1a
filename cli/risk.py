"""The ``risk`` command: each scope's stored trading state, and ``risk clear`` to set a stopped scope ACTIVE again."""

from __future__ import annotations

import argparse
import sys

from cli.tables import Column, number_column, print_rows, time_column
from config import AppConfig
from database.access import open_existing
from database.journal import persist_risk_record
from executor.risk import GLOBAL_SCOPE, RiskEngine, StateRecord, parse_scope, strategy_scope
from runtime.assembly import load_risk_state, risk_limits
from utils.clock import SystemClock
from utils.domain import TradingState

RISK_COLUMNS = (
    Column("scope", "scope"),
    Column("state", "state"),
    time_column("since_ms", "since (UTC)"),
    Column("guard", "guard"),
    number_column("consecutive_losses", "losses in a row"),
    Column("reason", "reason", wrap=True),
)


def _scopes(config: AppConfig) -> list[str]:
    return [GLOBAL_SCOPE] + [strategy_scope(name) for name in sorted(config.symbols_config.strategy_names())]


def _row(scope: str, record: StateRecord | None) -> dict[str, object]:
    if record is None:
        return {"scope": scope, "state": TradingState.ACTIVE, "since_ms": None, "guard": "",
                "consecutive_losses": 0, "reason": "(nothing stored: never stopped)"}
    return {"scope": scope, "state": record.state, "since_ms": record.since_ms, "guard": record.guard,
            "consecutive_losses": record.consecutive_losses, "reason": record.reason}


def command_risk(config: AppConfig, arguments: argparse.Namespace) -> int:
    if arguments.risk_command == "clear":
        return _clear(config, arguments.scope)
    scopes = _scopes(config)
    with open_existing(config.settings.db_url) as repository:
        states = load_risk_state(repository, scopes)
    print_rows([_row(scope, states.get(scope)) for scope in scopes], RISK_COLUMNS, title="trading states",
               as_json=arguments.json, ordered=None)
    return 0


def _clear(config: AppConfig, scope: str) -> int:
    scopes = _scopes(config)
    try:
        parse_scope(scope)
    except ValueError as error:
        print(f"cannot clear {scope!r}: {error}", file=sys.stderr)
        return 2
    if scope not in scopes:
        print(f"cannot clear {scope!r}: no such strategy in {config.settings.symbols_file}; the scopes are "
              f"{', '.join(scopes)}", file=sys.stderr)
        return 2
    clock = SystemClock()
    with open_existing(config.settings.db_url, clock) as repository:
        defaults, overrides = risk_limits(config)
        engine = RiskEngine(defaults, overrides, state=load_risk_state(repository, scopes))
        before = engine.states().get(scope)
        if before is None or before.state is TradingState.ACTIVE:
            print(f"{scope} is ACTIVE: nothing to clear.")
            return 0
        record = engine.clear(scope, clock.now_ms())
        for changed in engine.drain_state_changes():
            persist_risk_record(repository, changed)
    print(f"{scope}: now {record.state.value} (was {before.state.value}: {before.reason}). A running bot takes "
          "this up within a few seconds.")
    return 0
