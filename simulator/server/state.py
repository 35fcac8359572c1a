"""``--state FILE``: what the server remembers across a restart (accounts' exchanges, market time, listenKeys).

Placeholder until the engine's snapshot API lands: saving and loading say so plainly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.server.app import SimServer


def save(server: SimServer, path: Path) -> None:
    raise NotImplementedError("--state needs the engine's snapshot API (issue-8-engine)")


def load(server: SimServer, path: Path) -> None:
    raise NotImplementedError("--state needs the engine's snapshot API (issue-8-engine)")
