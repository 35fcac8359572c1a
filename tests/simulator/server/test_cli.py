"""``main.py simserver``: its arguments, the mistakes it refuses with a clear message, and what it prints
(tests/simulator/server/test_persistence.py runs the command itself)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from simulator.server import SimServer
from simulator.server.cli import add_arguments, banner, build_config
from tests.sim_server import default_candles
from utils.klines_csv import write_klines_csv


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "BTCUSDT_usdm_1m_synthetic.csv"
    write_klines_csv(path, default_candles(("BTCUSDT",), minutes=30)["BTCUSDT"])
    return path


def _args(*words: str):
    parser = argparse.ArgumentParser(prog="main.py")
    add_arguments(parser.add_subparsers(dest="command"))
    return parser.parse_args(["simserver", *words])


def test_arguments_become_the_server_configuration(data_file: Path, tmp_path: Path):
    config, pairs = build_config(_args("--data", str(data_file), "--speed", "60", "--api-key", "k1", "--api-secret",
                                       "s1", "--api-key", "k2", "--api-secret", "s2", "--balance", "2500.5",
                                       "--state", str(tmp_path / "s.json"), "--admin-token", "t", "--history", "5"))
    assert [c.api_key for c, _ in pairs] == ["k1", "k2"] and not any(generated for _, generated in pairs)
    assert (config.speed, str(config.balance), config.admin_token, config.history_minutes) == (60, "2500.5", "t", 5)
    assert list(config.candles) == ["BTCUSDT"] and len(config.candles["BTCUSDT"]) == 30


@pytest.mark.parametrize(("words", "problem"), [
    (["--api-key", "k"], "one --api-secret for every --api-key"),
    (["--state", "s.json"], "--state needs --api-key"),
    (["--balance", "lots"], "--balance must be a number"),
    (["--balance", "-1"], "non-negative"),
])
def test_mistakes_are_named(data_file: Path, words: list[str], problem: str):
    with pytest.raises(ValueError, match=problem):
        build_config(_args("--data", str(data_file), *words))


def test_data_files_are_checked(tmp_path: Path, data_file: Path):
    with pytest.raises(ValueError, match="not found"):
        build_config(_args("--data", str(tmp_path / "BTCUSDT_nothing.csv")))
    five = tmp_path / "BTCUSDT-5m-2023-04-20.csv"
    five.write_text(data_file.read_text())
    with pytest.raises(ValueError, match="replays 1m klines"):
        build_config(_args("--data", str(five)))


def test_the_banner_names_urls_settings_and_keys(data_file: Path):
    config, pairs = build_config(_args("--data", str(data_file)))
    server = SimServer(config)
    server.port = 8765
    text = banner(server, pairs)
    generated = pairs[0][0]
    assert "REST_BASE_URL=http://127.0.0.1:8765 WS_MARKET_URL=ws://127.0.0.1:8765/market " \
           "WS_PRIVATE_URL=ws://127.0.0.1:8765/private" in text
    assert f"{generated.api_key}  secret {generated.secret}" in text  # a generated secret is shown once, in full
    given, given_pairs = build_config(_args("--data", str(data_file), "--api-key", "mine", "--api-secret",
                                            "a-long-secret-value"))
    shown = banner(SimServer(given), given_pairs)
    assert "a-long-secret-value" not in shown and "mine  secret a-lo..." in shown
    assert "admin endpoint: off" in shown
