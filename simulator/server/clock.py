"""The server's two clocks: the gateway's real time (signatures, /time, limits) and the replay's market time.

``GatewayClock`` is real time as Binance's gateway sees it: requests are checked against it (timestamp vs
recvWindow), ``/fapi/v1/time`` answers it, rate-limit windows, listenKey lifetimes and pings run on it. A fault can
shift what it reports as server time. ``MarketClock`` is the simulated market's time: candles, mark prices, funding
times and user-data events carry it. It either runs at ``speed`` x real time from a start point, or is stepped
(speed 0): it then moves only when a test or the admin endpoint says so.
"""

from __future__ import annotations

import time

from utils.clock import Clock, SystemClock


class MonotonicClock:
    """Milliseconds from a monotonic source (never jumps back when the system clock is set)."""

    __slots__ = ()

    def now_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000


class GatewayClock:
    """Real time for the gateway: ``now_ms`` for limits and lifetimes, ``server_time_ms`` for what clients see."""

    __slots__ = ("_source", "shift_ms")

    def __init__(self, source: Clock | None = None) -> None:
        self._source: Clock = source if source is not None else SystemClock()
        self.shift_ms = 0  # the "server clock shifted by N ms" fault

    def now_ms(self) -> int:
        return self._source.now_ms()

    def server_time_ms(self) -> int:
        """What /fapi/v1/time answers and what request timestamps are checked against."""
        return self._source.now_ms() + self.shift_ms


class MarketClock:
    """Simulated market time: ``speed`` x real time from ``start_ms``, or stepped when ``speed`` is 0."""

    __slots__ = ("_speed", "_elapsed", "_origin_market", "_origin_elapsed", "_stepped_ms")

    def __init__(self, start_ms: int, speed: float = 0.0, elapsed: Clock | None = None) -> None:
        if speed < 0:
            raise ValueError(f"speed must be 0 (stepped) or positive, got {speed}")
        self._speed = speed
        self._elapsed: Clock = elapsed if elapsed is not None else MonotonicClock()
        self._origin_market = start_ms
        self._origin_elapsed = self._elapsed.now_ms()
        self._stepped_ms = start_ms

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def stepped(self) -> bool:
        return self._speed == 0

    def now_ms(self) -> int:
        if self._speed == 0:
            return self._stepped_ms
        return self._origin_market + int((self._elapsed.now_ms() - self._origin_elapsed) * self._speed)

    def advance(self, delta_ms: int) -> int:
        """Move a stepped clock forward by ``delta_ms`` (never backwards)."""
        if delta_ms < 0:
            raise ValueError("market time cannot go backwards")
        return self.set(self.now_ms() + delta_ms)

    def set(self, now_ms: int) -> int:
        """Move a stepped clock to ``now_ms``; a running clock is re-anchored there and keeps running."""
        current = self.now_ms()
        if now_ms < current:
            raise ValueError(f"market time cannot go backwards: {now_ms} < {current}")
        self._stepped_ms = now_ms
        self._origin_market = now_ms
        self._origin_elapsed = self._elapsed.now_ms()
        return now_ms
