"""``main.py reconcile``: the on-demand reconciliation against the simulated account a sim run saved.

One short sim run (a subprocess, as a user runs it) makes a database with a saved simulated account; each test
works on a copy of it, changes the account or the database the way the real world does (someone trades on the
account while the bot is down, the database lost a record), and runs ``reconcile`` as a user would.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from database.repository import Repository
from simulator.engine import SimExchange
from tests.main_process import run_main, user_environment
from utils.clock import SimulatedClock
from utils.domain import OrderType, Side


@pytest.fixture(scope="module")
def traded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("traded")
    env = user_environment(folder)
    done = run_main(["run", "--days", "0.5", "--speed", "0"], env)
    assert done.returncode == 0, done.stderr
    return folder


def _copy(traded: Path, tmp_path: Path) -> dict[str, str]:
    shutil.copy(traded / "trader.db", tmp_path / "trader.db")
    return user_environment(tmp_path)


QUANTITY = {"BTCUSDT": Decimal("0.002"), "ETHUSDT": Decimal("0.03"), "LTCUSDT": Decimal("1")}


def _trade_on_the_account(db: Path, client_order_id: str) -> tuple[str, Decimal]:
    """Someone else buys, on a symbol the account is flat in, while the bot is stopped (a market order that fills
    at once); returns the symbol and quantity."""
    repository = Repository.open(f"sqlite:///{db}")
    try:
        saved = repository.load_sim_account()
        assert saved is not None
        document, saved_at = saved
        exchange = SimExchange.restore(json.loads(document), clock=SimulatedClock(saved_at))
        held = {position.symbol for position in exchange.positions() if position.amount}
        symbol = next(symbol for symbol in QUANTITY if symbol not in held)
        order = exchange.new_order(symbol=symbol, side=Side.BUY, order_type=OrderType.MARKET,
                                   quantity=QUANTITY[symbol], client_order_id=client_order_id)
        assert order.executed_quantity == QUANTITY[symbol]
        repository.save_sim_account(json.dumps(exchange.snapshot()), saved_at)
        return symbol, QUANTITY[symbol]
    finally:
        repository.close()


def test_without_a_database_there_is_nothing_to_reconcile(tmp_path: Path) -> None:
    done = run_main(["reconcile"], user_environment(tmp_path))
    assert done.returncode == 1
    assert "no database" in done.stderr
    assert not (tmp_path / "trader.db").exists()  # looking did not create one


def test_after_a_clean_run_nothing_changes(traded: Path, tmp_path: Path) -> None:
    env = _copy(traded, tmp_path)
    with sqlite3.connect(tmp_path / "trader.db") as db:
        fills_before = db.execute("select count(*) from fills").fetchone()[0]
    assert fills_before > 0
    done = run_main(["reconcile"], env)
    assert done.returncode == 0, done.stderr
    assert "the database already matched the exchange: nothing changed" in done.stdout
    with sqlite3.connect(tmp_path / "trader.db") as db:
        assert db.execute("select count(*) from fills").fetchone()[0] == fills_before


def test_a_trade_made_while_the_bot_was_down_is_recorded_and_explains_the_position(traded: Path,
                                                                                   tmp_path: Path) -> None:
    env = _copy(traded, tmp_path)
    symbol, quantity = _trade_on_the_account(tmp_path / "trader.db", "manual-buy-1")
    done = run_main(["reconcile"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{symbol}: 1 fill(s) recorded that the stream had not delivered" in done.stdout
    assert f"{symbol} BOTH {quantity}" in done.stdout
    with sqlite3.connect(tmp_path / "trader.db") as db:
        # userTrades rows name the order id, not the client id: an order nobody here placed stays nameless
        rows = db.execute("select client_order_id, quantity from fills where symbol = ? and order_id = "
                          "(select max(order_id) from fills where symbol = ?)", (symbol, symbol))
        assert [(cid, Decimal(qty)) for cid, qty in rows] == [("", quantity)]
        amount = db.execute("select amount from positions where symbol = ?", (symbol,)).fetchone()[0]
        assert Decimal(amount) == quantity
    again = run_main(["reconcile"], env)  # now the database knows it: a second pass changes nothing
    assert again.returncode == 0, again.stderr
    assert "fill(s) recorded" not in again.stdout


def test_a_position_the_fills_do_not_explain_halts_trading(traded: Path, tmp_path: Path) -> None:
    env = _copy(traded, tmp_path)
    with sqlite3.connect(tmp_path / "trader.db") as db:
        trip_id, symbol = db.execute("select trip_id, symbol from round_trips where status = 'CLOSED' "
                                     "order by close_time desc limit 1").fetchone()
        # The database lost the trip's close: it believes the position is still open; the exchange is flat.
        db.execute("update round_trips set status = 'OPEN', close_time = null, closed_quantity = '0' "
                   "where trip_id = ?", (trip_id,))
    done = run_main(["reconcile"], env)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "UNEXPLAINED:" in done.stdout
    assert f"{symbol} BOTH: exchange holds 0" in done.stdout
    assert "Trading is HALTED" in done.stdout
    risk = run_main(["risk"], env)
    assert "HALTED" in risk.stdout and "cannot explain" in risk.stdout


def test_refused_while_the_bot_runs(traded: Path, tmp_path: Path) -> None:
    env = _copy(traded, tmp_path)
    status = Path(env["STATUS_DIR"])
    status.mkdir(parents=True, exist_ok=True)
    import time

    from runtime.heartbeat import HEARTBEAT_FILE, write_atomically
    write_atomically(status / HEARTBEAT_FILE, {"time_ms": time.time_ns() // 1_000_000, "interval_sec": 60,
                                              "process": {"state": "running"}})
    done = run_main(["reconcile"], env)
    assert done.returncode == 2
    assert "the bot is running" in done.stderr
