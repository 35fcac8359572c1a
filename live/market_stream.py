"""Market data for every configured symbol: ``kline_1m`` and ``markPrice@1s`` on combined ``/market/stream``
connections (split past 1024 streams), with closed candles missed during any gap back-filled over REST.

Each symbol's closed candles are delivered exactly once and in order: after every (re)connect, and whenever a
live closed candle is more than one minute after the last delivered one, the missing candles are fetched with
``GET /fapi/v1/klines`` and delivered first; a closed candle at or before the last delivered one is dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from utils.domain import Candle, MarkPrice
from utils.websocket import ConnectionStatus

MAX_STREAMS_PER_CONNECTION = 1024
CANDLE_MS = 60_000

KlineFetcher = Callable[..., Awaitable[list[Candle]]]
Handler = Callable[[object], Awaitable[None] | None]


def stream_names(symbols: Sequence[str]) -> list[str]:
    """``btcusdt@kline_1m`` and ``btcusdt@markPrice@1s`` for each symbol, in order."""
    raise NotImplementedError


def combined_urls(base_url: str, streams: Sequence[str], *, per_connection: int = MAX_STREAMS_PER_CONNECTION
                  ) -> list[str]:
    """``<base>/stream?streams=a/b/...`` URLs, at most ``per_connection`` streams each."""
    raise NotImplementedError


@dataclass(frozen=True, slots=True)
class BackfillStats:
    backfills: int
    candles_backfilled: int
    duplicates_dropped: int
    malformed_frames: int


class MarketStream:
    """Closed 1m candles and mark prices for ``symbols`` from ``ws_market_url`` (the ``/market`` route)."""

    def __init__(self, ws_market_url: str, symbols: Sequence[str], *, fetch_klines: KlineFetcher,
                 on_candle: Callable[[Candle], Awaitable[None] | None],
                 on_mark_price: Callable[[MarkPrice], Awaitable[None] | None],
                 last_closed_open_time: Mapping[str, int] | None = None,
                 max_backoff_sec: float = 60.0, silence_timeout_sec: float = 30.0,
                 per_connection: int = MAX_STREAMS_PER_CONNECTION,
                 session: aiohttp.ClientSession | None = None) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def wait_connected(self, timeout: float | None = None) -> None:
        raise NotImplementedError

    def status(self) -> list[ConnectionStatus]:
        raise NotImplementedError

    def stats(self) -> BackfillStats:
        raise NotImplementedError
