"""The user-data stream: a listenKey created, kept alive every 30 minutes, replaced after ``listenKeyExpired`` or
-1125, and connected as ``<ws_private_url><path>?listenKey=...&events=...`` (path ``/ws`` by default).

Every reconnect and every expiry calls ``on_interrupted(reason)`` (the shell hands the core a
``StreamInterrupted`` so it reconciles before trusting its books). Events are parsed once, with
``utils.binance_parse.parse_user_event``; a malformed event, or one of a type Binance does not document, is logged
and skipped. Each connection
asks ``POST /fapi/v1/listenKey`` for its key: Binance answers with the active key (extending it) or a new one,
so a reconnect never uses a key that died meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from utils.binance_parse import ListenKeyExpired, OtherUserEvent, UserEvent, parse_user_event
from utils.errors import INVALID_LISTEN_KEY, BinanceError
from utils.websocket import ConnectionStatus, ReconnectingWebSocket, redact

log = logging.getLogger("live.user_stream")

KEEPALIVE_SEC = 30 * 60
KEEPALIVE_RETRY_SEC = 60.0
DEFAULT_SILENCE_TIMEOUT_SEC = 300.0  # quiet accounts send nothing for long; a ping after half of it checks
DEFAULT_EVENTS = ("ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "ALGO_UPDATE", "TRADE_LITE", "ACCOUNT_CONFIG_UPDATE",
                  "MARGIN_CALL", "listenKeyExpired")
#: Event types Binance documents for the USD-M user stream; any other is logged (once per type) and skipped.
KNOWN_EVENTS = frozenset(DEFAULT_EVENTS) | {"CONDITIONAL_ORDER_TRIGGER_REJECT", "STRATEGY_UPDATE", "GRID_UPDATE"}


class ListenKeys(Protocol):
    """The listenKey calls (``BinanceGateway`` has them)."""

    async def create_listen_key(self) -> str: ...
    async def keepalive_listen_key(self, listen_key: str) -> None: ...
    async def delete_listen_key(self, listen_key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class UserStreamStatus:
    connection: ConnectionStatus
    listen_key_age_sec: float | None
    listen_keys_created: int
    keepalives: int
    interruptions: int
    events: int


class UserStream:
    """The account's events from ``ws_private_url`` (the ``/private`` route)."""

    def __init__(self, listen_keys: ListenKeys, ws_private_url: str, *,
                 on_event: Callable[[UserEvent], Awaitable[None] | None],
                 on_interrupted: Callable[[str], Awaitable[None] | None],
                 events: Sequence[str] = DEFAULT_EVENTS, path: str = "/ws", keepalive_sec: float = KEEPALIVE_SEC,
                 max_backoff_sec: float = 60.0, silence_timeout_sec: float = DEFAULT_SILENCE_TIMEOUT_SEC,
                 session: aiohttp.ClientSession | None = None, **websocket_options: Any) -> None:
        self._keys = listen_keys
        self._base = ws_private_url.rstrip("/") + ("/" + path.strip("/") if path.strip("/") else "")
        self._events = tuple(events)
        self._on_event = on_event
        self._on_interrupted = on_interrupted
        self.keepalive_sec = keepalive_sec
        self._listen_key: str | None = None
        self._key_since: float | None = None
        self._pending_reason: str | None = None
        self.listen_keys_created = 0
        self.keepalives = 0
        self.interruptions = 0
        self.events = 0
        self.unknown_events: dict[str, int] = {}
        self._last_reason = ""
        self._keepalive_task: asyncio.Task[None] | None = None
        self._ws = ReconnectingWebSocket(self._url, self._on_frame, name="user", on_connect=self._on_connect,
                                         on_disconnect=self._on_disconnect, max_backoff_sec=max_backoff_sec,
                                         silence_timeout_sec=silence_timeout_sec, session=session,
                                         **websocket_options)

    # ------------------------------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Connect and keep the key alive until :meth:`stop`."""
        self._keepalive_task = asyncio.create_task(self._keep_alive(), name="listenKey keepalive")
        try:
            await self._ws.run()
        finally:
            self._keepalive_task.cancel()
            try:
                await self._keepalive_task
            except asyncio.CancelledError:
                pass

    async def stop(self) -> None:
        """Close the connection and delete the listenKey (best effort)."""
        await self._ws.stop()
        key, self._listen_key = self._listen_key, None
        if key is not None:
            try:
                await self._keys.delete_listen_key(key)
            except Exception as exc:  # noqa: BLE001 - it lapses by itself within 60 minutes
                log.info("listenKey delete failed: %s", exc)

    async def wait_connected(self, timeout: float | None = None) -> None:
        await self._ws.wait_connected(timeout)

    @property
    def listen_key(self) -> str | None:
        return self._listen_key

    def status(self) -> UserStreamStatus:
        return UserStreamStatus(
            connection=self._ws.status(),
            listen_key_age_sec=None if self._key_since is None else round(time.monotonic() - self._key_since, 3),
            listen_keys_created=self.listen_keys_created, keepalives=self.keepalives,
            interruptions=self.interruptions, events=self.events,
        )

    # ---------------------------------------------------------------------------------------- connecting
    async def _url(self) -> str:
        key = await self._keys.create_listen_key()
        if key != self._listen_key:
            self._listen_key = key
            self._key_since = time.monotonic()
            self.listen_keys_created += 1
        return f"{self._base}?listenKey={key}&events={'/'.join(self._events)}"

    async def _on_connect(self, reconnect: bool) -> None:
        reason = self._pending_reason or (f"reconnected ({self._last_reason})" if reconnect else None)
        self._pending_reason = None
        if reason is not None:
            await self._interrupted(reason)

    async def _on_disconnect(self, reason: str) -> None:
        self._last_reason = reason

    async def _interrupted(self, reason: str) -> None:
        self.interruptions += 1
        log.warning("user data stream interrupted: %s", reason, extra={"reason": reason})
        result = self._on_interrupted(reason)
        if result is not None:
            await result

    def _replace_key(self, reason: str) -> None:
        """The key died: forget it and reconnect (the next connection creates a new key and reports why)."""
        self._listen_key = None
        self._key_since = None
        self._pending_reason = reason
        self._ws.reconnect()

    # ------------------------------------------------------------------------------------------- frames
    async def _on_frame(self, text: str) -> None:
        event = parse_user_event(json.loads(text))
        if isinstance(event, ListenKeyExpired):
            log.warning("listenKey expired; creating a new one")
            self._replace_key("listenKeyExpired")
            return
        if isinstance(event, OtherUserEvent) and event.event_type not in KNOWN_EVENTS:
            seen = self.unknown_events.get(event.event_type, 0)
            self.unknown_events[event.event_type] = seen + 1
            if not seen:
                log.warning("user data stream: unknown event %r skipped (%s)", event.event_type,
                            redact(text[:300]))
            return
        self.events += 1
        result = self._on_event(event)
        if result is not None:
            await result

    async def _keep_alive(self) -> None:
        delay = self.keepalive_sec
        while True:
            await asyncio.sleep(delay)
            key = self._listen_key
            if key is None:
                delay = self.keepalive_sec
                continue
            try:
                await self._keys.keepalive_listen_key(key)
                self.keepalives += 1
                delay = self.keepalive_sec
            except BinanceError as exc:
                if exc.code == INVALID_LISTEN_KEY:
                    log.warning("listenKey keepalive: -1125 (the key is gone); creating a new one")
                    self._replace_key("listenKey invalid (-1125)")
                    delay = self.keepalive_sec
                else:
                    log.warning("listenKey keepalive failed: %s; trying again in %g s", exc, KEEPALIVE_RETRY_SEC)
                    delay = min(KEEPALIVE_RETRY_SEC, self.keepalive_sec)
            except Exception as exc:  # noqa: BLE001 - the key lives 60 minutes: there is time to try again
                log.warning("listenKey keepalive failed: %s; trying again in %g s", exc, KEEPALIVE_RETRY_SEC)
                delay = min(KEEPALIVE_RETRY_SEC, self.keepalive_sec)
