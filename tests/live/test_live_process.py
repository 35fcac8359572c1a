"""The whole bot as a separate process (``MODE=testnet``), pointed at a simulator server the test starts, trading
real replayed candles through every fault the issue names, then audited against the server's own records.

One server and one bot process share the session (it keeps the file fast): rate limits (429 then 418) first,
while the real-time minute is about to end; then WebSocket drops mid-candle, a silent connection, a listenKey
expiry while orders fill, POST timeouts and 503 "Unknown error" with and without execution, the server clock 3 s
ahead and behind, a symbol that stops TRADING, and -1008 on an exit. At the end the market is frozen, the bot is
stopped with SIGTERM, and the exchange's orders, fills and positions must equal the database's; the candles table
must equal the server's candles, none missed and none doubled.
"""

from __future__ import annotations

import asyncio
import signal
import time
from decimal import Decimal
from pathlib import Path

import pytest

from database.repository import Repository
from runtime.live import LIVE_READY_LINE
from simulator.server import ServerConfig, SimServer
from simulator.server.ratelimit import RateLimitConfig
from tests.live.helpers import BotProcess, PausableClock, WeightLog, bot_environment, root_id, until
from tests.sim_server import TEST_API_KEY, TEST_API_SECRET, TEST_CREDENTIALS, BinanceTestClient
from utils.clock import SystemClock
from utils.klines_csv import load_klines_csv

SPEED = 120  # market time at 120 x real time: a 1m candle closes every 0.5 s
SYMBOLS = ("BTCUSDT", "ETHUSDT")
MINUTE_MS = 60_000
WEIGHT_LIMIT = 2400


@pytest.fixture(scope="module")
def real_candles(usdm_1m_dir: Path):
    """Two real days of BTCUSDT and ETHUSDT 1m klines (data.binance.vision, 2023-04-20 on)."""
    result = {}
    for symbol in SYMBOLS:
        path = usdm_1m_dir / f"{symbol}_usdm_1m_2023-04-20_2023-04-26.csv"
        if not path.is_file():
            pytest.skip(f"needs {path}")
        result[symbol] = load_klines_csv(path)[:2 * 1440]
    return result


def _server_offset_ms(target_second: float, after_sec: float) -> int:
    """A server clock offset so that ``after_sec`` from now its real-time clock is at ``target_second`` of a minute
    (the 429's Retry-After, to the end of the minute, then stays short)."""
    then = time.time() + after_sec
    return int(((target_second - then % 60) % 60) * 1000)


def _fills(server: SimServer, symbol: str) -> list:
    return server.exchange(TEST_API_KEY).user_trades(symbol, from_id=1, limit=1000)


def _order_count(server: SimServer) -> int:
    """Orders the exchange accepted from the bot, each a signed request that got through (not the orders that
    triggered stop-loss / take-profit orders placed by themselves)."""
    exchange = server.exchange(TEST_API_KEY)
    return sum(1 for symbol in SYMBOLS for order in exchange.all_orders(symbol, order_id=1, limit=1000)
               if not order.client_order_id.endswith(("-sl", "-tp")))


def _all_fill_count(server: SimServer) -> int:
    return sum(len(_fills(server, symbol)) for symbol in SYMBOLS)


async def _spend_weight(client: BinanceTestClient, weights: WeightLog, server: SimServer) -> None:
    """Spend the IP's request weight to exactly this minute's limit (klines of a symbol the bot does not trade,
    10 each, then the time, 1 each): the bot's next weighed request crosses it."""
    used, path, params, weight = 0, "/fapi/v1/klines", {"symbol": "LTCUSDT", "interval": "1m", "limit": 1500}, 10
    while used < WEIGHT_LIMIT:
        if used > WEIGHT_LIMIT - 10:
            path, params, weight = "/fapi/v1/time", {}, 1
        weights.note_test_request(server.gateway.now_ms(), weight)
        reply = await client.public("GET", path, params)
        assert reply.status == 200, reply.body
        used = int(reply.headers["X-MBX-USED-WEIGHT-1M"])


