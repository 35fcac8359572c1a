"""Test helpers for the Binance-wire simulator server: default candles and keys, and a small signing REST client.

The ``sim_server`` / ``sim_server_factory`` fixtures (tests/conftest.py) start a ``SimServer`` in-process on a free
port with a stepped market clock; ``BinanceTestClient`` signs requests the way Binance documents (HMAC-SHA256 over
query + body) so a test can also send what a well-behaved client would not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from marketdata.replay import SYNTHETIC_START_MS
from marketdata.synthetic import synthetic_candles
from simulator.server import Credentials
from utils.clock import SimulatedClock
from utils.domain import Candle

TEST_API_KEY = "simTestApiKey0000000000000000000000000000000000000000000000000001"
TEST_API_SECRET = "simTestApiSecret00000000000000000000000000000000000000000000001"
OTHER_API_KEY = "simTestApiKey0000000000000000000000000000000000000000000000000002"
OTHER_API_SECRET = "simTestApiSecret00000000000000000000000000000000000000000000002"
TEST_CREDENTIALS = Credentials(TEST_API_KEY, TEST_API_SECRET)
OTHER_CREDENTIALS = Credentials(OTHER_API_KEY, OTHER_API_SECRET)
START_MS = SYNTHETIC_START_MS


def default_candles(symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"), minutes: int = 180) -> dict[str, list[Candle]]:
    """Seeded synthetic candles (made up, not market data) from 2023-04-20 00:00 UTC."""
    return {symbol: list(synthetic_candles(symbol, start_ms=START_MS, count=minutes)) for symbol in symbols}


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def code(self) -> int | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class BinanceTestClient:
    """Sends REST requests to the server: signed or not, params in the query or the body, any header."""

    def __init__(self, base_url: str, api_key: str = TEST_API_KEY, secret: str = TEST_API_SECRET,
                 clock_ms: Any = None) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.secret = secret
        self.clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> BinanceTestClient:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._session is not None
        await self._session.close()

    async def raw(self, method: str, path_and_query: str, body: str = "", headers: Mapping[str, str] | None = None,
                  timeout: float = 10) -> Reply:
        assert self._session is not None
        all_headers = {"X-MBX-APIKEY": self.api_key} if self.api_key else {}
        if body:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        all_headers.update(headers or {})
        async with self._session.request(method, self.base_url + path_and_query, data=body.encode() if body else None,
                                         headers=all_headers,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            text = await response.text()
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                parsed = text
            return Reply(response.status, dict(response.headers), parsed)

    async def public(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Reply:
        query = urlencode(params or {})
        return await self.raw(method, f"{path}?{query}" if query else path)

    async def signed(self, method: str, path: str, params: Mapping[str, Any] | None = None, *,
                     in_body: bool = False, timestamp: int | None = None, recv_window: int | None = None,
                     secret: str | None = None, timeout: float = 10) -> Reply:
        values = dict(params or {})
        if recv_window is not None:
            values["recvWindow"] = recv_window
        values["timestamp"] = self.clock_ms() if timestamp is None else timestamp
        text = urlencode(values)
        signature = sign(secret or self.secret, text)
        if in_body:
            return await self.raw(method, path, f"{text}&signature={signature}", timeout=timeout)
        return await self.raw(method, f"{path}?{text}&signature={signature}", timeout=timeout)


def manual_wall_clock(at_second: float | None = None) -> SimulatedClock:
    """A gateway clock that starts at the real time (or ``at_second`` into the next whole minute, for tests of the
    rate-limit windows) and moves only when a test advances it."""
    now = time.time_ns() // 1_000_000
    if at_second is not None:
        now = (now // 60_000 + 1) * 60_000 + int(at_second * 1000)
    return SimulatedClock(now)


class StreamClient:
    """A WebSocket client for the server's stream routes that collects what arrives (text frames as JSON)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pings = 0

    async def __aenter__(self) -> StreamClient:
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.url, autoping=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None and self.ws is not None
        await self.ws.close()
        await self.session.close()

    async def send(self, payload: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(payload if isinstance(payload, str) else json.dumps(payload))

    async def next(self, timeout: float = 2.0) -> Any:
        """The next text frame as JSON (server pings are counted and answered, not returned)."""
        assert self.ws is not None
        while True:
            message = await self.ws.receive(timeout=timeout)
            if message.type is aiohttp.WSMsgType.PING:
                self.pings += 1
                await self.ws.pong(message.data)
                continue
            if message.type is aiohttp.WSMsgType.TEXT:
                return json.loads(message.data)
            return message

    async def nothing(self, timeout: float = 0.2) -> bool:
        """True when no text frame arrives within ``timeout`` seconds."""
        try:
            message = await self.next(timeout)
        except TimeoutError:
            return True
        raise AssertionError(f"expected no frame, got {message!r}")

    async def request(self, method: str, params: list[Any] | None = None, request_id: Any = 1) -> Any:
        payload: dict[str, Any] = {"method": method, "id": request_id}
        if params is not None:
            payload["params"] = params
        await self.send(payload)
        return await self.next()
