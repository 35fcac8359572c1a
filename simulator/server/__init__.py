"""A Binance USD-M Futures server around the simulated exchange: same REST paths, WebSocket routes and frames.

Start it with ``uv run main.py simserver`` or, from tests, ``SimServer(ServerConfig(...))`` and ``await start()``
(see ``tests/conftest.py``'s ``sim_server`` fixture). docs/simulator.md ("The wire server") describes it.
"""

from simulator.server.app import Account, ServerConfig, SimServer
from simulator.server.auth import Credentials

__all__ = ["Account", "Credentials", "ServerConfig", "SimServer"]
