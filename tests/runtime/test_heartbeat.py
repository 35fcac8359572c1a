"""Heartbeat: atomic writes, broken sections isolated, status rendering says fresh or stale."""

from __future__ import annotations

import json
import os

import pytest

from runtime.heartbeat import Heartbeat, Liveness, liveness, read_heartbeat, render_status, write_atomically


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
    written = 1_681_948_800_000  # 2023-04-20 00:00:00 UTC
    document = {"pid": 1, "time_ms": written, "interval_sec": 5, "trading": {"state": "HALTED", "reason": "x"},
                "positions": [{"symbol": "BTCUSDT", "amount": "0.01", "update_time": written + 61_000}],
                "feed": {"last_candle_open_time": written - 60_000, "minutes": 12, "candles": 36}}
    fresh = render_status(document, written + 4_000, tmp_path / "hb.json")
    assert fresh.splitlines()[:2] == [
        f"Heartbeat {tmp_path / 'hb.json'} (pid 1), written 2023-04-20 00:00:00 UTC (4.0 s ago)",
        "FRESH: the bot is running.",
    ]
    assert "HALTED" in fresh and "symbol=BTCUSDT" in fresh
    assert "update_time=2023-04-20 00:01:01 UTC" in fresh  # times are UTC dates ...
    assert "last_candle_open_time        2023-04-19 23:59:00 UTC" in fresh
    assert "minutes                      12" in fresh  # ... counts stay numbers
    assert liveness(document, written + 4_000) is Liveness.FRESH
    assert liveness(document, written + 15_000) is Liveness.FRESH  # three intervals
    assert liveness(document, written + 15_001) is Liveness.STALE
    assert "STALE" in render_status(document, written + 16_000, tmp_path / "hb.json").splitlines()[1]
    assert render_status(None, 0, tmp_path / "hb.json").startswith("NO HEARTBEAT at ")
    assert liveness(None, 0) is Liveness.MISSING


def test_render_status_says_when_the_bot_stopped_cleanly(tmp_path) -> None:
    document = {"pid": 1, "time_ms": 100_000, "interval_sec": 5, "process": {"state": "stopped"}}
    assert "STOPPED" in render_status(document, 101_000, tmp_path / "hb.json")
    assert liveness(document, 10**9) is Liveness.STOPPED  # however old: a clean stop is not a crash
    assert [code.value for code in Liveness] == [0, 1, 2, 3]  # main.py status's exit codes


def test_a_file_that_is_not_a_heartbeat_is_an_error(tmp_path) -> None:
    path = tmp_path / "hb.json"
    assert read_heartbeat(path) is None
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="is not a heartbeat"):
        read_heartbeat(path)
    path.write_text("{")
    with pytest.raises(ValueError, match="cannot be read as a heartbeat: JSONDecodeError"):
        read_heartbeat(path)
