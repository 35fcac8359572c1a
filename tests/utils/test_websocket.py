"""The reconnecting WebSocket: back-off with jitter under its cap, and a connection renewed before its lifetime."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given
from hypothesis import strategies as st

from utils.websocket import ReconnectingWebSocket, backoff_delay, redact


@given(attempt=st.integers(0, 200), initial=st.floats(0.01, 5), cap=st.floats(0.05, 3600), seed=st.integers())
def test_backoff_grows_exponentially_with_jitter_and_stops_at_the_cap(attempt, initial, cap, seed):
    delay = backoff_delay(attempt, initial_sec=initial, max_sec=cap, rng=random.Random(seed))
    ceiling = min(cap, initial * 2 ** min(attempt, 30))
    assert ceiling / 2 <= delay <= ceiling <= cap


def test_jitter_spreads_reconnects():
    rng = random.Random(1)
    delays = {round(backoff_delay(5, initial_sec=0.5, max_sec=60, rng=rng), 3) for _ in range(20)}
    assert len(delays) > 15


async def test_a_connection_is_renewed_before_its_lifetime_without_back_off(sim_server):
    frames: list[str] = []
    connects: list[bool] = []

    async def on_message(text: str) -> None:
        frames.append(text)

    async def on_connect(reconnect: bool) -> None:
        connects.append(reconnect)

    ws = ReconnectingWebSocket(f"{sim_server.market_ws_url}/stream?streams=btcusdt@kline_1m", on_message,
                               on_connect=on_connect, max_lifetime_sec=0.3, initial_backoff_sec=5,
                               max_backoff_sec=5)
    task = asyncio.create_task(ws.run())
    async with asyncio.timeout(3):
        while len(connects) < 3:
            await asyncio.sleep(0.02)
    assert connects[:3] == [False, True, True]  # no 5 s back-off between them
    await ws.stop()
    await asyncio.wait_for(task, 5)
    assert ws.status().state == "stopped"


async def test_an_unreachable_server_is_retried_with_back_off_until_stopped(unused_tcp_port):
    async def on_message(text: str) -> None:
        raise AssertionError("no frames expected")

    ws = ReconnectingWebSocket(f"ws://127.0.0.1:{unused_tcp_port}/market", on_message, initial_backoff_sec=0.02,
                               max_backoff_sec=0.05)
    task = asyncio.create_task(ws.run())
    await asyncio.sleep(0.4)
    assert ws.connects == 0 and "connect failed" in ws.last_error
    await ws.stop()
    await asyncio.wait_for(task, 2)


def test_listen_keys_are_masked_in_errors_and_logged_frames():
    key = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"
    for text in (f"400, url='ws://h/private/ws?listenKey={key}&events=A'",
                 f'{{"e": "listenKeyExpired", "listenKey": "{key}"}}'):
        assert key not in redact(text) and "listenKey" in redact(text)
    assert redact("nothing secret") == "nothing secret"
