"""Market data for every configured symbol: ``kline_1m`` and ``markPrice@1s`` on combined ``/market/stream``
connections, with closed candles missed during any gap back-filled over REST.

Each symbol's closed candles are delivered exactly once and in order: after every (re)connect the candles that
closed since the last delivered one are fetched with ``GET /fapi/v1/klines`` and delivered before any live frame
is read; a live closed candle more than one minute after the last delivered one triggers the same back-fill
first; a closed candle at or before the last delivered one is dropped as a duplicate. Forming candles are not
parsed unless ``on_kline_update`` asks for them. A frame that does not parse is logged and skipped.

A connection carries at most ``per_connection`` streams (Binance: 1024). The stream names go in the URL
(``/market/stream?streams=a/b/...``) up to ``MAX_URL_STREAMS_CHARS`` characters; the rest of the connection's
streams are subscribed with ``SUBSCRIBE`` frames right after it opens (at most 5 frames a second, inside Binance's
10 incoming messages per second), before the back-fill.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from utils.binance_parse import PayloadError, parse_kline_event, parse_mark_price_event
from utils.domain import Candle, MarkPrice
from utils.websocket import DEFAULT_SILENCE_TIMEOUT_SEC, ConnectionStatus, ReconnectingWebSocket

log = logging.getLogger("live.market_stream")

MAX_STREAMS_PER_CONNECTION = 1024
MAX_URL_STREAMS_CHARS = 2000
SUBSCRIBE_BATCH = 100
SUBSCRIBE_INTERVAL_SEC = 0.2
CANDLE_MS = 60_000
KLINES_PAGE = 1500
FIRST_PAGE = 99  # below 100 rows a klines request weighs 1
BACKFILL_CONCURRENCY = 8  # symbols back-filled at once after a reconnect

KlineFetcher = Callable[..., Awaitable[list[Candle]]]


def stream_names(symbols: Sequence[str]) -> list[str]:
    """``btcusdt@kline_1m`` and ``btcusdt@markPrice@1s`` for each symbol, in order."""
    names: list[str] = []
    for symbol in symbols:
        lower = symbol.lower()
        names += [f"{lower}@kline_1m", f"{lower}@markPrice@1s"]
    return names


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    """One connection: its symbols, the URL (with the streams that fit in it) and the streams to SUBSCRIBE."""

    symbols: tuple[str, ...]
    url: str
    subscribe: tuple[str, ...]


def plan_connections(base_url: str, symbols: Sequence[str], *, per_connection: int = MAX_STREAMS_PER_CONNECTION,
                     url_chars: int = MAX_URL_STREAMS_CHARS) -> list[ConnectionPlan]:
    """Split the symbols' streams over connections of at most ``per_connection`` streams (a symbol's two streams
    stay together); the first streams of each go in its URL, up to ``url_chars`` characters."""
    if per_connection < 2:
        raise ValueError("per_connection must be at least 2 (a symbol has two streams)")
    symbols_per_connection = per_connection // 2
    base = base_url.rstrip("/")
    plans = []
    for start in range(0, len(symbols), symbols_per_connection):
        group = tuple(symbols[start:start + symbols_per_connection])
        streams = stream_names(group)
        in_url: list[str] = []
        length = 0
        for name in streams:
            if in_url and length + len(name) + 1 > url_chars:
                break
            in_url.append(name)
            length += len(name) + 1
        plans.append(ConnectionPlan(group, f"{base}/stream?streams={'/'.join(in_url)}",
                                    tuple(streams[len(in_url):])))
    return plans


@dataclass(frozen=True, slots=True)
class MarketStreamStats:
    """Counters for the heartbeat."""

    candles: int
    mark_prices: int
    kline_updates: int
    backfills: int
    candles_backfilled: int
    duplicates_dropped: int
    backfill_failures: int
    malformed_frames: int


class MarketStream:
    """Closed 1m candles and mark prices for ``symbols`` from ``ws_market_url`` (the ``/market`` route).

    ``fetch_klines`` is ``BinanceGateway.klines``. ``last_closed_open_time``: per symbol, the open time of the
    last closed candle the bot already has; the first connection back-fills from there (without it, a symbol's
    first delivered candle is the first live closed one). Callbacks may be plain functions or coroutines; each
    is finished before the next frame of its connection is read.
    """

    def __init__(self, ws_market_url: str, symbols: Sequence[str], *, fetch_klines: KlineFetcher,
                 on_candle: Callable[[Candle], Awaitable[None] | None],
                 on_mark_price: Callable[[MarkPrice], Awaitable[None] | None],
                 on_kline_update: Callable[[Candle], Awaitable[None] | None] | None = None,
                 last_closed_open_time: Mapping[str, int] | None = None,
                 max_backoff_sec: float = 60.0, silence_timeout_sec: float = DEFAULT_SILENCE_TIMEOUT_SEC,
                 per_connection: int = MAX_STREAMS_PER_CONNECTION, url_chars: int = MAX_URL_STREAMS_CHARS,
                 session: aiohttp.ClientSession | None = None, **websocket_options: Any) -> None:
        if not symbols:
            raise ValueError("MarketStream needs at least one symbol")
        self.symbols = tuple(symbols)
        self._fetch = fetch_klines
        self._on_candle = on_candle
        self._on_mark_price = on_mark_price
        self._on_kline_update = on_kline_update
        self._last: dict[str, int] = dict(last_closed_open_time or {})
        self._session = session
        self._owns_session = session is None
        self.plans = plan_connections(ws_market_url, self.symbols, per_connection=per_connection,
                                      url_chars=url_chars)
        self._connections: list[ReconnectingWebSocket] = []
        self._stopped = False
        self._websocket_options = dict(websocket_options, max_backoff_sec=max_backoff_sec,
                                       silence_timeout_sec=silence_timeout_sec)
        self.candles = self.mark_prices = self.kline_updates = 0
        self.backfills = self.candles_backfilled = self.duplicates_dropped = self.backfill_failures = 0

    # ------------------------------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Run every connection until :meth:`stop`."""
        if self._stopped:
            return
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        self._connections = [
            ReconnectingWebSocket(plan.url, self._on_frame, name=f"market-{index}",
                                  on_connect=self._connect_hook(index), session=self._session,
                                  **self._websocket_options)
            for index, plan in enumerate(self.plans)
        ]
        try:
            await asyncio.gather(*(connection.run() for connection in self._connections))
        finally:
            if self._owns_session and self._session is not None:
                await self._session.close()
                self._session = None

    async def stop(self) -> None:
        self._stopped = True
        await asyncio.gather(*(connection.stop() for connection in self._connections))

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until every connection is open and back-filled."""
        async with asyncio.timeout(timeout):
            while len(self._connections) < len(self.plans):
                await asyncio.sleep(0.01)
            await asyncio.gather(*(connection.wait_connected() for connection in self._connections))

    def status(self) -> list[ConnectionStatus]:
        return [connection.status() for connection in self._connections]

    def stats(self) -> MarketStreamStats:
        return MarketStreamStats(
            candles=self.candles, mark_prices=self.mark_prices, kline_updates=self.kline_updates,
            backfills=self.backfills, candles_backfilled=self.candles_backfilled,
            duplicates_dropped=self.duplicates_dropped, backfill_failures=self.backfill_failures,
            malformed_frames=sum(connection.malformed_frames for connection in self._connections),
        )

    def last_closed_open_time(self, symbol: str) -> int | None:
        return self._last.get(symbol)

    # ---------------------------------------------------------------------------------------- connecting
    def _connect_hook(self, index: int) -> Callable[[bool], Awaitable[None]]:
        plan = self.plans[index]

        async def on_connect(reconnect: bool) -> None:
            connection = self._connections[index]
            for first in range(0, len(plan.subscribe), SUBSCRIBE_BATCH):
                if first:
                    await asyncio.sleep(SUBSCRIBE_INTERVAL_SEC)
                await connection.send_json({"method": "SUBSCRIBE",
                                            "params": list(plan.subscribe[first:first + SUBSCRIBE_BATCH]),
                                            "id": first // SUBSCRIBE_BATCH + 1})
            limit = asyncio.Semaphore(BACKFILL_CONCURRENCY)

            async def backfill(symbol: str, last: int) -> None:
                async with limit:
                    await self._backfill(symbol, last + CANDLE_MS, None)

            await asyncio.gather(*(backfill(symbol, self._last[symbol]) for symbol in plan.symbols
                                   if symbol in self._last))

        return on_connect

    # ------------------------------------------------------------------------------------------- frames
    async def _on_frame(self, text: str) -> None:
        message = json.loads(text)
        data = message.get("data") if type(message) is dict else None
        if type(data) is not dict:
            if type(message) is dict and "id" in message and ("result" in message or "error" in message):
                if "error" in message:
                    log.warning("market stream control frame refused: %s", message)
                return
            raise PayloadError("not a combined-stream frame")
        event = data.get("e")
        if event == "kline":
            k = data.get("k")
            if type(k) is not dict or k.get("x") is not True:
                self.kline_updates += 1
                if self._on_kline_update is not None:
                    result = self._on_kline_update(parse_kline_event(data))
                    if result is not None:
                        await result
                return
            await self._closed(parse_kline_event(data))
        elif event == "markPriceUpdate":
            self.mark_prices += 1
            result = self._on_mark_price(parse_mark_price_event(data))
            if result is not None:
                await result
        else:
            raise PayloadError(f"unexpected market event {event!r}")

    async def _closed(self, candle: Candle) -> None:
        last = self._last.get(candle.symbol)
        if last is not None and candle.open_time > last + CANDLE_MS:
            if not await self._backfill(candle.symbol, last + CANDLE_MS, candle.open_time):
                return  # the next closed candle tries again; this one is fetched with the gap
        await self._deliver(candle)

    async def _deliver(self, candle: Candle) -> bool:
        last = self._last.get(candle.symbol)
        if last is not None and candle.open_time <= last:
            self.duplicates_dropped += 1
            return False
        self._last[candle.symbol] = candle.open_time
        self.candles += 1
        result = self._on_candle(candle)
        if result is not None:
            await result
        return True

    async def _backfill(self, symbol: str, from_open: int, until_open: int | None) -> bool:
        """Deliver ``symbol``'s closed candles opening in [from_open, until_open); False if REST failed."""
        self.backfills += 1
        start = from_open
        # A gap is usually a few minutes: ask for a small page first (weight 1), then large ones (weight 10).
        page = FIRST_PAGE if until_open is None else min(KLINES_PAGE, max(1, (until_open - start) // CANDLE_MS))
        try:
            while until_open is None or start < until_open:
                candles = await self._fetch(symbol, start_time=start,
                                            end_time=None if until_open is None else until_open - 1,
                                            limit=page)
                closed = [c for c in candles if c.closed and c.open_time >= start
                          and (until_open is None or c.open_time < until_open)]
                for candle in closed:
                    if await self._deliver(candle):
                        self.candles_backfilled += 1
                if len(candles) < page or not closed:
                    break
                start = closed[-1].open_time + CANDLE_MS
                page = KLINES_PAGE
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - retried by the next reconnect or gap
            self.backfill_failures += 1
            log.warning("%s: back-fill from %d failed: %s", symbol, start, exc,
                        extra={"symbol": symbol, "from_open_time": start})
            return False
        if from_open < start or self.candles_backfilled:
            log.info("%s: back-filled candles from %d", symbol, from_open, extra={"symbol": symbol})
        return True
