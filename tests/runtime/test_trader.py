"""The sim shell: deterministic runs, warm-up from the database on a restart, the speed factor."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest

from config import load_config
from database.repository import Repository
from marketdata.replay import ReplaySource, csv_source, synthetic_source
from marketdata.synthetic import synthetic_candles
from runtime.assembly import load_risk_state
from runtime.trader import SimTrader
from simulator.engine import SimExchange
from utils.clock import SimulatedClock
from utils.domain import TripStatus

REPO = Path(__file__).resolve().parents[2]
WEEK = ("BTCUSDT_usdm_1m_2023-04-20_2023-04-26.csv", "ETHUSDT_usdm_1m_2023-04-20_2023-04-26.csv",
        "LTCUSDT_usdm_1m_2023-04-20_2023-04-26.csv")


@pytest.fixture
def config_for(monkeypatch, tmp_path):
    def make(name: str):
        monkeypatch.setenv("DB_URL", f"sqlite:///{tmp_path / name}")
        monkeypatch.setenv("STATUS_DIR", str(tmp_path / "status"))
        monkeypatch.setenv("LOG_DIR", str(tmp_path / "logs"))
        monkeypatch.setenv("MODE", "sim")
        return load_config(env_file=None, symbols_file=REPO / "config" / "symbols.toml")
    return make


def run(trader: SimTrader):
    try:
        return asyncio.run(trader.run())
    finally:
        trader.close()


def book(trader: SimTrader):
    repo = trader.repository
    orders = [(o.client_order_id, o.status, o.executed_quantity, o.avg_price, o.intent_time)
              for o in repo.all_orders()]
    fills = [(f.trade_id, f.client_order_id, f.price, f.quantity, f.commission, f.realized_pnl, f.time)
             for f in repo.all_fills()]
    return orders, fills


def test_same_data_same_orders_and_fills(config_for) -> None:
    results = []
    for name in ("a.db", "b.db"):
        config = config_for(name)
        trader = SimTrader(config, source=synthetic_source(["BTCUSDT", "ETHUSDT", "LTCUSDT"], days=1, warmup=104))
        summary = run(trader)
        trader.repository = type(trader.repository).open(config.settings.db_url, trader.clock)
        results.append((summary.realized_pnl, summary.fees, book(trader)))
        trader.close()
    assert results[0] == results[1]
    assert results[0][2][1], "the run must have traded"


def test_restart_warms_up_from_the_database_and_reconciles_the_fresh_exchange(config_for, usdm_1m_dir) -> None:
    config = config_for("restart.db")
    files = [usdm_1m_dir / name for name in WEEK]
    first_source = csv_source(files)
    first_source.streams = {s: itertools.islice(stream, 600) for s, stream in first_source.streams.items()}
    first = SimTrader(config, source=first_source)
    run(first)
    assert set(first.warmup_sources.values()) == {"feed"}

    second_source = csv_source(files)
    second_source.streams = {s: itertools.islice(stream, 600, 900) for s, stream in second_source.streams.items()}
    second = SimTrader(config, source=second_source)
    summary = run(second)
    assert second.warmup_sources == {"BTCUSDT": "database", "ETHUSDT": "database", "LTCUSDT": "database"}
    assert summary.minutes == 300  # nothing of the new data was spent on warm-up
    second.repository = type(second.repository).open(config.settings.db_url, second.clock)
    try:
        second_start = 1_681_948_800_000 + 600 * 60_000
        leftovers = [o for o in second.repository.all_orders() if o.intent_time < second_start and o.is_open]
        assert leftovers == []  # what the first run left working was reconciled against the fresh exchange
        stored = {(p.symbol, p.position_side): p.amount for p in second.repository.positions() if p.amount}
        assert stored == {(p.symbol, p.position_side): p.amount for p in second.exchange.positions()}
        first_trips = [t for t in second.repository.round_trips() if t.open_time < second_start]
        assert all(t.status is not TripStatus.OPEN for t in first_trips)  # closed, or abandoned at the restart
        assert second.repository.count_candles() == 3 * 900
    finally:
        second.close()


async def test_speed_factor_paces_the_replay(monkeypatch) -> None:
    candles = list(synthetic_candles("BTCUSDT", start_ms=1_681_948_800_000, count=5))
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr("marketdata.replay.asyncio.sleep", recording_sleep)
    source = ReplaySource({"BTCUSDT": candles}, "test", synthetic=True, speed=600)  # 60 s of data -> 0.1 s
    groups = [group async for group in source.minutes()]
    assert len(groups) == 5
    # The recording sleep returns at once, so each wait is measured from the start: 0.1 s per minute at 600 x.
    assert slept == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=0.02)
    slept.clear()
    fast = ReplaySource({"BTCUSDT": candles}, "test", synthetic=True, speed=0)
    assert len([group async for group in fast.minutes()]) == 5
    assert slept == []  # speed 0: as fast as possible, never waits


def test_a_planted_secret_reaches_no_log_heartbeat_or_database(config_for, monkeypatch, tmp_path) -> None:
    import logging

    from utils.log import reset_logging, setup_logging

    canary = "CANARY-5be1d0c4-never-store-me"
    monkeypatch.setenv("BINANCE_API_KEY", "canary-key-0123456789")
    monkeypatch.setenv("BINANCE_API_SECRET", canary)
    config = config_for("secret.db")
    root_level = logging.getLogger().level
    setup_logging("DEBUG", tmp_path / "logs", console=False)
    trader = SimTrader(config, source=synthetic_source(["BTCUSDT", "ETHUSDT", "LTCUSDT"], days=0.2, warmup=104),
                       heartbeat_path=tmp_path / "status" / "heartbeat.json")
    logging.getLogger("test").info("settings", extra={"settings": repr(config.settings),
                                                      "summary": config.masked_summary()})
    try:
        run(trader)
    finally:
        reset_logging()
        logging.getLogger().setLevel(root_level)
    texts = [(tmp_path / "logs" / "trader.log").read_text(), (tmp_path / "status" / "heartbeat.json").read_text()]
    texts.append((tmp_path / "secret.db").read_bytes().decode("latin-1"))
    texts += [p.read_bytes().decode("latin-1") for p in tmp_path.glob("secret.db-*")]
    levels = {json.loads(line)["level"] for line in texts[0].splitlines() if line.strip()}
    assert "DEBUG" in levels  # the log really recorded the run at DEBUG, so the canary had every chance
    for text in texts:
        assert canary not in text


def test_the_unknown_outcome_window_comes_from_the_settings(config_for, monkeypatch) -> None:
    monkeypatch.setenv("UNKNOWN_OUTCOME_WINDOW_SEC", "45")
    trader = SimTrader(config_for("window.db"), source=synthetic_source(["BTCUSDT"], days=0.01, warmup=10))
    try:
        assert trader.core.policy.unknown_outcome_window_ms == 45_000
    finally:
        trader.close()


# ========================================================================= the simulated account (issue 9)
def _one_day(trader_config, **options) -> SimTrader:
    return SimTrader(trader_config, days=0.5, **options)


def test_a_second_run_continues_the_same_account_and_nothing_collides(config_for) -> None:
    """The issue's reproduction: run, clear a halt, run again on the same database."""
    from database.journal import persist_risk_record
    from executor.risk import RiskEngine, RiskLimits

    config = config_for("continue.db")
    first = _one_day(config)
    first_summary = run(first)
    with Repository.open(config.settings.db_url) as repository:  # `risk clear` in between
        engine = RiskEngine(RiskLimits(), state=load_risk_state(repository, ["strategy:ema_crossover"]))
        if engine.state("strategy:ema_crossover").state.value != "ACTIVE":
            engine.clear("strategy:ema_crossover", 0)
            for record in engine.drain_state_changes():
                persist_risk_record(repository, record)
        first_trade_ids = {f.trade_id for f in repository.all_fills()}
    second = _one_day(config)
    assert not second.account_is_new and "continuing the simulated account" in second.account_note
    summary = run(second)
    assert summary.minutes == first_summary.minutes and summary.fills > 0
    with Repository.open(config.settings.db_url) as repository:
        orders = repository.all_orders()
        fills = repository.all_fills()
        filled = {}
        for fill in fills:
            filled[fill.client_order_id] = filled.get(fill.client_order_id, 0) + fill.quantity
        for order in orders:  # every executed quantity is accounted for by stored fills
            assert order.executed_quantity == filled.get(order.client_order_id, 0), order.client_order_id
        assert len({(f.symbol, f.trade_id) for f in fills}) == len(fills)
        assert min(f.trade_id for f in fills if f.trade_id not in first_trade_ids) > max(first_trade_ids)
        signed = {}
        for fill in fills:
            key = (fill.symbol, fill.position_side)
            signed[key] = signed.get(key, 0) + fill.side.sign * fill.quantity
        stored = {(p.symbol, p.position_side): p.amount for p in repository.positions()}
        restored = SimExchange.restore(json.loads(repository.load_sim_account()[0]), clock=SimulatedClock(2**60))
        on_exchange = {(p.symbol, p.position_side): p.amount for p in restored.positions()}
        for key in set(signed) | set(stored) | set(on_exchange):
            assert signed.get(key, 0) == stored.get(key, 0) == on_exchange.get(key, 0), key
        assert repository.account_snapshots(), "the account's balance is recorded (hourly and at the end)"


