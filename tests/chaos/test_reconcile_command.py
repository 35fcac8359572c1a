"""``main.py reconcile`` in MODE=testnet, against the simulator server as a separate process: a trade someone made
while the bot was stopped, on a symbol it trades, is found and recorded; a database that lost a trip's close halts
trading (exit 3)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from tests.chaos.harness import API_KEY, API_SECRET, REPO, ChaosRun
from tests.sim_server import BinanceTestClient


@pytest.fixture
def stopped_bot(tmp_path):
    """The bot traded a little against a running server and was stopped cleanly."""
    run = ChaosRun(tmp_path / "world", seed=11)
    run.start_server()
    bot = run._bot()
    assert run._ready(bot, 60), (run.folder / "bot.log").read_text()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _closed_trips(run):  # until it has closed a trade
        time.sleep(0.5)
    bot.send_signal(signal.SIGINT)
    bot.wait(timeout=60)
    run.stop_server()
    run.start_server(speed=0)  # the market stands still from here on
    yield run
    run.close()


def _closed_trips(run: ChaosRun) -> int:
    try:
        with sqlite3.connect(run.folder / "bot.db") as db:
            return int(db.execute("select count(*) from round_trips where status = 'CLOSED'").fetchone()[0])
    except sqlite3.Error:
        return 0


def reconcile(run: ChaosRun) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "main.py", "--env-file", str(run.folder / "empty.env"), "reconcile"],
                          cwd=REPO, env=run.bot_environment(), capture_output=True, text=True, timeout=120)


async def _buy(run: ChaosRun, symbol: str, quantity: str, client_order_id: str) -> None:
    async with BinanceTestClient(run.rest_url, API_KEY, API_SECRET) as client:
        reply = await client.signed("POST", "/fapi/v1/order", {
            "symbol": symbol, "side": "BUY", "type": "MARKET", "quantity": quantity,
            "newClientOrderId": client_order_id})
        assert reply.status == 200, reply.body


def _traded_symbol(run: ChaosRun) -> str:
    """A symbol the bot has fills on (reconciliation reads fills from the last one stored per symbol)."""
    with sqlite3.connect(run.folder / "bot.db") as db:
        (symbol,) = db.execute("select symbol from fills order by time desc limit 1").fetchone()
    return str(symbol)


def test_a_trade_made_while_the_bot_was_stopped_is_recorded(stopped_bot: ChaosRun) -> None:
    first = reconcile(stopped_bot)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"Reconciled with testnet at {stopped_bot.rest_url}" in first.stdout
    symbol = _traded_symbol(stopped_bot)
    size = "0.01" if symbol == "BTCUSDT" else "0.05"
    asyncio.run(_buy(stopped_bot, symbol, size, "by-hand-1"))
    second = reconcile(stopped_bot)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{symbol}: 1 fill(s) recorded that the stream had not delivered" in second.stdout
    with sqlite3.connect(stopped_bot.folder / "bot.db") as db:
        (quantity,) = db.execute("select quantity from fills where symbol = ? and order_id = (select max(order_id) "
                                 "from fills where symbol = ?)", (symbol, symbol)).fetchone()
    assert Decimal(quantity) == Decimal(size)
    result = stopped_bot.compare()
    assert result.problems == [], result.problems


def test_a_difference_nothing_explains_halts(stopped_bot: ChaosRun) -> None:
    with sqlite3.connect(stopped_bot.folder / "bot.db") as db:
        row = db.execute("select trip_id, symbol from round_trips where status = 'CLOSED' limit 1").fetchone()
        assert row is not None, "the bot closed no trade before it was stopped"
        db.execute("update round_trips set status = 'OPEN', close_time = null, closed_quantity = '0' "
                   "where trip_id = ?", (row[0],))
    done = reconcile(stopped_bot)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "UNEXPLAINED:" in done.stdout and "Trading is HALTED" in done.stdout
