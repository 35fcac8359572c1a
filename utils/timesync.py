"""The offset between the local clock and Binance's, used only to sign and time requests (never the core's "now").

The offset is measured from ``GET /fapi/v1/time``: each sample assumes the server read its clock half-way through
the round trip; of several samples the one with the shortest round trip wins (the least uncertain). It is
re-measured every ``refresh_sec`` and whenever a request comes back with -1021.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("utils.timesync")

DEFAULT_SAMPLES = 5
DEFAULT_REFRESH_SEC = 600.0


def local_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class TimeSample:
    offset_ms: int  # server time - local time at the middle of the round trip
    round_trip_ms: int
    measured_at_ms: int  # local clock


class TimeSync:
    """Keeps ``offset_ms`` (server minus local) for signing: ``now_ms()`` is the local clock plus the offset.

    ``fetch_server_time`` returns the server's ``serverTime`` (ms); ``local_clock`` is the local wall clock in ms
    (tests pass a skewed one). Until the first :meth:`sync` the offset is 0.
    """

    def __init__(self, fetch_server_time: Callable[[], Awaitable[int]], *, samples: int = DEFAULT_SAMPLES,
                 refresh_sec: float = DEFAULT_REFRESH_SEC,
                 local_clock: Callable[[], int] = local_clock_ms,
                 monotonic: Callable[[], float] = time.perf_counter) -> None:
        if samples < 1:
            raise ValueError("samples must be at least 1")
        self._fetch = fetch_server_time
        self._samples = samples
        self.refresh_sec = refresh_sec
        self._local_clock = local_clock
        self._monotonic = monotonic
        self._last: TimeSample | None = None
        self._lock = asyncio.Lock()
        self.syncs = 0

    @property
    def offset_ms(self) -> int:
        return self._last.offset_ms if self._last else 0

    @property
    def last_sample(self) -> TimeSample | None:
        return self._last

    def now_ms(self) -> int:
        """The server's clock as best known: local clock + offset (for ``timestamp=`` only)."""
        return self._local_clock() + self.offset_ms

    async def sync(self) -> TimeSample:
        """Measure the offset now (best of ``samples`` round trips); concurrent callers share one measurement."""
        async with self._lock:
            best: TimeSample | None = None
            for _ in range(self._samples):
                started_local = self._local_clock()
                started = self._monotonic()
                server_ms = await self._fetch()
                round_trip_ms = max(0, round((self._monotonic() - started) * 1000))
                sample = TimeSample(server_ms - (started_local + round_trip_ms // 2), round_trip_ms, started_local)
                if best is None or sample.round_trip_ms < best.round_trip_ms:
                    best = sample
            assert best is not None
            previous = self._last
            self._last = best
            self.syncs += 1
            if previous is None or abs(previous.offset_ms - best.offset_ms) > 250:
                log.info("server time offset %+d ms (round trip %d ms)", best.offset_ms, best.round_trip_ms,
                         extra={"offset_ms": best.offset_ms, "round_trip_ms": best.round_trip_ms})
            return best

    async def run(self) -> None:
        """Re-measure every ``refresh_sec`` until cancelled; a failed measurement is logged and tried next time."""
        while True:
            await asyncio.sleep(self.refresh_sec)
            try:
                await self.sync()
            except Exception as exc:  # noqa: BLE001 - the next round tries again; signing keeps the last offset
                log.warning("server time refresh failed: %s", exc)