def test_a_fresh_account_never_repeats_an_id_of_the_old_one(config_for) -> None:
    config = config_for("fresh.db")
    run(_one_day(config))
    with Repository.open(config.settings.db_url) as repository:
        old_orders = {o.order_id for o in repository.all_orders() if o.order_id}
        old_trades = {f.trade_id for f in repository.all_fills()}
    fresh = _one_day(config, fresh_account=True)
    assert fresh.account_is_new
    run(fresh)
    with Repository.open(config.settings.db_url) as repository:
        new_orders = {o.order_id for o in repository.all_orders() if o.order_id} - old_orders
        new_trades = {f.trade_id for f in repository.all_fills()} - old_trades
        assert new_trades and min(new_trades) > max(old_trades) and min(new_orders) > max(old_orders)
        assert all(t.status is not TripStatus.OPEN or t.open_time > 0 for t in repository.round_trips())


def test_data_older_than_the_account_is_refused_with_the_remedy(config_for) -> None:
    config = config_for("older.db")
    run(_one_day(config))
    candles = list(synthetic_candles("BTCUSDT", start_ms=1_681_948_800_000, count=300))
    with pytest.raises(ValueError, match="--fresh-account"):
        SimTrader(config, source=ReplaySource({"BTCUSDT": candles}, "old", synthetic=False)).close()