async def test_a_live_session_through_every_fault_matches_the_exchange(real_candles, tmp_path: Path) -> None:
    elapsed = PausableClock()
    # The bot is trading about 9 s after this; the server's minute then ends some 9 s later.
    wall = SystemClock(_server_offset_ms(target_second=51, after_sec=9))
    server = SimServer(ServerConfig(candles=real_candles, speed=SPEED, credentials=[TEST_CREDENTIALS],
                                    history_minutes=60, rate_limits=RateLimitConfig(first_ban_ms=12000)),
                       wall_clock=wall, elapsed_clock=elapsed)
    weights = WeightLog()
    weights.install(server)
    await server.start()
    env = bot_environment(tmp_path, server, RECV_WINDOW_MS="2000", REST_TIMEOUT_SEC="1", WS_SILENCE_SEC="1",
                          WS_MAX_BACKOFF_SEC="1", EXCHANGE_INFO_REFRESH_SEC="1")
    bot = BotProcess(env, tmp_path)
    try:
        await bot.start()
        await bot.wait_for_line(LIVE_READY_LINE, timeout=30)
        await until(lambda: _all_fill_count(server) >= 2, 15, "the first fills", bot)

        # ---- 429 then 418. Close to the end of the server's minute the test spends the IP's weight to the limit
        # and expires the listenKey: the bot's request for a new one crosses the limit (429, Retry-After to the
        # minute's end); one request of the test during that back-off gets the IP banned for 12 s, which the bot
        # meets (418) when its back-off is over.
        second = lambda: server.gateway.now_ms() % MINUTE_MS / 1000  # noqa: E731
        await until(lambda: 52 <= second() < 54, 70, "second 52 of the server's minute")
        async with BinanceTestClient(server.rest_url) as client:
            await _spend_weight(client, weights, server)
            server.faults.expire_listen_key()
            bot_429 = await until(lambda: next((a for a in weights.admissions if a.status == 429), None), 10,
                                  "the bot's requests crossing the limit (429)", bot)
            weights.note_test_request(server.gateway.now_ms(), 1)
            assert (await client.public("GET", "/fapi/v1/time")).status == 418  # before Retry-After: banned
        window_end = bot_429.time - bot_429.time % MINUTE_MS + MINUTE_MS
        bot_418 = await until(lambda: next((a for a in weights.admissions if a.status == 418 and a.time > window_end),
                                           None), 15, "the bot meeting the ban (418)", bot)
        await until(lambda: any(a.status == 200 and a.time > bot_418.time for a in weights.admissions), 20,
                    "the bot's requests answered again after the ban", bot)
        in_back_off = weights.between(bot_429.time, window_end - 5)
        assert len(in_back_off) == 1, f"the bot sent during its 429 back-off (one is the test's): {in_back_off}"
        # (requests released together when the back-off ended are in flight before the 418 comes back)
        ban_end = bot_418.time + bot_418.retry_after_sec * 1000 - 1000
        during_ban = weights.between(bot_418.time + 200, ban_end)
        assert not during_ban, f"the bot sent during the ban: {during_ban} (418 at {bot_418})"
        orders_after_ban = _order_count(server)
        await until(lambda: _order_count(server) > orders_after_ban, 20, "orders again after the ban", bot)
        assert bot.heartbeat()["rest"]["rate_limits"]["back_offs"] >= 2

        # ---- market WebSocket dropped mid-candle, then a connection that goes silent without closing
        await until(lambda: 20 <= server.market_clock.now_ms() % MINUTE_MS / 1000 <= 40, 5, "the middle of a minute")
        assert server.faults.drop_connections("market") >= 1
        await until(lambda: _market(bot).get("connections", [{}])[0].get("reconnects", 0) >= 1, 10,
                    "the market stream reconnecting after the drop", bot)
        reconnects = _market(bot)["connections"][0]["reconnects"]
        assert server.faults.silence_connections("market") >= 1
        await until(lambda: _market(bot)["connections"][0]["reconnects"] > reconnects, 10,
                    "the silent market connection replaced", bot)
        await until(lambda: _market(bot).get("missed_candle_backfills", 0) >= 1, 10, "candles back-filled", bot)

        # ---- listenKey expiry while orders fill: the new key comes 1.5 s (3 market minutes) later
        gap_fills = 0
        for _attempt in range(4):
            interruptions = _user(bot).get("interruptions", 0)
            server.faults.delay(1500, count=1, method="POST", path="/fapi/v1/listenKey")
            before = _all_fill_count(server)
            assert server.faults.expire_listen_key() >= 1
            await until(lambda i=interruptions: _user(bot).get("interruptions", 0) > i, 10,
                        "the expiry reported to the core", bot)
            gap_fills += _all_fill_count(server) - before
            if gap_fills:
                break
        assert gap_fills, "no order filled while the listenKey was being replaced (the check proved nothing)"

        # ---- POST /order: timeouts and 503 "Unknown error", with and without execution
        unknown_before = bot.heartbeat()["executor"]["outcome_unknown"]
        for arm in (lambda: server.faults.time_out(1, executed=True, method="POST", path="/fapi/v1/order"),
                    lambda: server.faults.time_out(1, executed=False, method="POST", path="/fapi/v1/order"),
                    lambda: server.faults.unknown_error(1, executed=True, method="POST", path="/fapi/v1/order"),
                    lambda: server.faults.unknown_error(1, executed=False, method="POST", path="/fapi/v1/order")):
            fault = arm()
            await until(lambda f=fault: f.remaining == 0, 20, f"an order meeting {fault.kind}", bot)
        await until(lambda: bot.heartbeat()["executor"]["outcome_unknown"] >= unknown_before + 4, 10,
                    "four outcomes unknown", bot)

        # ---- the server clock 3 s ahead, then 3 s behind (RECV_WINDOW_MS=2000: both are refused as -1021)
        for shift in (3000, -3000):
            server.faults.shift_clock(shift)
            await until(lambda s=shift: abs(bot.heartbeat()["rest"]["time_offset_ms"] - wall.offset_ms - s) < 500,
                        20, f"the bot re-measuring the server clock shifted {shift} ms", bot)
            count = _order_count(server)
            await until(lambda c=count: _order_count(server) >= c + 2, 20, f"orders with the clock {shift} ms", bot)
        server.faults.shift_clock(0)

        # ---- ETHUSDT stops TRADING (exchangeInfo read again every second): no new ETH entries
        eth = next(s for s in server.exchange_info_document["symbols"] if s["symbol"] == "ETHUSDT")
        eth["status"] = "SETTLING"
        await until(lambda: bot.heartbeat().get("exchange_info", {}).get("symbols_not_trading") == {
            "ETHUSDT": "SETTLING"}, 10, "ETHUSDT seen as not trading", bot)
        settling = (server.market_clock.now_ms(), 0)
        await until(lambda: _refused_for_status(tmp_path, "ETHUSDT"), 20, "an ETHUSDT signal refused", bot)
        settling = (settling[0], server.market_clock.now_ms())
        eth["status"] = "TRADING"

        # ---- -1008 on an exit: retried until flat
        throttled_exit = None
        for _attempt in range(6):
            await until(lambda: any(p.amount for p in server.exchange(TEST_API_KEY).positions()), 20,
                        "an open position", bot)
            fault = server.faults.throttle(2, exempt_reduce_only=False, method="POST", path="/fapi/v1/order")
            await until(lambda f=fault: f.remaining == 0, 30, "orders meeting -1008", bot)
            throttled_exit = _throttled_exit(tmp_path)
            if throttled_exit:
                break
        assert throttled_exit, "no exit met the -1008 (the check proved nothing)"
        await until(lambda: _exit_retried_and_filled(tmp_path, throttled_exit), 20, "the throttled exit retried "
                    "until it filled", bot)

        # ---- freeze the market, stop with SIGTERM, audit
        await asyncio.sleep(1.0)
        elapsed.pause()
        await asyncio.sleep(1.0)  # the last events reach the bot
        code = await bot.stop(signal.SIGTERM)
        assert code == 0, bot.describe()
        heartbeat = bot.heartbeat()
        assert heartbeat["process"]["state"] == "stopped"
        _audit(tmp_path, server, real_candles, bot, settling)
        bot_weight = weights.bot_weight()
        assert max(bot_weight.values()) <= WEIGHT_LIMIT, f"the bot's own weight per minute: {bot_weight}"
    finally:
        await bot.kill()
        await server.stop()


