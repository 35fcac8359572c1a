"""Entry point: ``uv run main.py`` runs the bot; ``status``, ``risk``, ``config`` and ``migrate`` help an operator.

    uv run main.py                      run in the configured MODE (sim by default: offline, synthetic data)
    uv run main.py run --data F.csv     sim mode on recorded klines (one data.binance.vision CSV per symbol)
    uv run main.py status               print status/heartbeat.json as a table, saying when it is stale
    uv run main.py risk                 show trading states (ACTIVE / REDUCING / HALTED) and their reasons
    uv run main.py risk clear [SCOPE]   clear a halt ("global" by default, or "strategy:<name>")
    uv run main.py config               print the validated settings (secrets masked)
    uv run main.py migrate              apply database migrations and exit
    uv run main.py simserver --data F   run the Binance-wire simulator server (see docs/simulator.md)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path

from config.settings import AppConfig, ConfigError, load_config
from utils.log import setup_logging

log = logging.getLogger("main")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="Binance USD-M futures trading bot")
    parser.add_argument("--env-file", default=".env", help="settings file (default .env; the environment wins)")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the bot (the default command)")
    run.add_argument("--data", nargs="+", type=Path, help="sim mode: kline CSV files to replay, one per symbol "
                                                          "(overrides SIM_DATA)")
    run.add_argument("--days", type=float, default=2.0, help="sim mode without data files: days of synthetic "
                                                             "candles to generate (default 2)")
    run.add_argument("--speed", type=float, help="sim mode: 0 = as fast as possible, N = N x real time "
                                                 "(overrides SIM_SPEED)")
    sub.add_parser("status", help="show status/heartbeat.json")
    risk = sub.add_parser("risk", help="show or clear trading states")
    risk_sub = risk.add_subparsers(dest="risk_command")
    clear = risk_sub.add_parser("clear", help="clear a HALTED/REDUCING state")
    clear.add_argument("scope", nargs="?", default="global", help='"global" (default) or "strategy:<name>"')
    sub.add_parser("config", help="print the validated settings, secrets masked")
    sub.add_parser("migrate", help="apply database migrations")
    from simulator.server.cli import add_arguments as add_simserver_arguments

    add_simserver_arguments(sub)
    return parser


def _load(args: argparse.Namespace) -> AppConfig:
    env_file = Path(args.env_file)
    return load_config(env_file=env_file if env_file.exists() else None)


def command_run(config: AppConfig, args: argparse.Namespace) -> int:
    settings = config.settings
    if settings.mode.value != "sim":
        print(f"MODE={settings.mode.value}: live trading needs the Binance REST/WebSocket client, which is not "
              "built yet. Use MODE=sim (the default) for now.", file=sys.stderr)
        return 2
    if settings.market_data.value != "replay":
        print("MARKET_DATA=live in sim mode needs the Binance WebSocket client, which is not built yet. "
              "Use MARKET_DATA=replay (the default).", file=sys.stderr)
        return 2
    from marketdata.replay import csv_source
    from runtime.trader import SimTrader

    speed = settings.sim_speed if args.speed is None else args.speed
    symbols = [s.symbol for s in config.symbols]
    source = None
    data = args.data or list(settings.sim_data)
    if data:
        missing = [str(p) for p in data if not Path(p).exists()]
        if missing:
            print(f"data file(s) not found: {', '.join(missing)}", file=sys.stderr)
            return 2
    try:
        if data:
            source = csv_source(data, speed=speed, symbols=symbols)
        trader = SimTrader(config, source=source, days=args.days, speed=speed)
    except ValueError as exc:
        print(f"cannot start the sim run: {exc}", file=sys.stderr)
        return 2
    print(f"Sim mode. Data: {trader.source.description}", flush=True)
    if trader.source.synthetic:
        print("NOTE: the prices in this run are SYNTHETIC (made up by the project), not market data.", flush=True)
    if trader.symbols_without_data:
        print(f"NOTE: no data for {', '.join(trader.symbols_without_data)}: not traded in this run.", flush=True)
    for line in trader.blocked_scopes():
        print(f"NOTE: {line}", flush=True)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, trader.stop)
        summary = await trader.run()
        print(summary.render(), flush=True)

    try:
        asyncio.run(run())
    except ValueError as exc:  # e.g. a data file that is not kline CSV at all
        print(f"the sim run stopped: {exc}", file=sys.stderr)
        return 2
    finally:
        trader.close()
    return 0


def command_status(config: AppConfig) -> int:
    from runtime.heartbeat import HEARTBEAT_FILE, read_heartbeat, render_status

    path = config.settings.status_dir / HEARTBEAT_FILE
    print(render_status(read_heartbeat(path), time.time_ns() // 1_000_000, path))
    return 0


def command_risk(config: AppConfig, args: argparse.Namespace) -> int:
    from database.repository import Repository
    from executor.risk import GLOBAL_SCOPE, RiskEngine, parse_scope, strategy_scope
    from executor.service import persist_risk_record
    from runtime.trader import load_risk_state, risk_limits
    from utils.clock import SystemClock

    clock = SystemClock()
    scopes = [GLOBAL_SCOPE] + [strategy_scope(n) for n in sorted(config.symbols_config.strategy_names())]
    with Repository.open(config.settings.db_url, clock) as repository:
        defaults, overrides = risk_limits(config)
        engine = RiskEngine(defaults, overrides, state=load_risk_state(repository, scopes))
        if args.risk_command == "clear":
            try:
                parse_scope(args.scope)
                record = engine.clear(args.scope, clock.now_ms())
            except (ValueError, KeyError) as exc:
                print(f"cannot clear {args.scope!r}: {exc}", file=sys.stderr)
                return 2
            for changed in engine.drain_state_changes():
                persist_risk_record(repository, changed)
            print(f"{args.scope}: now {record.state.value}")
            return 0
        states = engine.states()
        print(f"{'scope':<32} {'state':<9} reason")
        for scope in scopes:
            record = states.get(scope)
            state = record.state.value if record else "ACTIVE"
            reason = record.reason if record else ""
            print(f"{scope:<32} {state:<9} {reason}")
    return 0


def command_config(config: AppConfig) -> int:
    print(json.dumps(config.masked_summary(), indent=2, default=str))
    return 0


def command_migrate(config: AppConfig) -> int:
    from database.migrate import migrate

    migrate(config.settings.db_url)
    print(f"database at {config.settings.masked()['db_url']} is at the newest schema")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "simserver":  # needs none of the bot's settings
        from simulator.server.cli import run as run_simserver

        return run_simserver(args)
    try:
        config = _load(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    settings = config.settings
    setup_logging(settings.log_level.value, settings.log_dir)
    command = args.command or "run"
    if command == "run":
        if not hasattr(args, "data"):
            args = _parser().parse_args([*(argv or []), "run"] if argv is not None else [*sys.argv[1:], "run"])
        return command_run(config, args)
    if command == "status":
        return command_status(config)
    if command == "risk":
        return command_risk(config, args)
    if command == "config":
        return command_config(config)
    if command == "migrate":
        return command_migrate(config)
    raise AssertionError(command)


if __name__ == "__main__":
    sys.exit(main())
