"""Clocks: simulated time only moves forward; system time carries the server offset."""

import time

import pytest

from utils.clock import SimulatedClock, SystemClock


def test_simulated_clock_moves_only_forward() -> None:
    clock = SimulatedClock(1_000)
    assert clock.now_ms() == 1_000
    clock.set(2_000)
    assert clock.advance(500) == 2_500
    with pytest.raises(ValueError):
        clock.set(1_999)
    with pytest.raises(ValueError):
        clock.advance(-1)
    assert clock.now_ms() == 2_500


def test_system_clock_applies_offset() -> None:
    before = time.time_ns() // 1_000_000
    now = SystemClock(offset_ms=60_000).now_ms()
    after = time.time_ns() // 1_000_000
    assert before + 60_000 <= now <= after + 60_000
