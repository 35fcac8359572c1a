"""Entry point: ``uv run main.py`` runs the bot; the other commands show or change what it stored (``--help``).

    uv run main.py                      run in the configured MODE (sim by default: offline, synthetic data)
    uv run main.py run --data F.csv     sim mode on recorded klines (one data.binance.vision CSV per symbol)
    uv run main.py status               is the bot running? (exit code 0 FRESH, 1 STOPPED, 2 STALE, 3 none)
    uv run main.py trades               closed round trips and their PnL; also orders, positions, signals
                                        (--strategy --symbol --since --limit --json)
    uv run main.py risk [clear SCOPE]   trading states (ACTIVE / REDUCING / HALTED) and their reasons; clear a halt
    uv run main.py config               print the validated settings (secrets masked)
    uv run main.py migrate              apply database migrations and exit
    uv run main.py reconcile            compare the database with the exchange (exit 3: unexplained, halted)
    uv run main.py simserver --data F   run the Binance-wire simulator server (see docs/simulator.md)
    uv run main.py download --symbols BTCUSDT --from 2024-01-01 --to 2024-02-01
                                        fetch 1m klines and funding rates into CSV files (see docs/data.md)

Exit codes: 0 done, 1 nothing to show (no database yet), 2 a problem named on stderr (bad setting, argument,
file, folder or database); ``status`` has its own (above).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.arguments import parse_arguments
from cli.preflight import writable_folder_problem
from config import AppConfig, ConfigError, load_config
from config.settings import DEFAULT_ENV_FILE
from database.errors import DatabaseMissing, DatabaseUnavailable
from utils.log import LOG_FILE_NAME, setup_logging

#: Commands that write (so they log to LOG_DIR too; so does `risk clear`); the others only read: console only.
_WRITING_COMMANDS = frozenset({"run", "migrate", "reconcile"})


def _env_file_problem(env_file: Path | None) -> str | None:
    """An ``--env-file`` that was named must be a file (the default ``.env`` may be absent)."""
    if env_file is None or env_file.is_file():
        return None
    what = "is a folder" if env_file.is_dir() else "does not exist"
    return f"--env-file {env_file} {what}: name an existing settings file (e.g. cp .env.example {env_file})."


def _load(env_file: Path | None) -> AppConfig:
    chosen = env_file if env_file is not None else DEFAULT_ENV_FILE
    return load_config(env_file=chosen if chosen.is_file() else None)


def _dispatch(config: AppConfig, arguments: argparse.Namespace) -> int:
    # Each command imports only what it needs, so `status` (a monitoring check) does not load the trading stack.
    command = arguments.command
    if command == "run":
        from cli.run import command_run

        return command_run(config, arguments)
    if command == "status":
        from cli.status import command_status

        return command_status(config)
    if command == "risk":
        from cli.risk import command_risk

        return command_risk(config, arguments)
    if command in ("trades", "orders", "positions", "signals"):
        from cli.records import list_command

        return list_command(config.settings.db_url, arguments)
    if command == "config":
        from cli.maintenance import command_config

        return command_config(config)
    if command == "reconcile":
        from cli.reconcile import command_reconcile
        return command_reconcile(config)
    if command == "migrate":
        from cli.maintenance import command_migrate

        return command_migrate(config)
    raise AssertionError(command)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    if arguments.command == "simserver":  # needs none of the bot's settings
        from simulator.server.cli import run as run_simserver

        return run_simserver(arguments)
    problem = _env_file_problem(arguments.env_file)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if arguments.command == "download":  # needs the settings only: no symbols.toml, API keys or database
        from cli.download import command_download

        return command_download(arguments.env_file if arguments.env_file is not None else DEFAULT_ENV_FILE,
                                arguments)
    try:
        config = _load(arguments.env_file)
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return 2
    settings = config.settings
    writes = arguments.command in _WRITING_COMMANDS or (
        arguments.command == "risk" and arguments.risk_command == "clear")
    problem = writable_folder_problem(settings.log_dir, "LOG_DIR") if writes else None
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        setup_logging(settings.log_level.value, settings.log_dir if writes else None,
                      console_format=settings.log_format.value)
    except OSError as error:
        print(f"cannot write the log file {settings.log_dir / LOG_FILE_NAME} (LOG_DIR={settings.log_dir}): "
              f"{type(error).__name__}: {error.strerror or error}; make the file writable, or set LOG_DIR to "
              "another folder.", file=sys.stderr)
        return 2
    try:
        return _dispatch(config, arguments)
    except DatabaseMissing as error:
        print(str(error), file=sys.stderr)
        return 1
    except DatabaseUnavailable as error:
        print(str(error), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
