"""The argument parser of main.py: every subcommand with what it does, an example, and checked option values."""

from __future__ import annotations

import argparse
import re
import time
from datetime import UTC, datetime
from pathlib import Path

PROGRAM = "uv run main.py"
_DURATION = re.compile(r"(\d+)([mhd])")
_DURATION_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


# ------------------------------------------------------------------------------------------- option values


def positive_days(text: str) -> float:
    """``--days``: a number of days above 0."""
    days = _number(text)
    if not days > 0:
        raise argparse.ArgumentTypeError(f"must be a number of days above 0, e.g. 2 or 0.5 (got {text!r})")
    return days


def replay_speed(text: str) -> float:
    """``--speed``: 0 (as fast as possible) or a positive multiple of real time."""
    speed = _number(text)
    if speed < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (as fast as possible) or N > 0 (N x real time) (got {text!r})")
    return speed


def row_limit(text: str) -> int:
    """``--limit``: how many of the newest rows to show; 0 shows all."""
    if not re.fullmatch(r"\d+", text.strip()):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, 0 meaning all (got {text!r})")
    return int(text)


def since_time(text: str, now_ms: int | None = None) -> int:
    """``--since``: a UTC date or time (``2023-04-20``, ``2023-04-20T12:30``) or an age (``90m``, ``12h``, ``7d``).

    Returns epoch milliseconds. An age counts back from the wall clock (``now_ms``, default now).
    """
    value = text.strip()
    duration = _DURATION.fullmatch(value)
    if duration:
        now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        return now - int(duration.group(1)) * _DURATION_MS[duration.group(2)]
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T").removesuffix("Z"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a UTC date or time such as 2023-04-20 or 2023-04-20T12:30, or an age such as 90m, 12h, 7d "
            f"(got {text!r})"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _number(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (got {text!r})") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text!r})")
    return number


# ------------------------------------------------------------------------------------------------- parser


def _examples(*lines: str) -> str:
    return "example" + ("s" if len(lines) > 1 else "") + ":\n" + "\n".join(f"  {PROGRAM} {line}" for line in lines)


def _command(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, description: str,
             *examples: str, parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=summary, description=description, epilog=_examples(*examples),
                          formatter_class=argparse.RawDescriptionHelpFormatter, parents=parents or [])


