"""Heartbeat: atomic writes, broken sections isolated, status rendering says fresh or stale."""

from __future__ import annotations

import json
import os

from runtime.heartbeat import Heartbeat, read_heartbeat, render_status, write_atomically


def test_write_is_atomic_and_readable(tmp_path) -> None:
    path = tmp_path / "status" / "heartbeat.json"
    write_atomically(path, {"a": 1})
    write_atomically(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["heartbeat.json"]  # no temp files left behind


def test_sections_and_a_broken_one(tmp_path) -> None:
    heartbeat = Heartbeat(tmp_path / "hb.json", interval_sec=5)
    heartbeat.section("trading", lambda: {"state": "ACTIVE", "reason": ""})
    heartbeat.section("broken", lambda: 1 / 0)
    document = heartbeat.write()
    assert document["trading"]["state"] == "ACTIVE"
    assert "ZeroDivisionError" in document["broken"]["error"]
    assert document["pid"] == os.getpid()
    assert read_heartbeat(tmp_path / "hb.json") == json.loads(json.dumps(document))


def test_render_status_fresh_stale_missing(tmp_path) -> None:
    document = {"pid": 1, "time_ms": 100_000, "interval_sec": 5, "trading": {"state": "HALTED", "reason": "x"},
                "positions": [{"symbol": "BTCUSDT", "amount": "0.01"}]}
    fresh = render_status(document, 104_000, tmp_path / "hb.json")
    assert "FRESH" in fresh and "HALTED" in fresh and "symbol=BTCUSDT" in fresh
    stale = render_status(document, 116_000, tmp_path / "hb.json")
    assert "STALE" in stale
    assert "No heartbeat" in render_status(None, 0, tmp_path / "hb.json")


def test_render_status_says_when_the_bot_stopped_cleanly(tmp_path) -> None:
    document = {"pid": 1, "time_ms": 100_000, "interval_sec": 5, "process": {"state": "stopped"}}
    assert "STOPPED" in render_status(document, 101_000, tmp_path / "hb.json")