def _market(bot: BotProcess) -> dict:
    return bot.heartbeat().get("streams", {}).get("market", {})


def _user(bot: BotProcess) -> dict:
    return bot.heartbeat().get("streams", {}).get("user", {})


def _repository(folder: Path) -> Repository:
    return Repository.open(f"sqlite:///{folder / 'trader.db'}", apply_migrations=False)


def _throttled_exit(folder: Path) -> str | None:
    repository = _repository(folder)
    try:
        for record in repository.all_orders():
            if record.reject_code == -1008 and record.reduce_only:
                return root_id(record.client_order_id)
    finally:
        repository.close()
    return None


def _refused_for_status(folder: Path, symbol: str) -> bool:
    repository = _repository(folder)
    try:
        return any(r.outcome is not None and r.outcome.value == "REFUSED_BY_RISK" and "SETTLING" in (
            r.outcome_detail or "") for r in repository.signal_records(symbol=symbol))
    finally:
        repository.close()


def _exit_retried_and_filled(folder: Path, root: str) -> bool:
    repository = _repository(folder)
    try:
        tries = [r for r in repository.all_orders() if root_id(r.client_order_id) == root]
        return any(r.status is not None and r.status.value == "FILLED" for r in tries) and len(tries) >= 2
    finally:
        repository.close()


