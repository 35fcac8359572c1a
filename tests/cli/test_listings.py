"""The read-only commands after a real sim run: orders, positions, signals, risk and status, as tables and as JSON.

Every listing is checked against the database itself (the same rows, the filters keep exactly the matching ones),
and none of them creates a database where there is none.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from database.journal import persist_risk_record
from database.repository import Repository
from executor.risk import RiskEngine, RiskLimits
from runtime.heartbeat import Heartbeat
from tests.main_process import run_main, user_environment


@pytest.fixture(scope="module")
def after_a_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = user_environment(tmp_path_factory.mktemp("after-a-run"))
    result = run_main(["run", "--days", "0.5"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    return env


def listing(env: dict[str, str], *args: str) -> list[dict]:
    result = run_main([*args, "--json"], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_orders_are_every_stored_order_and_the_filters_keep_exactly_the_matching_ones(after_a_run) -> None:
    with Repository.open(after_a_run["DB_URL"], apply_migrations=False) as repository:
        stored = repository.all_orders()
    everything = listing(after_a_run, "orders", "--limit", "0")
    assert [row["client_order_id"] for row in everything] == [order.client_order_id for order in stored]
    assert len(stored) > 60
    first = everything[0]
    order = stored[0]
    assert (first["strategy"], first["symbol"], first["side"], first["quantity"], first["status"]) == (
        order.strategy, order.symbol, order.side.value, format(order.quantity, "f"),
        (order.status or order.intent_state).value)
    by_filter = listing(after_a_run, "orders", "--strategy", "rsi_reversion", "--symbol", "ethusdt", "--limit", "0")
    assert [row["client_order_id"] for row in by_filter] == [
        o.client_order_id for o in stored if o.strategy == "rsi_reversion" and o.symbol == "ETHUSDT"]
    middle = stored[len(stored) // 2].intent_time
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle // 1000))
    later = listing(after_a_run, "orders", "--since", since, "--limit", "0")
    assert later and [row["client_order_id"] for row in later] == [
        o.client_order_id for o in stored if o.intent_time >= middle // 1000 * 1000]
    newest = listing(after_a_run, "orders", "--limit", "5")
    assert [row["client_order_id"] for row in newest] == [o.client_order_id for o in stored[-5:]]


def test_orders_as_a_table_say_how_many_of_how_many(after_a_run) -> None:
    result = run_main(["orders"], after_a_run)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    with Repository.open(after_a_run["DB_URL"], apply_migrations=False) as repository:
        total = len(repository.all_orders())
    assert lines[0] == f"orders: 50 of {total}, oldest first, times in UTC (--limit 0 shows all)"
    assert lines[1].split() == ["decided", "(UTC)", "strategy", "symbol", "purpose", "side", "type", "quantity",
                                "price", "status", "filled", "avg", "price", "rejected", "client", "order", "id"]
    assert len(lines) == 52 and lines[2].startswith("2023-04-20 ")
    empty = run_main(["orders", "--strategy", "no_such_strategy"], after_a_run)
    assert empty.returncode == 0 and empty.stdout == "orders (strategy=no_such_strategy): none stored that match\n"


def test_positions_are_the_open_ones_with_their_owner(after_a_run) -> None:
    with Repository.open(after_a_run["DB_URL"], apply_migrations=False) as repository:
        stored = repository.positions()
        fills = repository.all_fills()
        owners = {order.client_order_id: order.strategy for order in repository.all_orders()}
    open_positions = listing(after_a_run, "positions")
    assert [(row["symbol"], row["amount"]) for row in open_positions] == [
        (p.symbol, format(p.amount, "f")) for p in stored if p.amount]
    for row in open_positions:
        last_fill = [fill for fill in fills if fill.symbol == row["symbol"]][-1]
        assert row["strategy"] == owners[last_fill.client_order_id]
    every = listing(after_a_run, "positions", "--all")
    assert len(every) == len(stored) == 3


def test_signals_filtered_by_strategy_and_time(after_a_run) -> None:
    with Repository.open(after_a_run["DB_URL"], apply_migrations=False) as repository:
        stored = repository.signals(strategy="donchian_breakout")
    rows = listing(after_a_run, "signals", "--strategy", "donchian_breakout", "--limit", "0")
    assert [(row["time"], row["symbol"], row["side"], row["reason"]) for row in rows] == [
        (s.time, s.symbol, s.side.value, s.reason) for s in stored]
    since = listing(after_a_run, "signals", "--strategy", "donchian_breakout", "--since", "2023-04-20T06:00",
                    "--limit", "0")
    assert since and all(row["time"] >= 1_681_970_400_000 for row in since)
    assert len(since) == sum(1 for s in stored if s.time >= 1_681_970_400_000)


def test_risk_shows_each_scope_and_clear_says_what_it_did(env) -> None:
    engine = RiskEngine(RiskLimits())
    engine.halt("strategy:ema_crossover", "operator test halt", 1_681_948_800_000)
    with Repository.open(env["DB_URL"]) as repository:
        for record in engine.drain_state_changes():
            persist_risk_record(repository, record)
    shown = run_main(["risk"], env)
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if line.startswith("strategy:ema_crossover"))
    assert row.split()[:4] == ["strategy:ema_crossover", "HALTED", "2023-04-20", "00:00:00"]
    assert "operator test halt" in row
    states = {row["scope"]: row for row in listing(env, "risk")}
    assert set(states) == {"global", "strategy:ema_crossover", "strategy:rsi_reversion", "strategy:donchian_breakout"}
    assert states["strategy:ema_crossover"]["state"] == "HALTED" and states["global"]["state"] == "ACTIVE"
    nothing = run_main(["risk", "clear", "strategy:rsi_reversion"], env)
    assert (nothing.returncode, nothing.stdout) == (0, "strategy:rsi_reversion is ACTIVE: nothing to clear.\n")
    cleared = run_main(["risk", "clear", "strategy:ema_crossover"], env)
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout == ("strategy:ema_crossover: now ACTIVE (was HALTED: operator test halt). A running bot "
                              "takes this up within a few seconds.\n")
    assert listing(env, "risk")[1]["state"] == "ACTIVE"
    again = run_main(["risk", "clear", "strategy:ema_crossover"], env)
    assert again.stdout == "strategy:ema_crossover is ACTIVE: nothing to clear.\n"
    unknown = run_main(["risk", "clear", "strategy:no_such"], env)
    assert unknown.returncode == 2 and "no such strategy in config/symbols.toml" in unknown.stderr
    nonsense = run_main(["risk", "clear", "nonsense"], env)
    assert nonsense.returncode == 2 and "use 'global' or 'strategy:<name>'" in nonsense.stderr


@pytest.mark.parametrize("args", [["risk"], ["risk", "clear", "strategy:ema_crossover"], ["orders"], ["positions"],
                                  ["signals"], ["status"]])
def test_read_only_commands_never_create_a_database(env, tmp_path, args) -> None:
    result = run_main(args, env)
    database = tmp_path / "trader.db"
    assert not database.exists() and not list(tmp_path.glob("trader.db*"))
    assert "Traceback" not in result.stderr
    if args == ["status"]:
        assert result.returncode == 3 and result.stdout.startswith("NO HEARTBEAT at ")
    else:
        assert result.returncode == 1
        assert result.stderr.strip() == (f"no database at {database} (DB_URL={env['DB_URL']}): the bot has not run "
                                         "with this DB_URL yet, so there is nothing to show. Check DB_URL, or start "
                                         "a run first.")


def test_a_database_without_bot_tables_is_named_and_left_alone(env, postgres_url) -> None:
    env["DB_URL"] = postgres_url
    result = run_main(["orders"], env)
    assert result.returncode == 1
    assert "has no bot tables (it was never migrated): nothing to show. Run `uv run main.py migrate`" in result.stderr
    engine = create_engine(postgres_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def write_heartbeat(env: dict[str, str], *, age_sec: float, state: str = "running",
                    disabled: list[dict] | None = None) -> None:
    heartbeat = Heartbeat(Path(env["STATUS_DIR"]) / "heartbeat.json", interval_sec=5)
    heartbeat.section("process", lambda: {"state": state})
    heartbeat.section("feed", lambda: {"last_candle_open_time": 1_681_948_800_000, "minutes": 3})
    heartbeat.section("strategies", lambda: {"running": [], "disabled": disabled or []})
    document = heartbeat.build()
    document["time_ms"] -= int(age_sec * 1000)
    heartbeat.path.parent.mkdir(parents=True, exist_ok=True)
    heartbeat.path.write_text(json.dumps(document))


@pytest.mark.parametrize(("age_sec", "state", "code", "verdict"), [
    (1, "running", 0, "FRESH: the bot is running."),
    (1, "stopped", 1, "STOPPED: the bot wrote this as it shut down cleanly; it is not running."),
    (60, "running", 2, "STALE: older than 3 x the 5 s interval; the bot is probably not running (or is stuck)."),
])
def test_status_exit_code_tells_a_monitoring_check_whether_the_bot_runs(env, age_sec, state, code, verdict) -> None:
    write_heartbeat(env, age_sec=age_sec, state=state)
    result = run_main(["status"], env)
    assert result.returncode == code, result.stdout
    header, line = result.stdout.splitlines()[:2]
    assert line == verdict
    assert header.startswith(f"Heartbeat {env['STATUS_DIR']}/heartbeat.json (pid ") and " UTC (" in header
    assert "last_candle_open_time        2023-04-20 00:00:00 UTC" in result.stdout


def test_status_names_disabled_strategies(env) -> None:
    write_heartbeat(env, age_sec=1, disabled=[{"strategy": "ema_crossover", "symbol": "BTCUSDT",
                                               "reason": "ZeroDivisionError: division by zero",
                                               "since_time": 1_681_948_800_000}])
    result = run_main(["status"], env)
    assert result.returncode == 0
    assert result.stdout.splitlines()[2] == ("DISABLED strategies (1): ema_crossover on BTCUSDT: ZeroDivisionError: "
                                             "division by zero")
    assert "since_time=2023-04-20 00:00:00 UTC" in result.stdout


def test_status_of_an_unreadable_heartbeat_is_exit_code_3(env) -> None:
    path = Path(env["STATUS_DIR"]) / "heartbeat.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    result = run_main(["status"], env)
    assert result.returncode == 3
    assert result.stderr.startswith(f"{path} cannot be read as a heartbeat: JSONDecodeError")


def test_trades_are_the_closed_round_trips_and_add_up_to_the_fills(after_a_run) -> None:
    with Repository.open(after_a_run["DB_URL"], apply_migrations=False) as repository:
        trips = [t for t in repository.round_trips() if t.status.value == "CLOSED"]
        fills = repository.all_fills()
    rows = listing(after_a_run, "trades", "--limit", "0")
    assert [row["trip_id"] for row in rows] == [t.trip_id for t in trips] and len(rows) > 10
    with_open = listing(after_a_run, "trades", "--limit", "0", "--open")
    net = sum(Decimal(row["net_pnl"]) for row in with_open)
    assert net == sum((f.realized_pnl - f.commission for f in fills), Decimal(0))  # every fill is in a trip
    assert {row["direction"] for row in rows} <= {"LONG", "SHORT"}
    table = run_main(["trades", "--strategy", "ema_crossover", "--limit", "3"], after_a_run)
    assert table.returncode == 0 and "net PnL" in table.stdout and "ema_crossover" in table.stdout


def test_signals_say_what_came_of_each(after_a_run) -> None:
    rows = listing(after_a_run, "signals", "--limit", "0")
    outcomes = {row["outcome"] for row in rows}
    assert "ORDERED" in outcomes and outcomes <= {
        "ORDERED", "WAITING", "NO_ACTION", "REFUSED_BY_PLANNER", "REFUSED_BY_RISK", "REFUSED_BY_FILTERS",
        "ALREADY_SENT", "IGNORED"}
    with Repository.open(after_a_run["DB_URL"], apply_migrations=False) as repository:
        sent = {o.client_order_id for o in repository.all_orders()}
    for row in rows:
        if row["outcome"] == "ORDERED":
            assert row["client_order_ids"] and set(row["client_order_ids"]) <= sent
        if row["outcome"].startswith("REFUSED"):
            assert row["outcome_detail"]
