"""Fixtures for the live client's tests: a REST client and a BinanceGateway pointed at the simulator server."""

from __future__ import annotations

import contextlib

import pytest

from live.gateway import BinanceGateway
from simulator.server.ratelimit import RateLimitConfig
from tests.sim_server import TEST_API_KEY, TEST_API_SECRET, manual_wall_clock
from utils.clock import SimulatedClock
from utils.ratelimit import RateLimiter
from utils.rest import RestClient
from utils.signing import HmacSigner
from utils.timesync import TimeSync


def make_rest(server, **options) -> RestClient:
    options.setdefault("timeout_sec", 5.0)
    return RestClient(server.rest_url, api_key=TEST_API_KEY, signer=HmacSigner(TEST_API_SECRET), **options)


@contextlib.asynccontextmanager
async def manual_client(sim_server_factory, **rate_limits: int):
    """A server with a manual wall clock (one second into a minute) and these rate limits, and a started, synced
    client whose local clock is that same clock, for tests of time windows: yields (clock, server, rest)."""
    clock: SimulatedClock = manual_wall_clock(at_second=1)
    server = await sim_server_factory(wall_clock=clock, rate_limits=RateLimitConfig(**rate_limits))
    rest = make_rest(server)
    rest.time_sync = TimeSync(rest.server_time, local_clock=clock.now_ms, samples=1)
    rest.rate_limiter = RateLimiter(clock_ms=rest.time_sync.now_ms)
    async with rest:
        await rest.time_sync.sync()
        yield clock, server, rest


@pytest.fixture
async def rest(sim_server):
    client = make_rest(sim_server)
    async with client:
        await client.time_sync.sync()
        yield client


@pytest.fixture
async def gateway(rest) -> BinanceGateway:
    return BinanceGateway(rest)


class StaticListenKeys:
    """listenKey calls that always succeed with the key "k" (for user-stream handlers tested without a server)."""

    async def create_listen_key(self) -> str:
        return "k"

    async def keepalive_listen_key(self, listen_key: str) -> None:
        return None

    async def delete_listen_key(self, listen_key: str) -> None:
        return None
