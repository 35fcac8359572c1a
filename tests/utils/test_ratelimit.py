"""Rate-limit pools: priorities when the budget is short, and against the simulator server, a budget read from
exchangeInfo that is never exceeded, and 429 then 418 honoured until Retry-After has passed."""

from __future__ import annotations

import asyncio

import pytest

from live.gateway import BinanceGateway
from tests.live.conftest import manual_client
from tests.sim_server import BinanceTestClient
from utils.clock import SimulatedClock
from utils.errors import RateLimitedError
from utils.ratelimit import Priority, RateLimit, RateLimiter, parse_rate_limits

MINUTE = 60_000


def test_limits_are_read_from_exchange_info_rate_limits():
    limits = parse_rate_limits([
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 6100},
    ])
    assert limits == (RateLimit("REQUEST_WEIGHT", MINUTE, 2400), RateLimit("ORDERS", 10_000, 300))
    assert [limit.header for limit in limits] == ["x-mbx-used-weight-1m", "x-mbx-order-count-10s"]


async def test_exits_are_served_before_entries_and_entries_leave_the_reserve():
    clock = SimulatedClock(10 * MINUTE + 1000)
    limiter = RateLimiter([RateLimit("REQUEST_WEIGHT", MINUTE, 20)], clock_ms=clock.now_ms, guard_ms=0)
    for _ in range(18):
        assert limiter.try_acquire(1, 0, Priority.NORMAL)
    assert not limiter.try_acquire(1, 0, Priority.ENTRY)  # the last 2 (10%) are kept for exits
    order: list[str] = []

    async def ask(name: str, priority: Priority) -> None:
        await limiter.acquire(1, 0, priority)
        order.append(name)

    tasks = [asyncio.create_task(ask(f"entry{i}", Priority.ENTRY)) for i in range(3)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(ask(f"exit{i}", Priority.EXIT)) for i in range(5)]
    await asyncio.sleep(0.05)
    assert order == ["exit0", "exit1"]  # the budget's end goes to exits, entries wait
    clock.advance(MINUTE)  # a new window
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert order[2:5] == ["exit2", "exit3", "exit4"] and order[5:] == ["entry0", "entry1", "entry2"]


async def test_headers_bring_the_pools_up_to_the_servers_count():
    clock = SimulatedClock(10 * MINUTE)
    limiter = RateLimiter(clock_ms=clock.now_ms, guard_ms=0)
    limiter.observe_headers({"X-MBX-USED-WEIGHT-1M": "2390", "X-MBX-ORDER-COUNT-10S": "300"})
    assert not limiter.try_acquire(20, 0, Priority.EXIT)
    assert limiter.try_acquire(10, 0, Priority.EXIT)
    assert not limiter.try_acquire(0, 1, Priority.EXIT)
    limiter.observe_headers({"X-MBX-USED-WEIGHT-1M": "5"})  # never down: ours may be in flight
    assert limiter.snapshot()["pools"]["used-weight-1m"] == {"used": 2400, "limit": 2400}


async def test_the_budget_from_exchange_info_is_never_exceeded(sim_server_factory):
    async with manual_client(sim_server_factory, request_weight_per_minute=40) as (clock, server, rest):
        await BinanceGateway(rest).exchange_info()
        assert rest.rate_limiter.limits[0].limit == 40
        calls = [asyncio.create_task(rest.request("GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}))
                 for _ in range(60)]
        await asyncio.sleep(0.5)
        done = sum(call.done() for call in calls)
        assert done == 40 - 2  # time sync and exchangeInfo took 2
        assert server.ip_limiter.used_weight("127.0.0.1", clock.now_ms()) == 40
        clock.advance(MINUTE)
        await asyncio.wait_for(asyncio.gather(*calls), 5)
        assert server.ip_limiter.used_weight("127.0.0.1", clock.now_ms()) == 60 - 38
        assert "rate_limited" not in rest.errors


async def test_429_then_418_backs_off_until_retry_after_and_recovers(sim_server_factory):
    async with (manual_client(sim_server_factory, request_weight_per_minute=10) as (clock, server, rest),
                BinanceTestClient(server.rest_url) as other):
        for _ in range(9):  # another process on the same IP uses the rest of the minute
            await other.public("GET", "/fapi/v1/time")
        with pytest.raises(RateLimitedError) as caught:
            await rest.request("GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"})
        assert caught.value.http_status == 429 and caught.value.retry_after_ms == 59_000
        sent = rest.requests
        waiting = asyncio.create_task(rest.request("GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}))
        await asyncio.sleep(0.4)
        assert not waiting.done() and rest.requests == sent  # nothing leaves before Retry-After
        await other.public("GET", "/fapi/v1/time")  # the other process did not wait: the IP is banned
        clock.advance(59_500)
        with pytest.raises(RateLimitedError) as caught:
            await asyncio.wait_for(waiting, 2)
        assert caught.value.http_status == 418 and caught.value.retry_after_ms is not None
        assert caught.value.retry_after_ms > 60_000
        sent = rest.requests
        waiting = asyncio.create_task(rest.request("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"},
                                                   signed=True))
        await asyncio.sleep(0.05)  # it starts, and waits for the budget
        clock.advance(caught.value.retry_after_ms - 1000)
        await asyncio.sleep(0.4)
        assert not waiting.done() and rest.requests == sent  # still banned: still waiting
        clock.advance(2000)
        assert await asyncio.wait_for(waiting, 2) == []  # signed after the wait: its timestamp is fresh
        assert rest.errors == {"rate_limited": 2}
        assert rest.rate_limiter.back_offs == 2
