"""``--state FILE``: orders, positions, trades, ids, listenKeys and market time survive a restart of the server,
in-process and as the ``main.py simserver`` command stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from simulator.server import ServerConfig, SimServer
from simulator.state import StateError
from tests.sim_server import (
    OTHER_CREDENTIALS,
    TEST_API_KEY,
    TEST_API_SECRET,
    TEST_CREDENTIALS,
    BinanceTestClient,
    default_candles,
    manual_wall_clock,
)
from utils.klines_csv import write_klines_csv

REPO = Path(__file__).resolve().parents[3]
LIMIT = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
         "price": "20000", "newClientOrderId": "kept-1"}
MARKET = {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.100"}


async def test_an_exchange_that_remembers(tmp_path: Path):
    state_file = tmp_path / "server-state.json"
    config = ServerConfig(candles=default_candles(), credentials=[TEST_CREDENTIALS], state_file=state_file)
    first = SimServer(config)
    await first.start()
    async with BinanceTestClient(first.rest_url) as client:
        resting = (await client.signed("POST", "/fapi/v1/order", LIMIT)).body
        await client.signed("POST", "/fapi/v1/order", MARKET)
        algo = (await client.signed("POST", "/fapi/v1/algoOrder", {
            "algoType": "CONDITIONAL", "symbol": "ETHUSDT", "side": "BUY", "type": "STOP_MARKET",
            "triggerPrice": "5000", "closePosition": "true"})).body
        key = (await client.raw("POST", "/fapi/v1/listenKey")).body["listenKey"]
    await first.advance(5 * 60_000)
    market_time = first.market_clock.now_ms()
    trades_before = first.exchange().user_trades("ETHUSDT")
    await first.stop()
    saved = json.loads(state_file.read_text())
    assert TEST_API_SECRET not in state_file.read_text()
    assert saved["market_time"] == market_time and list(saved["accounts"]) == [TEST_API_KEY]

    second = SimServer(config)
    await second.start()
    try:
        assert second.market_clock.now_ms() == market_time
        async with BinanceTestClient(second.rest_url) as client:
            found = await client.signed("GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "kept-1"})
            positions = await client.signed("GET", "/fapi/v3/positionRisk")
            algos = await client.signed("GET", "/fapi/v1/openAlgoOrders")
            trades = await client.signed("GET", "/fapi/v1/userTrades", {"symbol": "ETHUSDT"})
            keepalive = await client.raw("PUT", "/fapi/v1/listenKey")
            after = await client.signed("POST", "/fapi/v1/order", {**LIMIT, "newClientOrderId": "kept-2"})
        await second.advance(60_000)  # the replay carries on from where it was, feeding no candle twice
    finally:
        await second.stop()
    assert (found.body["orderId"], found.body["status"]) == (resting["orderId"], "NEW")
    assert [(p["symbol"], p["positionAmt"]) for p in positions.body] == [("BTCUSDT", "0"), ("ETHUSDT", "-0.100")]
    assert [a["algoId"] for a in algos.body] == [algo["algoId"]]
    assert [t["id"] for t in trades.body] == [fill.trade_id for fill in trades_before]
    assert keepalive.body == {"listenKey": key}
    assert after.body["orderId"] == resting["orderId"] + 2  # ids carry on after the limit and the market order


async def test_the_state_is_saved_while_running(tmp_path: Path):
    wall = manual_wall_clock()
    state_file = tmp_path / "state.json"
    server = SimServer(ServerConfig(candles=default_candles(), credentials=[TEST_CREDENTIALS], state_file=state_file,
                                    save_interval_ms=1000), wall_clock=wall)
    await server.start()
    try:
        async with BinanceTestClient(server.rest_url, clock_ms=wall.now_ms) as client:
            await client.signed("POST", "/fapi/v1/order", LIMIT)
        wall.advance(1000)
        server.tick()
        saved = json.loads(state_file.read_text())
    finally:
        await server.stop()
    orders = saved["accounts"][TEST_API_KEY]["symbols"]["BTCUSDT"]
    assert "kept-1" in json.dumps(orders)


async def test_a_state_file_for_other_keys_is_refused(tmp_path: Path):
    state_file = tmp_path / "state.json"
    server = SimServer(ServerConfig(candles=default_candles(), credentials=[TEST_CREDENTIALS, OTHER_CREDENTIALS],
                                    state_file=state_file))
    server.save_state()
    with pytest.raises(StateError, match="were not given"):
        SimServer(ServerConfig(candles=default_candles(), credentials=[TEST_CREDENTIALS], state_file=state_file))
    state_file.write_text('{"format": "something else", "version": 1}')
    with pytest.raises(StateError, match="not a simulator server state file"):
        SimServer(ServerConfig(candles=default_candles(), credentials=[TEST_CREDENTIALS], state_file=state_file))


async def _start_command(data: Path, state_file: Path) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO / "main.py"), "simserver", "--port", "0", "--speed", "0", "--data", str(data),
        "--state", str(state_file), "--api-key", TEST_API_KEY, "--api-secret", TEST_API_SECRET,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    first_line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
    match = re.search(r"on (http://127\.0\.0\.1:\d+)", first_line)
    assert match, first_line
    return process, match.group(1)


async def test_the_command_saves_on_sigterm_and_restores(tmp_path: Path):
    data = tmp_path / "BTCUSDT_usdm_1m_synthetic.csv"
    write_klines_csv(data, default_candles(("BTCUSDT",))["BTCUSDT"])
    state_file = tmp_path / "state.json"
    process, url = await _start_command(data, state_file)
    try:
        async with BinanceTestClient(url) as client:
            placed = await client.signed("POST", "/fapi/v1/order", LIMIT)
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    assert placed.status == 200 and state_file.exists()
    process, url = await _start_command(data, state_file)
    try:
        async with BinanceTestClient(url) as client:
            found = await client.signed("GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "kept-1"})
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)
    assert (found.status, found.body["orderId"]) == (200, placed.body["orderId"])