def _audit(folder: Path, server: SimServer, real_candles, bot: BotProcess, settling: tuple[int, int]) -> None:
    exchange = server.exchange(TEST_API_KEY)
    repository = _repository(folder)
    try:
        records = {r.client_order_id: r for r in repository.all_orders()}
        for symbol in SYMBOLS:
            # orders: every order the exchange holds is in the database, with its status and filled quantity
            orders = exchange.all_orders(symbol, order_id=1, limit=1000)
            assert orders, f"no {symbol} orders at all"
            for order in orders:
                record = records.get(order.client_order_id)
                assert record is not None, f"{order.client_order_id} is on the exchange, not in the database"
                if record.is_algo:
                    continue  # the order a triggered stop placed carries the stop's id; its fills are checked below
                assert (record.status, record.executed_quantity) == (order.status, order.executed_quantity), (
                    f"{order.client_order_id}: database {record.status} {record.executed_quantity}, exchange "
                    f"{order.status} {order.executed_quantity}")
            # no duplicate: whatever the timeouts and retries, what an intent's tries executed together never exceeds
            # what it asked for (an entry executed twice, or an exit resent after it had executed, would)
            executed: dict[str, Decimal] = {}
            for order in orders:
                if not records[order.client_order_id].is_algo:
                    root = root_id(order.client_order_id)
                    executed[root] = executed.get(root, Decimal(0)) + order.executed_quantity
            doubled = {root: (done, records[root].quantity) for root, done in executed.items()
                       if root in records and done > records[root].quantity}
            assert not doubled, f"intents executed more than once (executed, asked): {doubled}"
            # fills
            exchange_fills = {(f.trade_id, f.order_id, f.price, f.quantity) for f in _fills(server, symbol)}
            stored = {(f.trade_id, f.order_id, f.price, f.quantity) for f in repository.all_fills(symbol)}
            assert exchange_fills == stored, (f"{symbol} fills: missing {exchange_fills - stored}, "
                                              f"extra {stored - exchange_fills}")
            # positions
            theirs = {p.position_side: p.amount for p in exchange.positions(symbol) if p.amount}
            ours = {p.position_side: p.amount for p in repository.positions(symbol) if p.amount}
            assert theirs == ours, f"{symbol} positions: exchange {theirs}, database {ours}"
            # candles: every closed candle of the session exactly once, equal to the server's data
            stored_candles = repository.load_candles(symbol, 100_000)
            opens = [c.open_time for c in stored_candles]
            assert opens == list(range(opens[0], opens[-1] + MINUTE_MS, MINUTE_MS)), f"{symbol}: candles missing"
            data = {c.open_time: c for c in real_candles[symbol]}
            for candle in stored_candles:
                want = data[candle.open_time]
                assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
                    want.open, want.high, want.low, want.close, want.volume), f"{symbol} {candle.open_time}"
        # ETHUSDT while SETTLING: no entry decided then
        during = [r.client_order_id for r in records.values() if r.symbol == "ETHUSDT"
                  and r.purpose.value == "entry" and settling[0] <= r.intent_time <= settling[1]]
        assert not during, f"ETHUSDT entries while it was not TRADING: {during}"
    finally:
        repository.close()
    text = (Path(bot.env["LOG_DIR"]) / "trader.log").read_text(encoding="utf-8") + bot.stderr() + "\n".join(
        bot.lines) + (Path(bot.env["STATUS_DIR"]) / "heartbeat.json").read_text(encoding="utf-8")
    assert TEST_API_SECRET not in text and TEST_API_KEY not in text
    assert TEST_API_SECRET.encode() not in (folder / "trader.db").read_bytes()
