"""The user-data stream: a listenKey created, kept alive every 30 minutes, replaced after ``listenKeyExpired`` or
-1125, and connected as ``<ws_private_url>/ws?listenKey=...&events=...``.

Every reconnect and every expiry calls ``on_interrupted(reason)`` (the shell hands the core a
``StreamInterrupted`` so it reconciles before trusting its books). Events are parsed once, with
``utils.binance_parse.parse_user_event``; a malformed or unknown event is logged and skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import aiohttp

from utils.binance_parse import UserEvent
from utils.websocket import ConnectionStatus

KEEPALIVE_SEC = 30 * 60
DEFAULT_EVENTS = ("ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "ALGO_UPDATE", "TRADE_LITE", "ACCOUNT_CONFIG_UPDATE",
                  "MARGIN_CALL", "listenKeyExpired")


class ListenKeys(Protocol):
    """The listenKey calls (``BinanceGateway`` has them)."""

    async def create_listen_key(self) -> str: ...
    async def keepalive_listen_key(self, listen_key: str) -> None: ...
    async def delete_listen_key(self, listen_key: str) -> None: ...


class UserStream:
    """The account's events from ``ws_private_url`` (the ``/private`` route)."""

    def __init__(self, listen_keys: ListenKeys, ws_private_url: str, *,
                 on_event: Callable[[UserEvent], Awaitable[None] | None],
                 on_interrupted: Callable[[str], Awaitable[None] | None],
                 events: Sequence[str] = DEFAULT_EVENTS, path: str = "/ws", keepalive_sec: float = KEEPALIVE_SEC,
                 max_backoff_sec: float = 60.0, silence_timeout_sec: float = 300.0,
                 session: aiohttp.ClientSession | None = None) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def wait_connected(self, timeout: float | None = None) -> None:
        raise NotImplementedError

    def status(self) -> ConnectionStatus:
        raise NotImplementedError
