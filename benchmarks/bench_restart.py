"""Restart to reconciled: the bot started (a new process) against an account with 50 open orders, 10 positions and
1,000 fills it has not recorded, until its start-up reconciliation has finished and it trades.

    uv run python benchmarks/bench_restart.py [--repeat 5]

The simulator server runs in this process (stepped market clock: nothing moves while the bot starts) with ten
symbols. Its account holds, per symbol, 100 fills (market orders, alternately bought and sold, ending long 0.002)
and 5 resting limit orders far from the price. The database (copied fresh for every start) knows the 50 open orders
as acknowledged (the bot placed them before it stopped) and none of the 1,000 fills. So the start-up reconciliation
looks up 50 orders, reads open orders, open conditional orders, positions and the account, pages userTrades for ten
symbols, stores and books 1,000 fills and 10 positions, and compares. Figures (best and median of ``--repeat``):
  * process start to "reconciliation finished" (the books match the exchange: the target is <= 1.5 s);
  * process start to "Trading." (streams connected as well);
and the same for a baseline measured in the same run: the same bot, the same server, an empty account and a fresh
database (what any start costs: interpreter, imports, settings, database, time sync, exchangeInfo, account
settings, warm-up), plus ``main.py --help`` (the interpreter and imports alone).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from database.repository import Repository  # noqa: E402
from executor.ids import client_order_id  # noqa: E402
from marketdata.synthetic import synthetic_candles  # noqa: E402
from simulator.exchange_info import load_exchange_info  # noqa: E402
from simulator.server import Credentials, ServerConfig, SimServer  # noqa: E402
from simulator.server.ratelimit import RateLimitConfig  # noqa: E402
from utils.domain import IntentState, OrderIntent, OrderPurpose, OrderType, Side, TimeInForce  # noqa: E402

API_KEY = "benchKey000000000000000000000000000000000000000000000000000000001"
API_SECRET = "benchSecret00000000000000000000000000000000000000000000000000001"
SYMBOLS = ["BTCUSDT"] + [f"BENCH{letter}USDT" for letter in "ABCDEFGHI"]
FILLS_PER_SYMBOL = 100
OPEN_PER_SYMBOL = 5
START_MS = 1_681_948_800_000
FINISHED = "reconciliation finished"
READY = "Trading. Ctrl-C stops"


def exchange_info() -> dict:
    """The shipped exchangeInfo with nine more symbols, copies of BTCUSDT's filters."""
    document = load_exchange_info()
    btc = next(entry for entry in document["symbols"] if entry["symbol"] == "BTCUSDT")
    for symbol in SYMBOLS[1:]:
        clone = copy.deepcopy(btc)
        clone["symbol"] = clone["pair"] = symbol
        clone["baseAsset"] = symbol.removesuffix("USDT")
        document["symbols"].append(clone)
    return document


def symbols_toml() -> str:
    parts = ["[risk]\ndaily_loss_limit_usdt = 1000\nmax_new_positions_per_day = 100\nmax_symbol_exposure_usdt = "
             "100000\norder_ttl_sec = 86400\nmax_consecutive_losses = 100\nfunding_blackout_minutes = 0\n"]
    for symbol in SYMBOLS:
        parts.append(f'[[symbols]]\nsymbol = "{symbol}"\nleverage = 5\nmargin_type = "CROSSED"\n\n'
                     '[[symbols.strategies]]\nname = "ema_crossover"\nparams = { fast = 12, slow = 26 }\n'
                     'sizing = { mode = "fixed_notional", value = 200 }\n')
    return "\n".join(parts)


def fill_the_account(server: SimServer, db_url: str) -> None:
    """1,000 fills and 10 positions on the exchange; 50 open limit orders there and in the database."""
    exchange = server.accounts[API_KEY].exchange
    repository = Repository.open(db_url)
    try:
        intent_time = server.exchange_clock.now_ms() - 60_000
        for symbol in SYMBOLS:
            for index in range(FILLS_PER_SYMBOL):
                side = Side.BUY if index % 2 == 0 or index >= FILLS_PER_SYMBOL - 2 else Side.SELL
                exchange.new_order(symbol=symbol, side=side, order_type=OrderType.MARKET, quantity=Decimal("0.001"),
                                   client_order_id=f"manual-{symbol}-{index}")
            price = exchange.last_price(symbol)
            for index in range(OPEN_PER_SYMBOL):
                cid = client_order_id("ema_crossover", symbol, START_MS - 60_000 * (index + 1), "entry", "BUY")
                limit = (price * Decimal("0.5")).quantize(Decimal("0.1")) - index
                intent = OrderIntent(cid, symbol, Side.BUY, OrderType.LIMIT, Decimal("0.010"), limit, TimeInForce.GTC,
                                     strategy="ema_crossover", purpose=OrderPurpose.ENTRY)
                repository.save_order_intent(intent, state=IntentState.SENT, time=intent_time)
                order = exchange.new_order(symbol=symbol, side=Side.BUY, order_type=OrderType.LIMIT,
                                           quantity=intent.quantity, price=limit, time_in_force=TimeInForce.GTC,
                                           client_order_id=cid)
                repository.mark_intent(cid, IntentState.ACKNOWLEDGED)
                repository.update_order(order)
    finally:
        repository.close()
    assert len(exchange.open_orders()) == len(SYMBOLS) * OPEN_PER_SYMBOL
    assert sum(1 for p in exchange.positions() if p.amount) == len(SYMBOLS)


