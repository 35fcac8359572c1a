"""The chaos harness: the simulator server and the bot as separate processes, the bot killed (SIGKILL) at random
moments and restarted, then the database checked against the server's own records.

One :class:`ChaosRun`:
1. writes candles (seeded synthetic, two symbols) and a strategy config that trades often, starts
   ``main.py simserver`` with ``--state`` (the exchange outlives everything) and ``--order-log`` (every order
   request it received) at a fast replay speed;
2. per cycle starts the bot (``MODE=testnet``, URLs pointed at the server) and kills it with SIGKILL, either from
   outside after a random delay (during start-up, reconciliation or trading) or from inside at a named moment
   (``CHAOS_KILL_AT``, ``runtime/chaos.py``: after an intent is written and before it is sent, when a fill
   arrives and before it is written, when reconciliation has read the exchange, when an answer arrived);
   meanwhile the market goes on, and resting stops and take-profits fill with nobody listening;
3. stops the server (its state saved), starts it again with a stepped clock (the market stands still: a fair
   comparison), runs the bot once more to reconcile, stops it cleanly;
4. compares: every order of ours on the exchange, and every open order of anyone's, is in the database once (plain
   orders by client order id, orders placed by a triggered conditional order by their order id); no client order id reached the server twice; the
   database's fills equal the exchange's, field by field; its positions equal the exchange's; realized PnL and
   fees summed over the fills agree to the last decimal.

Used by ``tests/chaos/test_chaos.py`` (a fixed seed) and ``benchmarks/chaos_cycles.py`` (as many cycles and seeds as
asked).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from executor.ids import is_our_client_order_id
from marketdata.synthetic import synthetic_candles
from runtime.chaos import ENV as CHAOS_ENV
from runtime.live import LIVE_READY_LINE
from simulator.server.order_log import read_order_log
from tests.main_process import BYTECODE_CACHE, user_environment
from tests.sim_server import BinanceTestClient
from utils.klines_csv import write_klines_csv
from utils.secrets import format_apikey_text

REPO = Path(__file__).resolve().parents[2]
API_KEY = "chaosKey00000000000000000000000000000000000000000000000000000001"
API_SECRET = "chaosSecret000000000000000000000000000000000000000000000000001"
ADMIN_TOKEN = "chaos-admin"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
START_MS = 1_681_948_800_000  # 2023-04-20 00:00 UTC
KILL_POINTS = ("intent_persisted", "request_answered", "fill_received", "reconcile_read")
#: Faults switched on during a cycle, through the server's admin endpoint (docs/simulator.md).
FAULTS: tuple[dict[str, Any], ...] = (
    {"fault": "drop_connections", "route": "market"},
    {"fault": "drop_connections", "route": "private"},
    {"fault": "expire_listen_key", "apiKey": API_KEY},
    {"fault": "unknown_error", "count": 1, "executed": True, "method": "POST", "path": "/fapi/v1/order"},
    {"fault": "unknown_error", "count": 1, "executed": False, "method": "POST", "path": "/fapi/v1/order"},
    {"fault": "time_out", "count": 1, "executed": True, "method": "POST", "path": "/fapi/v1/order", "holdMs": 3000},
    {"fault": "service_unavailable", "count": 2, "method": "POST"},
    {"fault": "restart_server"},  # not a switch: the harness stops the server and starts it again
    {"fault": "lock_database", "seconds": 12},  # the harness holds the bot's SQLite file locked (writes refused)
)

CONFIG = """
[risk]
daily_loss_limit_usdt = 100000
max_new_positions_per_day = 10000
max_symbol_exposure_usdt = 100000
order_ttl_sec = 120
max_consecutive_losses = 10000
funding_blackout_minutes = 0

[[symbols]]
symbol = "BTCUSDT"
leverage = 5
margin_type = "CROSSED"

[[symbols.strategies]]
name = "ema_crossover"
params = { fast = 2, slow = 4 }
sizing = { mode = "fixed_notional", value = 200 }
stop_loss_pct = 0.2
take_profit_pct = 0.2

[[symbols]]
symbol = "ETHUSDT"
leverage = 5
margin_type = "CROSSED"

[[symbols.strategies]]
name = "rsi_reversion"
params = { period = 3, oversold = 45, overbought = 55 }
sizing = { mode = "fixed_notional", value = 100 }
entry_order_type = "LIMIT"
limit_offset_bps = 2
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Cycle:
    how: str  # "outside after 1.23 s" or "inside at fill_received:2"
    exit_code: int | None
    seconds: float
    fault: str = ""  # the fault switched on during the cycle, if any


