"""Fixtures for the live client's tests: a REST client and a BinanceGateway pointed at the simulator server."""

from __future__ import annotations

import pytest

from live.gateway import BinanceGateway
from tests.sim_server import TEST_API_KEY, TEST_API_SECRET
from utils.rest import RestClient
from utils.signing import HmacSigner


def make_rest(server, **options) -> RestClient:
    options.setdefault("timeout_sec", 5.0)
    return RestClient(server.rest_url, api_key=TEST_API_KEY, signer=HmacSigner(TEST_API_SECRET), **options)


@pytest.fixture
async def rest(sim_server):
    client = make_rest(sim_server)
    async with client:
        await client.time_sync.sync()
        yield client


@pytest.fixture
async def gateway(rest) -> BinanceGateway:
    return BinanceGateway(rest)
