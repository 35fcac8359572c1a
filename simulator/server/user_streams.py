"""User data on ``/private``: listenKeys (start, keepalive, close, expiry) and the accounts' events pushed to them.

One account has at most one active listenKey: POST while one is active returns it and extends it, PUT extends it,
DELETE closes it, and 60 minutes of real (gateway) time without either ends it with a ``listenKeyExpired`` event.
Real time, not market time, because clients time their keepalives like their requests, by their own clock; at 60 x
speed a market-time lifetime would lapse every real minute. Connections: ``/private/ws?listenKey=K`` (raw
events), ``/private/stream?listenKey=K`` (wrapped as ``{"stream": K, "data": ...}``), ``events=A/B`` to filter, and
SUBSCRIBE of a listenKey on ``/private/stream`` (what the official SDK sends).
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from simulator.server import errors
from simulator.server.connections import StreamConnection, StreamHandler, deliver
from simulator.server.ws_control import ControlError, RequestId

LISTEN_KEY_LIFETIME_MS = 60 * 60 * 1000
_ALPHABET = string.ascii_letters + string.digits
_COMPACT = (",", ":")


@dataclass
class ListenKey:
    key: str
    account: str          # the account's API key
    expires_at: int       # gateway (real) time


def new_listen_key() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(64))


class UserStreams(StreamHandler):
    """listenKeys by account, the private connections subscribed to them, and event delivery."""

    def __init__(self, *, wall_now: Callable[[], int], market_now: Callable[[], int],
                 lifetime_ms: int = LISTEN_KEY_LIFETIME_MS) -> None:
        self._wall_now = wall_now
        self._market_now = market_now
        self.lifetime_ms = lifetime_ms
        self._by_account: dict[str, ListenKey] = {}
        self._by_key: dict[str, ListenKey] = {}
        self._subscribers: dict[str, dict[int, StreamConnection]] = {}

    # ------------------------------------------------------------------------------------------ REST side
    def start(self, account: str) -> str:
        """POST /fapi/v1/listenKey: the account's active key (extended), or a new one."""
        now = self._wall_now()
        current = self._by_account.get(account)
        if current is not None and current.expires_at > now:
            current.expires_at = now + self.lifetime_ms
            return current.key
        if current is not None:
            self._expire(current)
        key = ListenKey(new_listen_key(), account, now + self.lifetime_ms)
        self._by_account[account] = key
        self._by_key[key.key] = key
        return key.key

    def keepalive(self, account: str) -> str:
        """PUT /fapi/v1/listenKey: extend the account's key by 60 minutes (-1125 when it has none)."""
        now = self._wall_now()
        current = self._by_account.get(account)
        if current is None or current.expires_at <= now:
            if current is not None:
                self._expire(current)
            raise errors.invalid_listen_key()
        current.expires_at = now + self.lifetime_ms
        return current.key

    def close(self, account: str) -> None:
        """DELETE /fapi/v1/listenKey: the key stops working; its subscribers hear nothing more."""
        current = self._by_account.pop(account, None)
        if current is not None:
            self._by_key.pop(current.key, None)
            self._unsubscribe_all(current.key)

    def expire_now(self, account: str | None = None) -> int:
        """The "expire a listenKey now" fault: end the key of ``account`` (every key when None)."""
        chosen = [k for k in list(self._by_key.values()) if account is None or k.account == account]
        for key in chosen:
            self._expire(key)
        return len(chosen)

    def is_active(self, key: str) -> bool:
        found = self._by_key.get(key)
        return found is not None and found.expires_at > self._wall_now()

    def key_of(self, account: str) -> str | None:
        found = self._by_account.get(account)
        return found.key if found is not None else None

    def tick(self) -> None:
        now = self._wall_now()
        for key in [k for k in self._by_key.values() if k.expires_at <= now]:
            self._expire(key)

    def _expire(self, key: ListenKey) -> None:
        self._by_key.pop(key.key, None)
        if self._by_account.get(key.account) is key:
            del self._by_account[key.account]
        event = {"e": "listenKeyExpired", "E": self._market_now(), "listenKey": key.key}
        self._deliver(key.key, event, always=True)
        self._unsubscribe_all(key.key)

    def _unsubscribe_all(self, key: str) -> None:
        for connection in list(self._subscribers.pop(key, {}).values()):
            connection.subscriptions.pop(key, None)

    # ------------------------------------------------------------------------------------------ state
    def snapshot(self) -> list[dict[str, Any]]:
        return [{"key": k.key, "account": k.account, "expires_at": k.expires_at} for k in self._by_key.values()]

    def restore(self, saved: Iterable[dict[str, Any]]) -> None:
        for entry in saved:
            key = ListenKey(str(entry["key"]), str(entry["account"]), int(entry["expires_at"]))
            self._by_key[key.key] = key
            self._by_account[key.account] = key

    # ------------------------------------------------------------------------------------------ events
    def publish(self, account: str, event: dict[str, Any]) -> None:
        """An account's user-data event, to every connection subscribed to its listenKey."""
        key = self._by_account.get(account)
        if key is not None and key.key in self._subscribers:
            self._deliver(key.key, event)

    def _deliver(self, key: str, event: dict[str, Any], always: bool = False) -> None:
        subscribers = self._subscribers.get(key)
        if subscribers:
            deliver(subscribers, key, json.dumps(event, separators=_COMPACT), None if always else event.get("e"))

    # ------------------------------------------------------------------------------------------ connections
    def opened(self, connection: StreamConnection) -> None:
        for key in list(connection.subscriptions):
            self._subscribers.setdefault(key, {})[connection.id] = connection

    def closed(self, connection: StreamConnection) -> None:
        for key in connection.subscriptions:
            subscribers = self._subscribers.get(key)
            if subscribers is not None:
                subscribers.pop(connection.id, None)
                if not subscribers:
                    del self._subscribers[key]

    def subscribe(self, connection: StreamConnection, names: list[str], request_id: RequestId) -> ControlError | None:
        if any(not self.is_active(name) for name in names):
            return ControlError(2, "Invalid request: invalid listenKey", request_id)
        for name in names:
            connection.subscriptions[name] = None
            self._subscribers.setdefault(name, {})[connection.id] = connection
        return None

    def unsubscribed(self, connection: StreamConnection, name: str) -> None:
        subscribers = self._subscribers.get(name)
        if subscribers is not None:
            subscribers.pop(connection.id, None)
