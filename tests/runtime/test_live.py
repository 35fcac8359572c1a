"""The live shell's own rules, without a network: market time, what stops a start before anything is sent, what the
key's permissions lead to, exchangeInfo refreshes handed to the core (the whole shell against the simulator server
is tests/live/test_live_process.py)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from config import load_config
from live.gateway import ExchangeInfo, KeyPermissions
from runtime.live import LiveTrader, MarketTime, StartupError, startup_problem
from simulator.exchange_info import load_symbol_filters
from tests.sim_server import TEST_API_KEY, TEST_API_SECRET
from utils.secrets import format_apikey_text

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_config(monkeypatch, tmp_path):
    def make(mode: str = "testnet", **settings: str):
        apikey = tmp_path / ".apikey"
        apikey.write_text(format_apikey_text(TEST_API_KEY, TEST_API_SECRET), encoding="utf-8")
        apikey.chmod(0o600)
        values = {"MODE": mode, "DB_URL": f"sqlite:///{tmp_path / 'trader.db'}", "STATUS_DIR": str(tmp_path / "s"),
                  "LOG_DIR": str(tmp_path / "logs"), "REST_BASE_URL": "http://127.0.0.1:9",
                  "WS_MARKET_URL": "ws://127.0.0.1:9/market", "WS_PRIVATE_URL": "ws://127.0.0.1:9/private", **settings}
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        return load_config(env_file=None, symbols_file=REPO / "config" / "symbols.toml", apikey_file=apikey)
    return make


def test_market_time_only_moves_forward() -> None:
    clock = MarketTime(1_000)
    assert clock.observe(2_000) and clock.now_ms() == 2_000
    assert not clock.observe(1_500) and clock.now_ms() == 2_000  # an older event (a back-filled candle, say)
    assert not clock.observe(2_000)


def test_mainnet_needs_the_exact_confirmation_before_anything_is_built(live_config) -> None:
    config = live_config("mainnet", MAINNET_CONFIRM="I understand")
    problem = startup_problem(config)
    assert problem is not None and "MAINNET_CONFIRM=I-UNDERSTAND-REAL-MONEY" in problem
    with pytest.raises(StartupError, match="REAL MONEY"):
        LiveTrader(config)
    assert startup_problem(live_config("mainnet", MAINNET_CONFIRM="I-UNDERSTAND-REAL-MONEY")) is None
    assert startup_problem(live_config("testnet")) is None


async def test_a_key_that_allows_withdrawals_is_warned_about_loudly(live_config, caplog) -> None:
    printed: list[str] = []
    trader = LiveTrader(live_config(), on_progress=printed.append)
    try:
        async def allows_withdrawals() -> KeyPermissions:
            return KeyPermissions(enable_futures=True, enable_withdrawals=True, enable_reading=True,
                                  ip_restrict=False)

        trader.gateway.key_permissions = allows_withdrawals  # type: ignore[method-assign]
        with caplog.at_level(logging.CRITICAL, logger="runtime.live"):
            await trader._check_key_permissions()
        assert any("ALLOWS WITHDRAWALS" in line and line.startswith("WARNING") for line in printed)
        assert any(r.levelno == logging.CRITICAL and "WITHDRAWALS" in r.getMessage() for r in caplog.records)
        assert trader.heartbeat.build()["mode"]["key_permissions"]["withdrawals"] is True

        async def no_futures() -> KeyPermissions:
            return KeyPermissions(enable_futures=False, enable_withdrawals=False, enable_reading=True,
                                  ip_restrict=True)

        trader.gateway.key_permissions = no_futures  # type: ignore[method-assign]
        with pytest.raises(StartupError, match="not enabled for futures"):
            await trader._check_key_permissions()
    finally:
        trader.close()


def test_a_refreshed_exchange_info_names_a_symbol_that_left_it(live_config) -> None:
    from executor.core import ExecutionCore
    from executor.risk import RiskEngine, RiskLimits

    trader = LiveTrader(live_config())
    try:
        filters = load_symbol_filters()
        trader.core = ExecutionCore(risk=RiskEngine(RiskLimits()), filters={s: filters[s] for s in trader.symbols},
                                    settings=[], position_mode=trader.position_mode)
        info = ExchangeInfo(server_time=0, rate_limits=(), symbols={
            "BTCUSDT": replace(filters["BTCUSDT"], status="SETTLING"), "ETHUSDT": filters["ETHUSDT"]})
        handed = {f.symbol: f.status for f in trader._configured_filters(info)}
        assert handed == {"BTCUSDT": "SETTLING", "ETHUSDT": "TRADING", "LTCUSDT": "NOT_LISTED"}
    finally:
        trader.close()
