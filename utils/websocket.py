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
import re
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
HEALTHY_AFTER_SEC = 10.0  # a connection that lived this long (or delivered a frame) restarts the back-off


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


_LISTEN_KEY = re.compile(r"(listenKey[=\"':\s/]+)[A-Za-z0-9]{8,}")


def redact(text: str) -> str:
    """``text`` with any listenKey value masked (it grants reading the account's events)."""
    return _LISTEN_KEY.sub(r"\1****", text)


def backoff_delay(attempt: int, *, initial_sec: float, max_sec: float, rng: random.Random | None = None) -> float:
    """Exponential back-off with full jitter: uniform in [d/2, d], d = min(max_sec, initial_sec * 2**attempt)."""
    ceiling = min(max_sec, initial_sec * (2 ** min(attempt, 30)))
    return (rng or random).uniform(ceiling / 2, ceiling)


class ReconnectingWebSocket:
    """One logical stream over successive connections to ``url`` (a string, or a callable giving the URL to use
    for the next connection, e.g. with a fresh listenKey; it may be async).

    ``run()`` runs until ``stop()``; it never raises for connection problems. ``silence_timeout_sec``: after half
    of it without any frame (text, ping or pong) the connection is pinged; with nothing by the full time it is
    dead. ``max_lifetime_sec``: reconnect before the cut, at once (no back-off). The back-off starts again from
    ``initial_backoff_sec`` after a connection that delivered a frame or lived ``HEALTHY_AFTER_SEC``.
    """

    def __init__(self, url: str | Callable[[], str | Awaitable[str]], on_message: Callable[[str], Awaitable[None]],
                 *, name: str = "ws", on_connect: Callable[[bool], Awaitable[None]] | None = None,
                 on_disconnect: Callable[[str], Awaitable[None]] | None = None,
                 max_backoff_sec: float = 60.0, initial_backoff_sec: float = DEFAULT_INITIAL_BACKOFF_SEC,
                 silence_timeout_sec: float = DEFAULT_SILENCE_TIMEOUT_SEC,
                 max_lifetime_sec: float = DEFAULT_MAX_LIFETIME_SEC,
                 session: aiohttp.ClientSession | None = None, rng: random.Random | None = None) -> None:
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
        """Connect, read, reconnect, until :meth:`stop`. Never raises for connection trouble."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        attempt = 0
        try:
            while not self._stopping.is_set():
                self.state = ConnectionState.CONNECTING
                reason, healthy = await self._connect_and_read()
                if self._stopping.is_set():
                    break
                if healthy:
                    attempt = 0
                if self._reconnect_now or reason == "lifetime":
                    self._reconnect_now = False
                    continue
                delay = backoff_delay(attempt, initial_sec=self.initial_backoff_sec, max_sec=self.max_backoff_sec,
                                      rng=self._rng)
                attempt += 1
                self.state = ConnectionState.BACKING_OFF
                log.info("%s: %s; reconnecting in %.2f s", self.name, reason, delay,
                         extra={"stream": self.name, "reason": reason, "delay_sec": round(delay, 3)})
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                except TimeoutError:
                    pass
        finally:
            self.state = ConnectionState.STOPPED
            self._connected.clear()
            if self._owns_session and self._session is not None:
                await self._session.close()
                self._session = None

    async def _resolve_url(self) -> str:
        if isinstance(self._url, str):
            return self._url
        url = self._url()
        if not isinstance(url, str):
            url = await url
        return url

    async def _connect_and_read(self) -> tuple[str, bool]:
        """One connection's life: (why it ended, whether it delivered anything, so the back-off restarts)."""
        assert self._session is not None
        try:
            url = await self._resolve_url()
            ws = await self._session.ws_connect(url, autoping=False, max_msg_size=0,
                                                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                                                heartbeat=None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to connect is retried after the back-off
            self.last_error = redact(f"connect failed: {type(exc).__name__}: {exc}")[:300]
            return self.last_error, False
        self._ws = ws
        self.connects += 1
        self._connected_at = self._last_message = time.monotonic()
        healthy = False
        reason = "closed"
        try:
            if self._on_connect is not None:
                await self._on_connect(self.connects > 1)
            self.state = ConnectionState.CONNECTED
            self._connected.set()
            reason, healthy = await self._read(ws)
            healthy = healthy or time.monotonic() - self._connected_at >= HEALTHY_AFTER_SEC
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing hook costs this connection, not the stream
            reason = redact(f"{type(exc).__name__}: {exc}")[:300]
            log.warning("%s: connection set-up failed: %s", self.name, reason, extra={"stream": self.name})
        finally:
            self._connected.clear()
            self._ws = None
            self._connected_at = None
            if not ws.closed:
                try:
                    await asyncio.wait_for(ws.close(), 2.0)
                except (TimeoutError, aiohttp.ClientError, OSError):
                    pass
            if reason not in ("stopped",):
                self.last_error = reason
            if self._on_disconnect is not None and not self._stopping.is_set():
                try:
                    await self._on_disconnect(reason)
                except Exception as exc:  # noqa: BLE001
                    log.warning("%s: on_disconnect failed: %s", self.name, exc)
        return reason, healthy

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[str, bool]:
        started = time.monotonic()
        healthy = False
        pinged = False
        while True:
            now = time.monotonic()
            lifetime_left = self.max_lifetime_sec - (now - started)
            if lifetime_left <= 0:
                return "lifetime", True
            quiet = now - (self._last_message or now)
            wait = (self.silence_timeout_sec / 2 if not pinged else self.silence_timeout_sec) - quiet
            try:
                message = await ws.receive(timeout=max(0.001, min(wait, lifetime_left)))
            except TimeoutError:
                if time.monotonic() - started >= self.max_lifetime_sec:
                    return "lifetime", True
                if not pinged:
                    pinged = True  # half the silence allowance passed: ask for a pong before calling it dead
                    try:
                        await ws.ping()
                    except (ConnectionError, RuntimeError, aiohttp.ClientError):
                        return "connection lost", healthy
                    continue
                return f"silent for {self.silence_timeout_sec:g} s", healthy
            kind = message.type
            if kind is aiohttp.WSMsgType.TEXT:
                self._last_message = time.monotonic()
                pinged = False
                healthy = True
                try:
                    await self._on_message(message.data)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a bad frame is skipped, never fatal
                    self.malformed_frames += 1
                    log.warning("%s: frame skipped: %s: %s | %s", self.name, type(exc).__name__, exc,
                                redact(message.data[:300]), extra={"stream": self.name})
            elif kind is aiohttp.WSMsgType.PING:
                self._last_message = time.monotonic()
                pinged = False
                try:
                    await ws.pong(message.data)
                except (ConnectionError, RuntimeError, aiohttp.ClientError):
                    return "connection lost", healthy
            elif kind is aiohttp.WSMsgType.PONG:
                self._last_message = time.monotonic()
                pinged = False
            elif kind is aiohttp.WSMsgType.BINARY:
                self._last_message = time.monotonic()
                self.malformed_frames += 1
                log.warning("%s: binary frame skipped (%d bytes)", self.name, len(message.data))
            else:
                if self._stopping.is_set():
                    return "stopped", healthy
                if self._reconnect_now:
                    return "reconnect requested", healthy
                if kind is aiohttp.WSMsgType.ERROR:
                    return redact(f"connection error: {ws.exception()}"), healthy
                return f"closed by the server (code {ws.close_code})", healthy

    async def stop(self) -> None:
        """Close the connection and end :meth:`run` (which returns soon after)."""
        self._stopping.set()
        ws = self._ws
        if ws is not None and not ws.closed:
            try:
                await asyncio.wait_for(ws.close(), 2.0)
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass

    def reconnect(self) -> None:
        """Drop the current connection and connect again at once (e.g. a listenKey was replaced)."""
        self._reconnect_now = True
        ws = self._ws
        if ws is not None and not ws.closed:
            asyncio.get_running_loop().create_task(ws.close())

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until a connection is open (and its ``on_connect`` has run)."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def send_json(self, payload: Any) -> None:
        """Send a control frame (SUBSCRIBE, ...) on the open connection."""
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionError(f"{self.name}: not connected")
        await ws.send_json(payload)

    def status(self) -> ConnectionStatus:
        now = time.monotonic()
        return ConnectionStatus(
            name=self.name, state=self.state, connects=self.connects, reconnects=self.reconnects,
            last_message_age_sec=None if self._last_message is None else round(now - self._last_message, 3),
            connected_for_sec=None if self._connected_at is None else round(now - self._connected_at, 3),
            malformed_frames=self.malformed_frames, last_error=self.last_error,
        )
