"""Clock abstraction: the trading core asks a Clock for the time and never reads the wall clock itself."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch (UTC)."""
        ...


class SystemClock:
    """Wall-clock time, optionally shifted by an offset (the exchange's server time minus ours)."""

    __slots__ = ("offset_ms",)

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


class SimulatedClock:
    """Time that moves only when told to: backtests and replays set it from the data they feed."""

    __slots__ = ("_now_ms",)

    def __init__(self, start_ms: int = 0) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> int:
        return self._now_ms

    def set(self, now_ms: int) -> None:
        """Move to ``now_ms``; time never goes backwards."""
        if now_ms < self._now_ms:
            raise ValueError(f"simulated time cannot go backwards: {now_ms} < {self._now_ms}")
        self._now_ms = now_ms

    def advance(self, delta_ms: int) -> int:
        if delta_ms < 0:
            raise ValueError("simulated time cannot go backwards")
        self._now_ms += delta_ms
        return self._now_ms
