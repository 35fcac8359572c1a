"""``--state FILE``: what the server remembers across a restart, in one JSON file written atomically.

The file holds every account's ``SimExchange.snapshot()`` by API key (orders, positions, trades, id counters; never
a secret), the market time the replay had reached and the exchanges' clock, the data shift of ``--start-now``,
the active listenKeys and the funding history. On start, a file that exists is restored: the market clock resumes
at the saved time (candles already fed are not fed again), the accounts carry on where they stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.state import StateError, read_state_file, require, write_state_file

if TYPE_CHECKING:
    from simulator.server.app import SimServer

FORMAT = "auto-coin-trader-v3/sim-server-state"
VERSION = 1


def document(server: SimServer) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "market_time": server.market_clock.now_ms(),
        "exchange_time": server.exchange_clock.now_ms(),
        "data_shift_ms": server.data_shift_ms,
        "accounts": {api_key: account.exchange.snapshot() for api_key, account in server.accounts.items()},
        "listen_keys": server.user_streams.snapshot(),
        "funding": server.replay.funding_state(),
    }


def save(server: SimServer, path: Path) -> None:
    write_state_file(path, document(server))


def read(path: Path, api_keys: set[str]) -> dict[str, Any]:
    """The saved document, checked: its format, and that every account it holds has a key configured now."""
    saved = read_state_file(path)
    if require(saved, "format", "server state") != FORMAT:
        raise StateError(f"{path}: not a simulator server state file (format {saved.get('format')!r})")
    if require(saved, "version", "server state") != VERSION:
        raise StateError(f"{path}: version {saved['version']!r} is not supported (this server reads {VERSION})")
    accounts = require(saved, "accounts", "server state")
    if not isinstance(accounts, Mapping):
        raise StateError(f"{path}: 'accounts' must be an object")
    missing = sorted(set(accounts) - api_keys)
    if missing:
        raise StateError(f"{path} holds accounts for API keys {', '.join(missing)} that were not given: start the "
                         "server with the same --api-key / --api-secret pairs as before (secrets are never saved)")
    for key in ("market_time", "exchange_time", "data_shift_ms"):
        if not isinstance(require(saved, key, "server state"), int):
            raise StateError(f"{path}: '{key}' must be an integer")
    return saved