def _listing_options(default_limit: int) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--strategy", help="only rows of this strategy (e.g. ema_crossover)")
    options.add_argument("--symbol", type=str.upper, help="only rows of this symbol (e.g. BTCUSDT)")
    options.add_argument("--since", type=since_time, metavar="WHEN",
                         help="only rows at or after WHEN: a UTC date or time (2023-04-20, 2023-04-20T12:30) or an "
                              "age (90m, 12h, 7d)")
    options.add_argument("--limit", type=row_limit, default=default_limit, metavar="N",
                         help=f"show the newest N rows (default {default_limit}; 0 = all)")
    options.add_argument("--json", action="store_true",
                         help="print a JSON array instead of a table (times as epoch milliseconds, numbers as "
                              "exact strings)")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Binance USD-M futures trading bot. Without a command it runs (see `run --help`).",
        epilog=_examples("", "run --data BTCUSDT-1m-2023-04-20.csv", "status", "orders --strategy ema_crossover"),
    )
    parser.add_argument("--env-file", type=Path, metavar="FILE",
                        help="read settings from FILE instead of .env (it must exist; the environment still wins)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = _command(
        sub, "run", "run the bot (the default command)",
        "Run the bot in the configured MODE. In sim mode (the default) it replays recorded klines (--data or "
        "SIM_DATA)\nor, without data files, synthetic candles, through the configured strategies on the simulated "
        "exchange,\nand ends with a summary. Ctrl-C stops after the current minute and still prints the summary.",
        "run", "run --data BTCUSDT-1m-2023-04-20.csv ETHUSDT-1m-2023-04-20.csv", "run --days 7 --speed 60",
    )
    run.add_argument("--data", nargs="+", type=Path, metavar="FILE",
                     help="sim mode: kline CSV files to replay, one per symbol (overrides SIM_DATA)")
    run.add_argument("--days", type=positive_days, default=2.0,
                     help="sim mode without data files: days of synthetic candles to generate (default 2)")
    run.add_argument("--speed", type=replay_speed,
                     help="sim mode: 0 = as fast as possible, N = N x real time (overrides SIM_SPEED)")
    run.add_argument("--fresh-account", action="store_true",
                     help="sim mode: start a new simulated account instead of continuing the one this database "
                          "holds (its ids start above every id already stored)")

    _command(
        sub, "status", "is the bot running? (the heartbeat, as a table)",
        "Show status/heartbeat.json: whether the bot is running, its feed, database, trading states, disabled\n"
        "strategies, open orders, positions and account, with times as UTC dates. The exit code says whether the\n"
        "bot is running, for a monitoring check: 0 FRESH (running), 1 STOPPED (shut down cleanly),\n"
        "2 STALE (died or stuck), 3 no heartbeat at all.",
        "status", "status || echo 'the bot is not running'",
    )

    risk = _command(
        sub, "risk", "show trading states (ACTIVE / REDUCING / HALTED), or clear one",
        "Show each scope's trading state (global, and strategy:<name> for every configured strategy) with its\n"
        "reason. Halts are stored in the database and survive restarts; `risk clear` lifts one.",
        "risk", "risk clear strategy:ema_crossover", "risk --json",
    )
    risk.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    risk_sub = risk.add_subparsers(dest="risk_command", metavar="ACTION")
    clear = _command(
        risk_sub, "clear", "set a HALTED or REDUCING scope back to ACTIVE",
        "Set a scope back to ACTIVE and reset its consecutive-loss count (after you have understood why it\n"
        "stopped: `risk` shows the reason). A scope that is ACTIVE is left as it is.",
        "risk clear", "risk clear strategy:rsi_reversion",
    )
    clear.add_argument("scope", nargs="?", default="global", help='"global" (the default) or "strategy:<name>"')

    trades = _command(
        sub, "trades", "list closed trades: round trips with their PnL (newest 50)",
        "List the round trips the strategies made, oldest first: when each position was opened and closed, the\n"
        "strategy, symbol, side (LONG / SHORT), quantity, average entry and exit price, realized PnL, fees and net\n"
        "PnL (realized minus fees). Open positions' trips are listed with --open.",
        "trades", "trades --strategy ema_crossover --since 7d", "trades --json --limit 0 | jq 'map(.net_pnl)'",
        parents=[_listing_options(50)],
    )
    trades.add_argument("--open", action="store_true", help="include the trips of positions still open")
    _command(
        sub, "orders", "list stored orders (newest 50)",
        "List the orders the bot stored, oldest first: when it decided them, the strategy, what for (entry, exit,\n"
        "stop_loss, take_profit), side, type, quantity, price, the exchange's status (or the bot's progress in\n"
        "sending it), what was filled and at what average price, and a rejection's code and message.",
        "orders", "orders --strategy ema_crossover --symbol BTCUSDT --since 2023-04-21 --limit 0",
        "orders --json | jq '.[] | select(.status == \"FILLED\")'",
        parents=[_listing_options(50)],
    )
    positions = _command(
        sub, "positions", "list stored positions (open ones, unless --all)",
        "List the positions the bot stored from the exchange's account updates: amount (> 0 long, < 0 short),\n"
        "entry price, unrealized PnL at the last mark price, leverage, margin type, and the strategy that owns it\n"
        "(the strategy whose order last moved it).",
        "positions", "positions --all --json",
        parents=[_listing_options(0)],
    )
    positions.add_argument("--all", action="store_true", help="include flat positions (amount 0)")
    _command(
        sub, "signals", "list stored strategy signals (newest 50)",
        "List the signals the strategies emitted, oldest first: time, strategy, symbol, side (LONG, SHORT, FLAT),\n"
        "what came of each (ORDERED, NO_ACTION, REFUSED_BY_RISK, ...) and why, and the strategy's reason: so\n"
        "'why did the bot not trade?' is answered here.",
        "signals", "signals --strategy rsi_reversion --since 12h", "signals --json --limit 0",
        parents=[_listing_options(50)],
    )
    _command(
        sub, "config", "print the validated settings, secrets masked",
        "Read and check every setting (.env, the environment, symbols.toml, API keys) and print them as JSON,\n"
        "with the API key, secret and database password masked. A bad setting is reported like at start-up.",
        "config", "config | jq .settings",
    )
    _command(
        sub, "migrate", "apply database migrations and exit",
        "Create the database (if it does not exist) and bring its tables to the newest schema; every run does\n"
        "this too. Useful before pointing a read-only command at a new PostgreSQL database.",
        "migrate", "--env-file production.env migrate",
    )
    _command(
        sub, "reconcile", "compare the database with the exchange, repair what the fills explain",
        "Run the reconciliation the bot runs at start: read open orders, conditional orders, positions, the\n"
        "account and every fill since the last one stored; store what the database lacks; bring orders to their\n"
        "real state. Prints what it found and what it changed. A difference nothing explains halts trading\n"
        "(exit code 3; `risk` shows why). In sim mode it checks the simulated account saved in the database.\n"
        "The bot must be stopped (it reconciles by itself while it runs).",
        "reconcile", "--env-file production.env reconcile",
    )
    from cli.download import add_arguments as add_download_arguments
    from simulator.server.cli import add_arguments as add_simserver_arguments

    add_download_arguments(sub)
    add_simserver_arguments(sub)
    return parser


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; without a command it is ``run`` (so ``main.py --env-file x`` runs the bot)."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        arguments = parser.parse_args([*argv, "run"])
    return arguments