@dataclass
class Comparison:
    exchange_orders: int = 0
    exchange_fills: int = 0
    orders_sent: int = 0
    lost_orders: list[str] = field(default_factory=list)
    lost_fills: list[str] = field(default_factory=list)
    duplicated_sends: list[str] = field(default_factory=list)
    extra_fills: list[str] = field(default_factory=list)
    differing_fills: list[str] = field(default_factory=list)
    position_differences: list[str] = field(default_factory=list)
    totals: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # name -> (database, exchange)
    trading_states: dict[str, str] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return len(self.lost_orders) + len(self.lost_fills)

    @property
    def duplicated(self) -> int:
        return len(self.duplicated_sends) + len(self.extra_fills)

    @property
    def problems(self) -> list[str]:
        found = [*(f"lost order {x}" for x in self.lost_orders), *(f"lost fill {x}" for x in self.lost_fills),
                 *(f"client order id sent {x}" for x in self.duplicated_sends),
                 *(f"fill only in the database {x}" for x in self.extra_fills), *self.differing_fills,
                 *self.position_differences]
        found.extend(f"{name}: database {ours} != exchange {theirs}" for name, (ours, theirs) in self.totals.items()
                     if ours != theirs)
        return found


class ChaosRun:
    def __init__(self, folder: Path, *, seed: int, minutes: int = 1500, speed: float = 180.0) -> None:
        self.folder = folder
        self.seed = seed
        self.rng = random.Random(seed)
        self.speed = speed
        self.port = free_port()
        self.server: subprocess.Popen[str] | None = None
        self.cycles: list[Cycle] = []
        folder.mkdir(parents=True, exist_ok=True)
        self.data = []
        for number, symbol in enumerate(SYMBOLS):
            path = folder / f"{symbol}-1m-2023-04-20.csv"
            write_klines_csv(path, synthetic_candles(symbol, start_ms=START_MS, count=minutes, seed=seed + number))
            self.data.append(path)
        (folder / "symbols.toml").write_text(CONFIG, encoding="utf-8")
        apikey = folder / ".apikey"
        apikey.write_text(format_apikey_text(API_KEY, API_SECRET), encoding="utf-8")
        apikey.chmod(0o600)
        (folder / "empty.env").touch()

    # ------------------------------------------------------------------------------------------- processes
    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_server(self, *, speed: float | None = None) -> None:
        command = [sys.executable, "main.py", "simserver", "--data", *map(str, self.data), "--port", str(self.port),
                   "--speed", str(self.speed if speed is None else speed), "--api-key", API_KEY, "--api-secret",
                   API_SECRET, "--state", str(self.folder / "server-state.json"), "--order-log",
                   str(self.folder / "orders-received.jsonl"), "--admin-token", ADMIN_TOKEN, "--history", "30"]
        log = open(self.folder / "server.log", "a", encoding="utf-8")  # noqa: SIM115 - the child holds it
        self.server = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log, text=True,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1",
                                            "PYTHONPYCACHEPREFIX": str(BYTECODE_CACHE)})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.server.poll() is not None:
                    log_text = (self.folder / "server.log").read_text()
                    raise RuntimeError(f"the simulator server exited: {log_text}") from None
                time.sleep(0.1)
        raise RuntimeError("the simulator server did not start within 30 s")

    def stop_server(self) -> None:
        if self.server is None:
            return
        self.server.send_signal(signal.SIGINT)
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        self.server = None

    def bot_environment(self, kill_at: str | None = None) -> dict[str, str]:
        env = user_environment(self.folder)  # no settings of the developer's, compiled modules cached
        env.pop(CHAOS_ENV, None)
        env.update({
            "MODE": "testnet", "REST_BASE_URL": self.rest_url, "WS_MARKET_URL": f"ws://127.0.0.1:{self.port}/market",
            "WS_PRIVATE_URL": f"ws://127.0.0.1:{self.port}/private", "APIKEY_FILE": str(self.folder / ".apikey"),
            "SYMBOLS_FILE": str(self.folder / "symbols.toml"), "DB_URL": f"sqlite:///{self.folder / 'bot.db'}",
            "HEARTBEAT_INTERVAL_SEC": "1", "UNKNOWN_OUTCOME_WINDOW_SEC": "30",
        })
        if kill_at is not None:
            env[CHAOS_ENV] = kill_at
        return env

    def _bot(self, kill_at: str | None = None) -> subprocess.Popen[str]:
        out = open(self.folder / "bot.log", "a", encoding="utf-8")  # noqa: SIM115 - the child holds it
        out.write(f"\n===== start {time.strftime('%H:%M:%S')} kill_at={kill_at}\n")
        out.flush()
        return subprocess.Popen([sys.executable, "main.py", "--env-file", str(self.folder / "empty.env"), "run"],
                                cwd=REPO, env=self.bot_environment(kill_at), stdout=out, stderr=subprocess.STDOUT,
                                text=True)

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(self.rest_url + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"X-Admin-Token": ADMIN_TOKEN, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read() or b"null")

    def _fault_later(self, fault: dict[str, Any], after: float) -> threading.Thread:
        def switch_on() -> None:
            time.sleep(after)
            if fault["fault"] == "restart_server":
                self.stop_server()
                self.start_server()
            elif fault["fault"] == "lock_database":
                self._lock_database(float(fault["seconds"]))
            else:
                with contextlib.suppress(OSError):  # the server was restarting: the fault is simply missed
                    self.admin("POST", "/admin/faults", fault)

        thread = threading.Thread(target=switch_on, daemon=True)
        thread.start()
        return thread

    def _ready(self, bot: subprocess.Popen[str], timeout: float) -> bool:
        """Wait until this start of the bot says it trades (``True``), or it exits or ``timeout`` passes."""
        log = self.folder / "bot.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and bot.poll() is None:
            text = log.read_text(encoding="utf-8", errors="replace")
            if LIVE_READY_LINE in text[text.rfind("===== start"):]:
                return True
            time.sleep(0.05)
        return False

    @staticmethod
    def _kill(bot: subprocess.Popen[str], within: float) -> int | None:
        """The bot's exit code if it ends within ``within`` seconds (by its own kill point, say), else SIGKILL."""
        try:
            return bot.wait(timeout=max(within, 0.01))
        except subprocess.TimeoutExpired:
            bot.kill()
            bot.wait()
            return None

    def _lock_database(self, seconds: float) -> None:
        """The database briefly unavailable: another process holds the write lock for ``seconds`` (longer than
        SQLite's busy timeout, so the bot's writes fail and are retried, its batches held)."""
        db = sqlite3.connect(self.folder / "bot.db", timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN EXCLUSIVE")
            time.sleep(seconds)
            db.execute("ROLLBACK")
        finally:
            db.close()

    def cycle(self) -> Cycle:
        """One start and one SIGKILL: from inside at a named moment, or from outside (during start-up or while
        trading, after a random delay); in some cycles a fault (a dropped stream, an expired listenKey, a 503 or
        timeout on an order, the server restarted, the database locked) is switched on while the bot trades."""
        started = time.monotonic()
        fault = self.rng.choice(FAULTS) if self.rng.random() < 0.4 else None
        inside = self.rng.random() < 0.5
        during_start = not inside and self.rng.random() < 0.3
        point = self.rng.choice(KILL_POINTS)
        nth = self.rng.randint(1, 4 if point != "reconcile_read" else 2)
        delay = self.rng.uniform(0.2, 2.0) if during_start else self.rng.uniform(0.2, 4.0)
        fault_after = self.rng.uniform(0.2, 2.0)
        bot = self._bot(f"{point}:{nth}" if inside else None)
        switcher = None
        if during_start:
            how = f"outside {delay:.2f} s after the start"
            code = self._kill(bot, delay)
        else:
            ready = self._ready(bot, 30)
            if fault is not None and ready:
                switcher = self._fault_later(fault, fault_after)
            if inside:
                how = f"inside at {point}:{nth}"
                code = self._kill(bot, 6)
                if code is None:
                    how += " (not reached within 6 s of trading; killed from outside)"
            else:
                how = f"outside {delay:.2f} s into trading"
                code = self._kill(bot, delay)
            if not ready:
                how += " (it never got to trading)"
        if code is not None and code != -9:
            how += f" (it exited on its own with {code})"
        if switcher is not None:
            switcher.join()
            with contextlib.suppress(OSError):
                self.admin("DELETE", "/admin/faults")  # a fault the bot never met does not leak into the next cycle
        described = "" if switcher is None or fault is None else ",".join(
            f"{k}={v}" for k, v in fault.items() if k != "apiKey")
        done = Cycle(how, code, time.monotonic() - started, described)
        self.cycles.append(done)
        return done

    def settle(self, *, seconds: float = 4.0) -> str:
        """Market frozen (server restarted, stepped clock): one clean run that reconciles, then a clean stop."""
        self.stop_server()
        self.start_server(speed=0)
        bot = self._bot()
        deadline = time.monotonic() + 60
        log = self.folder / "bot.log"
        while time.monotonic() < deadline:
            text = log.read_text(encoding="utf-8")
            last = text[text.rfind("===== start"):]
            if LIVE_READY_LINE in last or bot.poll() is not None:
                break
            time.sleep(0.2)
        time.sleep(seconds)
        bot.send_signal(signal.SIGINT)
        try:
            bot.wait(timeout=60)
        except subprocess.TimeoutExpired:
            bot.kill()
            bot.wait()
        text = log.read_text(encoding="utf-8")
        return text[text.rfind("===== start"):]

    def close(self) -> None:
        self.stop_server()

    # ------------------------------------------------------------------------------------------- comparison
    def compare(self) -> Comparison:
        return asyncio.run(self._compare())

    async def _compare(self) -> Comparison:
        result = Comparison()
        sent = Counter(entry.client_order_id for entry in read_order_log(self.folder / "orders-received.jsonl"))
        result.orders_sent = sum(sent.values())
        result.duplicated_sends = [f"{cid} x{count}" for cid, count in sorted(sent.items()) if count > 1]
        async with BinanceTestClient(self.rest_url, API_KEY, API_SECRET) as client:
            orders = [o for symbol in SYMBOLS for o in await _every(client, "/fapi/v1/allOrders", symbol, "orderId")]
            trades = [t for symbol in SYMBOLS for t in await _every(client, "/fapi/v1/userTrades", symbol, "fromId")]
            positions = (await client.signed("GET", "/fapi/v3/positionRisk")).body
        db = sqlite3.connect(self.folder / "bot.db")
        try:
            known_cids = {row[0] for row in db.execute("select client_order_id from orders")}
            triggered = {row[0] for row in db.execute("select actual_order_id from orders where actual_order_id "
                                                      "is not null")}
            fills = {(row[0], int(row[1])): row[2:] for row in db.execute(
                "select symbol, trade_id, order_id, price, quantity, commission, realized_pnl from fills")}
            held = {(row[0], row[1]): Decimal(row[2]) for row in db.execute(
                "select symbol, position_side, amount from positions")}
            result.trading_states = {row[0]: row[1] for row in db.execute("select scope, state from risk_state")}
        finally:
            db.close()
        result.exchange_orders = len(orders)
        for order in orders:
            if not is_our_client_order_id(order["clientOrderId"]) and order["status"] not in ("NEW",
                                                                                            "PARTIALLY_FILLED"):
                continue  # someone else's finished order: reconciliation records its fills, not the order
            if order["clientOrderId"] not in known_cids and order["orderId"] not in triggered:
                result.lost_orders.append(f"{order['symbol']} {order['clientOrderId']} ({order['status']})")
        result.exchange_fills = len(trades)
        exchange_fills = {}
        for trade in trades:
            key = (trade["symbol"], int(trade["id"]))
            exchange_fills[key] = (int(trade["orderId"]), Decimal(trade["price"]), Decimal(trade["qty"]),
                                   Decimal(trade["commission"]), Decimal(trade["realizedPnl"]))
        for key, theirs in sorted(exchange_fills.items()):
            ours = fills.get(key)
            if ours is None:
                result.lost_fills.append(f"{key[0]} trade {key[1]}")
                continue
            mine = (int(ours[0]), Decimal(ours[1]), Decimal(ours[2]), Decimal(ours[3]), Decimal(ours[4]))
            if mine != theirs:
                result.differing_fills.append(f"{key[0]} trade {key[1]}: database {mine}, exchange {theirs}")
        result.extra_fills = [f"{k[0]} trade {k[1]}" for k in sorted(set(fills) - set(exchange_fills))]
        for position in positions:
            key = (position["symbol"], position["positionSide"])
            theirs_amount = Decimal(position["positionAmt"])
            ours_amount = held.get(key, Decimal(0))
            if ours_amount != theirs_amount:
                result.position_differences.append(f"position {key[0]} {key[1]}: database {ours_amount}, "
                                                   f"exchange {theirs_amount}")
        for name, index in (("realized PnL", 4), ("fees", 3)):
            ours_total = sum((Decimal(v[index]) for v in fills.values()), Decimal(0))
            theirs_total = sum((v[index] for v in exchange_fills.values()), Decimal(0))
            result.totals[name] = (ours_total, theirs_total)
        return result


async def _every(client: BinanceTestClient, path: str, symbol: str, cursor: str) -> list[dict[str, Any]]:
    """Every row of a paged listing (allOrders by orderId, userTrades by fromId), oldest first."""
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"symbol": symbol, "limit": 1000, cursor: 0}
    while True:
        reply = await client.signed("GET", path, params)
        assert reply.status == 200, reply.body
        page = reply.body
        rows.extend(page)
        if len(page) < 1000:
            return rows
        last = page[-1]["orderId" if cursor == "orderId" else "id"]
        params[cursor] = int(last) + 1
