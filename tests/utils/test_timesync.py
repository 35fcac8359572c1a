"""The server-time offset: the sample with the shortest round trip wins, half the round trip is allowed for."""

from __future__ import annotations

import asyncio

from utils.clock import SimulatedClock
from utils.timesync import TimeSync


async def test_best_of_several_round_trips_with_half_the_round_trip_allowed_for():
    local = SimulatedClock(1_000_000)
    server_ahead = 3_000
    trips = iter([40, 10, 80])  # ms each round trip takes; the server reads its clock half-way
    elapsed = [0.0]

    async def fetch() -> int:
        trip = next(trips)
        local.advance(trip // 2)
        server = local.now_ms() + server_ahead
        local.advance(trip - trip // 2)
        elapsed[0] += trip / 1000
        return server

    sync = TimeSync(fetch, samples=3, local_clock=local.now_ms, monotonic=lambda: elapsed[0])
    sample = await sync.sync()
    assert sample.round_trip_ms == 10 and sample.offset_ms == server_ahead
    assert sync.now_ms() == local.now_ms() + server_ahead and sync.syncs == 1


async def test_refreshes_periodically_and_survives_a_failed_refresh():
    calls = []

    async def fetch() -> int:
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("down")
        return 5_000

    sync = TimeSync(fetch, samples=1, refresh_sec=0.02, local_clock=lambda: 1_000)
    await sync.sync()
    task = asyncio.create_task(sync.run())
    await asyncio.sleep(0.15)
    task.cancel()
    assert len(calls) >= 4 and sync.syncs >= 3 and sync.offset_ms == 4_000