def test_synthetic_candles_are_never_stored_as_market_data(config_for) -> None:
    config = config_for("synthetic.db")
    trader = _one_day(config)
    run(trader)
    with Repository.open(config.settings.db_url) as repository:
        assert repository.count_candles() == 0 and repository.signals()


def test_an_operator_change_reaches_the_running_bot(config_for) -> None:
    from database.journal import persist_risk_record
    from executor.risk import RiskEngine, RiskLimits

    config = config_for("operator.db")
    trader = _one_day(config)
    try:
        assert trader.take_operator_changes() == 0
        with Repository.open(config.settings.db_url) as other:  # `main.py risk` from another process
            engine = RiskEngine(RiskLimits())
            engine.halt("strategy:ema_crossover", "operator says stop", 1)
            for record in engine.drain_state_changes():
                persist_risk_record(other, record)
        assert trader.take_operator_changes() == 1
        assert trader.risk.state("strategy:ema_crossover").reason == "operator says stop"
        assert trader.take_operator_changes() == 0  # taken once
    finally:
        trader.close()


def test_foreign_orders_setting_reaches_the_policy(config_for, monkeypatch) -> None:
    monkeypatch.setenv("FOREIGN_ORDERS", "cancel")
    trader = SimTrader(config_for("foreign.db"), source=synthetic_source(["BTCUSDT"], days=0.01, warmup=10))
    try:
        assert trader.core.policy.cancel_foreign_orders is True
    finally:
        trader.close()
