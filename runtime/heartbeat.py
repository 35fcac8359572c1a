"""status/heartbeat.json: written atomically every few seconds, and read back by ``main.py status``."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
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


def read_heartbeat(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _rows(title: str, value: Any, indent: int = 0) -> list[str]:
    pad = "  " * indent
    if isinstance(value, Mapping):
        if not value:
            return [f"{pad}{title}: (none)"]
        lines = [f"{pad}{title}:"]
        for key in value:
            lines.extend(_rows(str(key), value[key], indent + 1))
        return lines
    if isinstance(value, list):
        if not value:
            return [f"{pad}{title}: (none)"]
        lines = [f"{pad}{title}:"]
        for item in value:
            if isinstance(item, Mapping):
                lines.append(f"{pad}  - " + ", ".join(f"{k}={v}" for k, v in item.items()))
            else:
                lines.append(f"{pad}  - {item}")
        return lines
    return [f"{pad}{title:<28} {value}"]


def render_status(document: Mapping[str, Any] | None, now_ms: int, path: Path) -> str:
    """A human table of the heartbeat, saying plainly when it is missing or stale."""
    if document is None:
        return f"No heartbeat at {path}: the bot has not run here yet, or status/ was cleaned."
    age_sec = (now_ms - int(document.get("time_ms", 0))) / 1000
    interval = float(document.get("interval_sec", 5))
    stale = age_sec > 3 * interval
    process = document.get("process")
    stopped = isinstance(process, Mapping) and process.get("state") == "stopped"
    if stopped:
        verdict = "STOPPED: the bot wrote this as it shut down cleanly; it is not running."
    elif stale:
        verdict = (f"STALE: older than 3 x the {interval:g} s interval; the bot is probably not running "
                   "(or is stuck).")
    else:
        verdict = "FRESH: the bot is running."
    header = [f"Heartbeat {path} (pid {document.get('pid')}), written {age_sec:.1f} s ago", verdict]
    lines: list[str] = []
    for key, value in document.items():
        if key in ("pid", "time_ms", "interval_sec"):
            continue
        lines.extend(_rows(key, value))
    return "\n".join(header + [""] + lines)
