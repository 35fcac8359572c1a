"""main.py as a user runs it: the default sim run and its console, Ctrl-C, bad settings and arguments, help texts."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.run import READY_LINE
from tests.main_process import REPO, RunningMain, run_main

CANARY = "CANARY-9f2c7e1d-secret-value-do-not-leak"
# The compact console: "08:02:43 WARNING executor: message key=value ..."
CONSOLE_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: \S")


def test_default_run_is_offline_synthetic_summarised_and_its_console_is_compact(env, tmp_path) -> None:
    result = run_main(["run", "--days", "0.5"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SYNTHETIC" in result.stdout and "Run summary" in result.stdout
    assert "realized PnL" in result.stdout and "open positions" in result.stdout
    table = result.stdout.split("per strategy")[1].splitlines()
    assert "win rate" in table[0] and {row.split()[0] for row in table[1:4]} == {
        "donchian_breakout", "ema_crossover", "rsi_reversion"}
    console = result.stderr.splitlines()
    assert console and all(CONSOLE_LINE.match(line) for line in console), console[:5]
    file_lines = [json.loads(line) for line in (tmp_path / "logs" / "trader.log").read_text().splitlines()]
    # The file has every record; the console shows at most 3 of each message and says how many it held back.
    assert len(file_lines) > 300 and len(console) < 60, (len(file_lines), len(console))
    held_back = [line for line in console if " more 'order cancelled' not shown here; every one is in " in line]
    assert len(held_back) == 1
    cancelled = sum(1 for line in file_lines if line["message"] == "order cancelled")
    assert f"... {cancelled - 3} more 'order cancelled'" in held_back[0]
    heartbeat = json.loads((tmp_path / "status" / "heartbeat.json").read_text())
    assert heartbeat["process"]["state"] == "stopped" and heartbeat["feed"]["state"] == "finished"
    assert heartbeat["database"]["state"] == "ok"
    assert len(heartbeat["strategies"]["running"]) == 9 and heartbeat["strategies"]["disabled"] == []
    status = run_main(["status"], env)
    assert status.returncode == 1, status.stdout  # 1 = STOPPED
    assert "STOPPED" in status.stdout and "trading:" in status.stdout


def test_log_format_json_keeps_json_lines_on_the_console(env, tmp_path) -> None:
    env["LOG_FORMAT"] = "json"
    result = run_main(["run", "--days", "0.2"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in result.stderr.splitlines()]  # every console line is a JSON object
    on_file = (tmp_path / "logs" / "trader.log").read_text().splitlines()
    assert len(records) == len(on_file)  # nothing held back for log shippers
    assert {"time", "level", "logger", "message"} <= set(records[0])


def test_ctrl_c_after_the_ready_line_stops_cleanly_with_a_summary(env, tmp_path) -> None:
    # 30 days at 300 x real time would take 144 s: the run is certainly still going when SIGINT arrives.
    running = RunningMain(["run", "--days", "30", "--speed", "300"], env, tmp_path / "stderr.txt")
    running.wait_for_line(READY_LINE, timeout=90)
    running.process.send_signal(signal.SIGINT)
    code, stdout, stderr = running.finish(timeout=60)
    assert code == 0, stderr[-2000:]
    assert "Run summary" in stdout and "(stopped before the end of the data)" in stdout
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    document = json.loads((tmp_path / "status" / "heartbeat.json").read_text())
    assert document["process"]["state"] == "stopped"
    assert document["feed"]["minutes"] < 30 * 1440


def test_bad_configuration_is_one_clear_error(env) -> None:
    env.update({"MODE": "live", "RECV_WINDOW_MS": "70000"})
    result = run_main(["run"], env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "MODE: must be one of sim, testnet, mainnet (got 'live')" in result.stderr
    assert "RECV_WINDOW_MS: must be between 1 and 60000 (got 70000)" in result.stderr


def test_live_modes_refuse_clearly_and_never_print_the_secret(env, tmp_path) -> None:
    env.update({"MODE": "testnet", "BINANCE_API_KEY": "testkey-1234567890", "BINANCE_API_SECRET": CANARY,
                # nothing listens there: the start stops at its first request (never Binance's real testnet)
                "REST_BASE_URL": "http://127.0.0.1:9", "WS_MARKET_URL": "ws://127.0.0.1:9/market",
                "WS_PRIVATE_URL": "ws://127.0.0.1:9/private"})
    config = run_main(["config"], env)
    assert config.returncode == 0, config.stderr
    assert json.loads(config.stdout)["settings"]["BINANCE_API_SECRET"] == "****"
    run = run_main(["run"], env)
    assert run.returncode == 2, run.stderr
    assert "cannot start live trading" in run.stderr and "http://127.0.0.1:9" in run.stderr
    log_file = tmp_path / "logs" / "trader.log"
    assert log_file.exists()  # `run` logs to the file, even when it refuses to start
    for text in (config.stdout, config.stderr, run.stdout, run.stderr, log_file.read_text()):
        assert CANARY not in text


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--speed", "-5"], "argument --speed: must be 0 (as fast as possible) or N > 0 (N x real time) (got '-5')"),
    (["run", "--days", "-1"], "argument --days: must be a number of days above 0, e.g. 2 or 0.5 (got '-1')"),
    (["run", "--days", "0"], "argument --days: must be a number of days above 0, e.g. 2 or 0.5 (got '0')"),
    (["orders", "--since", "yesterday"], "argument --since: must be a UTC date or time such as 2023-04-20"),
    (["orders", "--limit", "-3"], "argument --limit: must be a whole number >= 0, 0 meaning all (got '-3')"),
], ids=["speed-5", "days-1", "days0", "since", "limit"])
def test_a_bad_argument_is_one_clear_error(env, args, message) -> None:
    result = run_main(args, env)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not Path(env["DB_URL"].removeprefix("sqlite:///")).exists()


def test_an_env_file_that_does_not_exist_is_refused(env, tmp_path) -> None:
    missing = tmp_path / "production.env"
    for args in (["--env-file", str(missing), "status"], ["--env-file", str(tmp_path), "run"]):
        result = subprocess.run([sys.executable, "main.py", *args], cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2, result.stderr
        what = "does not exist" if args[1] == str(missing) else "is a folder"
        assert result.stderr.strip() == (f"--env-file {args[1]} {what}: name an existing settings file "
                                         f"(e.g. cp .env.example {args[1]}).")


COMMANDS = ["run", "status", "risk", "orders", "positions", "signals", "config", "migrate"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_says_what_it_does_with_an_example(env, command) -> None:
    result = run_main([command, "--help"], env)
    assert result.returncode == 0, result.stderr
    description = result.stdout.split("\n\n")[1]  # after the usage paragraph
    assert len(description.split()) >= 8, description
    assert re.search(rf"^examples?:\n  uv run main.py .*{command}", result.stdout, flags=re.MULTILINE), result.stdout


def test_risk_clear_says_what_it_does_with_an_example(env) -> None:
    result = run_main(["risk", "clear", "--help"], env)
    assert result.returncode == 0
    assert "Set a scope back to ACTIVE" in result.stdout and "uv run main.py risk clear strategy:" in result.stdout


def test_risk_clear_reaches_a_running_bot_within_seconds(env, tmp_path) -> None:
    from database.journal import persist_risk_record
    from database.repository import Repository
    from executor.risk import RiskEngine, RiskLimits

    engine = RiskEngine(RiskLimits())
    engine.halt("strategy:ema_crossover", "operator test halt", 1_000)
    with Repository.open(env["DB_URL"]) as repository:
        for record in engine.drain_state_changes():
            persist_risk_record(repository, record)
    running = RunningMain(["run", "--days", "30", "--speed", "300"], env, tmp_path / "stderr.txt")
    try:
        running.wait_for_line(READY_LINE, timeout=90)
        cleared = run_main(["risk", "clear", "strategy:ema_crossover"], env)
        assert cleared.returncode == 0, cleared.stderr
        log = tmp_path / "logs" / "trader.log"
        deadline = time.monotonic() + 20
        taken = []
        while time.monotonic() < deadline and not taken:
            time.sleep(0.2)
            taken = [json.loads(line) for line in log.read_text().splitlines()
                     if '"operator changed a trading state"' in line]
    finally:
        running.process.send_signal(signal.SIGINT)
    code, stdout, stderr = running.finish(timeout=60)
    assert code == 0, stderr[-2000:]
    assert taken and taken[0]["scope"] == "strategy:ema_crossover" and taken[0]["state"] == "ACTIVE"
    assert "strategy:ema_crossover: HALTED" not in stdout  # the summary's trading states show it cleared


def test_a_run_killed_hard_comes_back_with_nothing_lost_or_doubled(env, tmp_path) -> None:
    """kill -9 in the middle of a run, then run again: the account continues, every fill is stored once and
    every executed quantity is explained by stored fills."""
    from database.repository import Repository

    running = RunningMain(["run", "--days", "30", "--speed", "600"], env, tmp_path / "stderr.txt")
    try:
        running.wait_for_line(READY_LINE, timeout=90)
        time.sleep(4)  # a few hundred minutes of trading
    finally:
        running.process.kill()
    running.finish(timeout=30)
    again = run_main(["run", "--days", "0.3"], env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "continuing the simulated account" in again.stdout
    with Repository.open(env["DB_URL"], apply_migrations=False) as repository:
        fills = repository.all_fills()
        assert len({(f.symbol, f.trade_id) for f in fills}) == len(fills) and fills
        filled: dict[str, object] = {}
        for fill in fills:
            filled[fill.client_order_id] = filled.get(fill.client_order_id, 0) + fill.quantity
        unexplained = [o.client_order_id for o in repository.all_orders()
                       if o.executed_quantity != filled.get(o.client_order_id, 0)]
        assert unexplained == []


def test_the_same_data_again_says_which_orders_were_not_sent_again(env) -> None:
    first = run_main(["run", "--days", "0.3"], env)
    assert first.returncode == 0, first.stderr[-2000:]
    again = run_main(["run", "--days", "0.3", "--fresh-account"], env)  # a new account, the same synthetic days
    assert again.returncode == 0, again.stderr[-2000:]
    line = next(line for line in again.stdout.splitlines() if "orders sent" in line)
    skipped = int(line.split("(")[1].split()[0])
    assert skipped > 10 and "already in the database from an earlier run on the same data: not sent again" in line
    # (what it did send are signals the first run's risk guards refused: its halts had lifted by now)
