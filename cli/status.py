"""The ``status`` command: the heartbeat as a table, and an exit code a monitoring check can use."""

from __future__ import annotations

import sys
import time

from config import AppConfig
from runtime.heartbeat import HEARTBEAT_FILE, Liveness, liveness, read_heartbeat, render_status


def command_status(config: AppConfig) -> int:
    """Print the heartbeat; exit 0 FRESH, 1 STOPPED, 2 STALE, 3 missing or unreadable (see :class:`Liveness`)."""
    path = config.settings.status_dir / HEARTBEAT_FILE
    try:
        document = read_heartbeat(path)
    except ValueError as error:
        print(f"{error}; it is rewritten every HEARTBEAT_INTERVAL_SEC while the bot runs.", file=sys.stderr)
        return Liveness.MISSING.value
    print(render_status(document, time.time_ns() // 1_000_000, path))
    return liveness(document, time.time_ns() // 1_000_000).value
