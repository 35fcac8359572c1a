"""status/heartbeat.json: written atomically every few seconds, and read back (and judged) by ``main.py status``."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any

HEARTBEAT_FILE = "heartbeat.json"


def write_atomically(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it over: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".heartbeat-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


class Heartbeat:
    """Builds the heartbeat document from named sections, each supplied by a small callable."""

    def __init__(self, path: Path, interval_sec: float) -> None:
        self.path = path
        self.interval_sec = interval_sec
        self._sections: dict[str, Callable[[], Any]] = {}
        self.writes = 0

    def section(self, name: str, provider: Callable[[], Any]) -> None:
        self._sections[name] = provider

    def build(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "pid": os.getpid(),
            "time_ms": time.time_ns() // 1_000_000,
            "interval_sec": self.interval_sec,
        }
        for name, provider in self._sections.items():
            try:
                document[name] = provider()
            except Exception as exc:  # noqa: BLE001 - a broken section must not stop the heartbeat
                document[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return document

    def write(self) -> dict[str, Any]:
        document = self.build()
        write_atomically(self.path, document)
        self.writes += 1
        return document


class Liveness(IntEnum):
    """What a heartbeat says about the bot; the value is ``main.py status``'s exit code (for monitoring checks)."""

    FRESH = 0  # running: written within the last three intervals
    STOPPED = 1  # shut down cleanly (the last heartbeat says so)
    STALE = 2  # older than three intervals and not stopped: died or stuck
    MISSING = 3  # no heartbeat file (never ran here), or one that cannot be read


#: A heartbeat older than this many intervals is stale.
STALE_AFTER_INTERVALS = 3
# Epoch milliseconds from 1973 on: smaller numbers under a *_time key are counts or durations, not times.
_EPOCH_MS_FLOOR = 10**11


def read_heartbeat(path: Path) -> dict[str, Any] | None:
    """The heartbeat document, ``None`` if there is no file; ``ValueError`` if it is not a heartbeat."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} cannot be read as a heartbeat: {type(error).__name__}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("time_ms"), int):
        raise ValueError(f"{path} is not a heartbeat (no time_ms)")
    return document


def liveness(document: Mapping[str, Any] | None, now_ms: int) -> Liveness:
    if document is None:
        return Liveness.MISSING
    process = document.get("process")
    if isinstance(process, Mapping) and process.get("state") == "stopped":
        return Liveness.STOPPED
    age_sec = (now_ms - int(document.get("time_ms", 0))) / 1000
    stale = age_sec > STALE_AFTER_INTERVALS * float(document.get("interval_sec", 5))
    return Liveness.STALE if stale else Liveness.FRESH


def utc_text(ms: int) -> str:
    """Epoch milliseconds as ``2023-04-20 00:01:00 UTC``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _shown(key: str, value: Any) -> Any:
    is_time = key.endswith(("_time", "time_ms", "since_ms"))
    if is_time and isinstance(value, int) and not isinstance(value, bool) and value >= _EPOCH_MS_FLOOR:
        return utc_text(value)
    return value


def _rows(title: str, value: Any, indent: int = 0) -> list[str]:
    pad = "  " * indent
    if isinstance(value, Mapping):
        if not value:
            return [f"{pad}{title}: (none)"]
        lines = [f"{pad}{title}:"]
        for key in value:
            lines.extend(_rows(str(key), _shown(str(key), value[key]), indent + 1))
        return lines
    if isinstance(value, list):
        if not value:
            return [f"{pad}{title}: (none)"]
        lines = [f"{pad}{title}:"]
        for item in value:
            if isinstance(item, Mapping):
                lines.append(f"{pad}  - " + ", ".join(f"{k}={_shown(str(k), v)}" for k, v in item.items()))
            else:
                lines.append(f"{pad}  - {item}")
        return lines
    return [f"{pad}{title:<28} {value}"]


def render_status(document: Mapping[str, Any] | None, now_ms: int, path: Path) -> str:
    """A human table of the heartbeat, its verdict first (FRESH / STOPPED / STALE, or missing); times in UTC."""
    if document is None:
        return (f"NO HEARTBEAT at {path}: the bot has not run with this STATUS_DIR yet (or status/ was cleaned); "
                "it is not running here.")
    written = int(document.get("time_ms", 0))
    age_sec = (now_ms - written) / 1000
    interval = float(document.get("interval_sec", 5))
    state = liveness(document, now_ms)
    verdict = {
        Liveness.STOPPED: "STOPPED: the bot wrote this as it shut down cleanly; it is not running.",
        Liveness.STALE: (f"STALE: older than {STALE_AFTER_INTERVALS} x the {interval:g} s interval; the bot is "
                         "probably not running (or is stuck)."),
        Liveness.FRESH: "FRESH: the bot is running.",
    }[state]
    header = [f"Heartbeat {path} (pid {document.get('pid')}), written {utc_text(written)} ({age_sec:.1f} s ago)",
              verdict]
    strategies = document.get("strategies")
    disabled = strategies.get("disabled") if isinstance(strategies, Mapping) else None
    if disabled:
        header.append(f"DISABLED strategies ({len(disabled)}): "
                      + "; ".join(f"{item.get('strategy')} on {item.get('symbol')}: {item.get('reason')}"
                                  if isinstance(item, Mapping) else str(item) for item in disabled))
    lines: list[str] = []
    for key, value in document.items():
        if key in ("pid", "time_ms", "interval_sec"):
            continue
        lines.extend(_rows(key, value))
    return "\n".join(header + [""] + lines)
