"""main.py as a user runs it: the default sim run, status, risk show/clear, config errors, Ctrl-C, no secret leaks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CANARY = "CANARY-9f2c7e1d-secret-value-do-not-leak"


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "MODE", "DB_URL", "SIM_"))}
    values.update({
        "DB_URL": f"sqlite:///{tmp_path / 'trader.db'}",
        "STATUS_DIR": str(tmp_path / "status"),
        "LOG_DIR": str(tmp_path / "logs"),
        "HEARTBEAT_INTERVAL_SEC": "0.5",
        "PYTHONUNBUFFERED": "1",
    })
    return values


def run_main(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "main.py", "--env-file", "/nonexistent.env", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_default_run_is_offline_synthetic_and_summarised(env, tmp_path) -> None:
    result = run_main(["run", "--days", "0.5"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SYNTHETIC" in result.stdout and "Run summary" in result.stdout
    assert "realized PnL" in result.stdout and "open positions" in result.stdout
    for line in result.stderr.splitlines():
        json.loads(line)  # every log line is a JSON object
    assert (tmp_path / "logs" / "trader.log").exists()
    heartbeat = json.loads((tmp_path / "status" / "heartbeat.json").read_text())
    assert heartbeat["process"]["state"] == "stopped" and heartbeat["feed"]["state"] == "finished"
    assert heartbeat["database"]["state"] == "ok"
    status = run_main(["status"], env)
    assert status.returncode == 0 and "STOPPED" in status.stdout and "trading" in status.stdout


def test_ctrl_c_stops_cleanly_with_a_summary(env, tmp_path) -> None:
    process = subprocess.Popen([sys.executable, "main.py", "--env-file", "/nonexistent.env", "run", "--days", "2",
                                "--speed", "300"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    heartbeat = tmp_path / "status" / "heartbeat.json"
    while time.monotonic() < deadline:
        if heartbeat.exists() and json.loads(heartbeat.read_text()).get("feed", {}).get("minutes", 0) > 3:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-2000:]
    assert "Run summary" in stdout and "stopped before the end of the data" in stdout
    document = json.loads(heartbeat.read_text())
    assert document["process"]["state"] == "stopped"
    assert document["feed"]["state"] == "finished" or document["feed"]["minutes"] < 2880


def test_bad_configuration_is_one_clear_error(env) -> None:
    env.update({"MODE": "live", "RECV_WINDOW_MS": "70000"})
    result = run_main(["run"], env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "MODE" in result.stderr and "sim, testnet, mainnet" in result.stderr
    assert "RECV_WINDOW_MS" in result.stderr


def test_risk_show_and_clear(env, tmp_path) -> None:
    from database.journal import persist_risk_record
    from database.repository import Repository
    from executor.risk import RiskEngine, RiskLimits

    engine = RiskEngine(RiskLimits())
    engine.halt("strategy:ema_crossover", "operator test halt", 1_000)
    with Repository.open(env["DB_URL"]) as repository:
        for record in engine.drain_state_changes():
            persist_risk_record(repository, record)
    shown = run_main(["risk"], env)
    assert shown.returncode == 0
    assert "strategy:ema_crossover" in shown.stdout and "HALTED" in shown.stdout
    assert "operator test halt" in shown.stdout
    cleared = run_main(["risk", "clear", "strategy:ema_crossover"], env)
    assert cleared.returncode == 0 and "ACTIVE" in cleared.stdout
    again = run_main(["risk"], env)
    row = [line for line in again.stdout.splitlines() if line.startswith("strategy:ema_crossover")][0]
    assert row.split()[1] == "ACTIVE", row
    bad = run_main(["risk", "clear", "nonsense"], env)
    assert bad.returncode == 2 and "nonsense" in bad.stderr


def test_live_modes_refuse_clearly_and_never_print_the_secret(env, tmp_path) -> None:
    env.update({"MODE": "testnet", "BINANCE_API_KEY": "testkey-1234567890", "BINANCE_API_SECRET": CANARY})
    config = run_main(["config"], env)
    assert config.returncode == 0, config.stderr
    assert "****" in config.stdout
    run = run_main(["run"], env)
    assert run.returncode == 2 and "MODE=testnet" in run.stderr
    logs = (tmp_path / "logs" / "trader.log").read_text() if (tmp_path / "logs" / "trader.log").exists() else ""
    for text in (config.stdout, config.stderr, run.stdout, run.stderr, logs):
        assert CANARY not in text


def test_a_users_own_csv_for_one_symbol_with_a_bad_row(env, tmp_path) -> None:
    from marketdata.synthetic import synthetic_candles
    from utils.klines_csv import write_klines_csv

    path = tmp_path / "BTCUSDT-1m-2023-04-20.csv"
    write_klines_csv(path, synthetic_candles("BTCUSDT", start_ms=1_681_948_800_000, count=400))
    lines = path.read_text().splitlines()
    lines.insert(200, "1681960740000,not-a-price,1,1,1,1,1681960799999,1,1,1,1")
    path.write_text("\n".join(lines) + "\n")
    result = run_main(["run", "--data", str(path)], env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no data for ETHUSDT, LTCUSDT" in result.stdout and "Run summary" in result.stdout
    # 400 good rows, the first 104 spent on warm-up (the slow EMA's 4 x 26), the bad row skipped
    assert "minutes         296 (296 candles)" in result.stdout, result.stdout
    assert any("BTCUSDT-1m-2023-04-20.csv" in line and "skipped" in line.lower() for line in result.stderr.splitlines())
    unknown = tmp_path / "DOGEUSDT-1m-2023-04-20.csv"
    unknown.write_text(path.read_text())
    refused = run_main(["run", "--data", str(unknown)], env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr and "DOGEUSDT" in refused.stderr