async def start_once(folder: Path, server: SimServer, db_template: Path) -> tuple[float, float, str]:
    """One bot start on a fresh copy of the database: seconds to "reconciliation finished" and to "Trading."."""
    db = folder / "bot.db"
    for leftover in (folder / "bot.db-wal", folder / "bot.db-shm"):  # the last start's, not this copy's
        leftover.unlink(missing_ok=True)
    shutil.copy(db_template, db)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONDONTWRITEBYTECODE",)}
    env.update({
        "MODE": "testnet", "REST_BASE_URL": server.rest_url, "WS_MARKET_URL": server.market_ws_url,
        "WS_PRIVATE_URL": server.private_ws_url, "APIKEY_FILE": str(folder / ".apikey"),
        "SYMBOLS_FILE": str(folder / "symbols.toml"), "DB_URL": f"sqlite:///{db}", "STATUS_DIR": str(folder / "s"),
        "LOG_DIR": str(folder / "logs"), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO",
    })
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "main.py", "--env-file", str(folder / "empty.env"), "run", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert process.stdout is not None
    reconciled = ready = 0.0
    lines = []
    while True:
        raw = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        if not raw:
            break
        line = raw.decode(errors="replace")
        lines.append(line)
        now = time.perf_counter() - started
        if FINISHED in line and "reason=start" in line and not reconciled:
            reconciled = now
        if line.startswith(READY):
            ready = now
            process.send_signal(signal.SIGINT)
    await process.wait()
    if not (reconciled and ready):
        raise RuntimeError("the bot did not get to trading:\n" + "".join(lines[-40:]))
    return reconciled, ready, "".join(lines)


def timeline(log: Path, spawned: float) -> str:
    """The start-up steps of one run from its JSON log, as seconds after the process was spawned."""
    steps = []
    for line in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        label = entry.get("step") or ("reconciled" if entry.get("message") == FINISHED else None)
        if label is None or (label == "reconciled" and entry.get("reason") != "start"):
            continue
        moment = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
        steps.append(f"{label} {moment - spawned:.2f}")
    return ", ".join(steps)


async def help_once() -> float:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(sys.executable, "main.py", "--help", cwd=ROOT, env=env,
                                                   stdout=asyncio.subprocess.DEVNULL)
    await process.wait()
    return time.perf_counter() - started


async def measure(repeat: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    try:
        (folder / "symbols.toml").write_text(symbols_toml(), encoding="utf-8")
        (folder / ".apikey").write_text(f"BINANCE_API_KEY={API_KEY}\nBINANCE_API_SECRET={API_SECRET}\n")
        (folder / ".apikey").chmod(0o600)
        (folder / "empty.env").touch()
        candles = {symbol: list(synthetic_candles(symbol, start_ms=START_MS, count=120, seed=number,
                                                  start_price=Decimal("30000"), tick_size=Decimal("0.1")))
                   for number, symbol in enumerate(SYMBOLS)}
        results: dict[str, list[tuple[float, float]]] = {"baseline": [], "loaded": []}
        timelines: dict[str, str] = {}
        for kind in ("baseline", "loaded"):
            # Limits raised: the server counts its IP's weight across the starts, and a real restart is not the
            # twentieth in the same minute (each start here uses about 250 of the 2,400 a minute; the bot would
            # rightly wait for the next window, which is what the one "stalled" start measured before this).
            limits = RateLimitConfig(request_weight_per_minute=10_000_000, orders_per_10s=10_000_000,
                                     orders_per_minute=10_000_000)
            server = SimServer(ServerConfig(candles=candles, speed=0, credentials=[Credentials(API_KEY, API_SECRET)],
                                            exchange_info=exchange_info(), history_minutes=60,
                                            balance=Decimal("1000000"), rate_limits=limits))
            await server.start()
            try:
                template = folder / f"{kind}-template.db"
                Repository.open(f"sqlite:///{template}").close()
                if kind == "loaded":
                    fill_the_account(server, f"sqlite:///{template}")
                for _ in range(repeat):
                    (folder / "logs" / "trader.log").unlink(missing_ok=True)
                    spawned = time.time()
                    reconciled, ready, output = await start_once(folder, server, template)
                    results[kind].append((reconciled, ready))
                timelines[kind] = timeline(folder / "logs" / "trader.log", spawned)
                if kind == "loaded":
                    assert "problems=0" in output, output[-3000:]
                    check = Repository.open(f"sqlite:///{folder / 'bot.db'}")
                    try:
                        fills = len(check.all_fills())
                    finally:
                        check.close()
                    assert fills == len(SYMBOLS) * FILLS_PER_SYMBOL, fills
            finally:
                await server.stop()
        helps = [await help_once() for _ in range(repeat)]
        print(f"restart to reconciled, {repeat} starts each (seconds; best / median)")
        print(f"  {'':44} {'reconciled':>17} {'trading':>17}")
        for kind, label in (("loaded", "50 open orders, 10 positions, 1,000 fills"),
                            ("baseline", "baseline: empty account, fresh database")):
            rec = [r for r, _ in results[kind]]
            trade = [t for _, t in results[kind]]
            print(f"  {label:44} {min(rec):7.3f} / {statistics.median(rec):7.3f} "
                  f"{min(trade):7.3f} / {statistics.median(trade):7.3f}")
        print(f"  {'baseline: main.py --help (interpreter, imports)':44} {min(helps):7.3f} / "
              f"{statistics.median(helps):7.3f}")
        for kind, line in timelines.items():
            print(f"  where the last {kind} start's time went (s after the process started): {line}")
        loaded = min(r for r, _ in results["loaded"])
        base = min(r for r, _ in results["baseline"])
        print(f"  the reconciliation work itself: {loaded - base:.3f} s (loaded - baseline, best of each); "
              f"ratio loaded / baseline {loaded / base:.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(measure(args.repeat))


if __name__ == "__main__":
    main()
