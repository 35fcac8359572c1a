"""A Binance USD-M Futures server around the simulated exchange: same REST paths, WebSocket routes and frames.

Start it with ``uv run main.py simserver`` or, from tests, ``SimServer(ServerConfig(...))`` and ``await start()``
(see ``tests/conftest.py``'s ``sim_server`` fixture). docs/simulator.md ("The wire server") describes it.

The names below are imported when first used, so ``main.py``'s argument parser can describe ``simserver``
without loading aiohttp's server (a bot's start-up pays for what it runs, not for what it could run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.server.app import Account, ServerConfig, SimServer
    from simulator.server.auth import Credentials

__all__ = ["Account", "Credentials", "ServerConfig", "SimServer"]


def __getattr__(name: str) -> Any:
    if name in ("Account", "ServerConfig", "SimServer"):
        from simulator.server import app

        return getattr(app, name)
    if name == "Credentials":
        from simulator.server.auth import Credentials

        return Credentials
    raise AttributeError(f"module 'simulator.server' has no attribute {name!r}")
