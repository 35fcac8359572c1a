"""A WebSocket connection that stays up: reconnects with exponential back-off and jitter, answers pings, reconnects
on its own before Binance's 24 h cut, and treats a connection silent for too long as dead.

The owner gives an async ``on_message(text)`` (called once per text frame, in order) and an optional async
``on_connect(reconnect)`` that runs after the connection is open and before its first frame is read (where a
market stream back-fills the gap and a user stream reports the interruption). An exception raised by
``on_message`` is logged with the frame and skipped: a malformed frame never stops the connection.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp

log = logging.getLogger("utils.websocket")

DEFAULT_INITIAL_BACKOFF_SEC = 0.5
DEFAULT_SILENCE_TIMEOUT_SEC = 30.0
DEFAULT_MAX_LIFETIME_SEC = 23 * 3600 + 30 * 60  # Binance cuts a connection after 24 h: leave first


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKING_OFF = "backing_off"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """What the heartbeat shows for one connection."""

    name: str
    state: ConnectionState
    connects: int
    reconnects: int
    last_message_age_sec: float | None
    connected_for_sec: float | None
    malformed_frames: int
    last_error: str


def backoff_delay(attempt: int, *, initial_sec: float, max_sec: float, rng: random.Random | None = None) -> float:
    """Exponential back-off with full jitter: uniform in [d/2, d], d = min(max_sec, initial_sec * 2**attempt)."""
    ceiling = min(max_sec, initial_sec * (2 ** min(attempt, 30)))
    return (rng or random).uniform(ceiling / 2, ceiling)


class ReconnectingWebSocket:
    """One logical stream over successive connections to ``url`` (a string, or a callable giving the URL to use
    for the next connection, e.g. with a fresh listenKey; it may be async).

    ``run()`` runs until ``stop()``; it never raises for connection problems. ``silence_timeout_sec``: no frame
    (text or ping) for this long means the connection is dead. ``max_lifetime_sec``: reconnect before the cut.
    """

    def __init__(self, url: str | Callable[[], str | Awaitable[str]], on_message: Callable[[str], Awaitable[None]],
                 *, name: str = "ws", on_connect: Callable[[bool], Awaitable[None]] | None = None,
                 on_disconnect: Callable[[str], Awaitable[None]] | None = None,
                 max_backoff_sec: float = 60.0, initial_backoff_sec: float = DEFAULT_INITIAL_BACKOFF_SEC,
                 silence_timeout_sec: float = DEFAULT_SILENCE_TIMEOUT_SEC,
                 max_lifetime_sec: float = DEFAULT_MAX_LIFETIME_SEC,
                 session: aiohttp.ClientSession | None = None, rng: random.Random | None = None,
                 heartbeat_sec: float | None = None) -> None:
        self._url = url
        self._on_message = on_message
        self.name = name
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self.max_backoff_sec = max_backoff_sec
        self.initial_backoff_sec = initial_backoff_sec
        self.silence_timeout_sec = silence_timeout_sec
        self.max_lifetime_sec = max_lifetime_sec
        self._session = session
        self._owns_session = session is None
        self._rng = rng or random.Random()
        self._heartbeat_sec = heartbeat_sec
        self._stopping = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reconnect_now = False
        self.state = ConnectionState.CONNECTING
        self.connects = 0
        self.malformed_frames = 0
        self.last_error = ""
        self._last_message: float | None = None
        self._connected_at: float | None = None
        self._connected = asyncio.Event()

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    async def run(self) -> None:
        """Connect, read, reconnect, until :meth:`stop`."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Close the connection and end :meth:`run`."""
        raise NotImplementedError

    def reconnect(self) -> None:
        """Drop the current connection and connect again (e.g. a listenKey was replaced)."""
        raise NotImplementedError

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until a connection is open (and its ``on_connect`` has run)."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def send_json(self, payload: Any) -> None:
        """Send a control frame (SUBSCRIBE, ...) on the open connection."""
        raise NotImplementedError

    def status(self) -> ConnectionStatus:
        now = time.monotonic()
        return ConnectionStatus(
            name=self.name, state=self.state, connects=self.connects, reconnects=self.reconnects,
            last_message_age_sec=None if self._last_message is None else round(now - self._last_message, 3),
            connected_for_sec=None if self._connected_at is None else round(now - self._connected_at, 3),
            malformed_frames=self.malformed_frames, last_error=self.last_error,
        )
