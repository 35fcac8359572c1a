"""Request weights, order counts and their headers; 429 with Retry-After past a limit; 418 for a client that keeps
going; the windows reset on the (stepped) real clock."""

from __future__ import annotations

from simulator.server.ratelimit import RateLimitConfig
from tests.sim_server import BinanceTestClient, manual_wall_clock


async def test_weights_follow_binance(sim_server_factory):
    wall = manual_wall_clock(at_second=1)
    server = await sim_server_factory(wall_clock=wall)
    expected = [
        (("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 99}), 1),
        (("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 100}), 2),
        (("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1000}), 5),
        (("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1500}), 10),
        (("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m"}), 5),
        (("GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}), 1),
        (("GET", "/fapi/v1/premiumIndex", {}), 10),
        (("GET", "/fapi/v1/exchangeInfo", {}), 1),
    ]
    signed = [
        (("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"}), 1),
        (("GET", "/fapi/v1/openOrders", {}), 40),
        (("GET", "/fapi/v3/account", {}), 5),
        (("GET", "/fapi/v1/positionSide/dual", {}), 30),
        (("POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}), 0),
    ]
    total = 0
    async with BinanceTestClient(server.rest_url, clock_ms=wall.now_ms) as client:
        for (method, path, params), weight in expected:
            reply = await client.public(method, path, params)
            total += weight
            assert int(reply.headers["X-MBX-USED-WEIGHT-1M"]) == total, (path, params)
        for (method, path, params), weight in signed:
            reply = await client.signed(method, path, params)
            total += weight
            assert reply.status == 200, reply.body
            assert int(reply.headers["X-MBX-USED-WEIGHT-1M"]) == total, (path, params)
        assert reply.headers["X-MBX-ORDER-COUNT-10S"] == "1" and reply.headers["X-MBX-ORDER-COUNT-1M"] == "1"
        wall.advance(60_000)
        fresh = await client.public("GET", "/fapi/v1/ping")
    assert fresh.headers["X-MBX-USED-WEIGHT-1M"] == "1"


async def test_429_with_retry_after_then_418_ban_that_grows(sim_server_factory):
    wall = manual_wall_clock(at_second=20)
    server = await sim_server_factory(wall_clock=wall, rate_limits=RateLimitConfig(request_weight_per_minute=10))
    async with BinanceTestClient(server.rest_url, clock_ms=wall.now_ms) as client:
        answers = [await client.public("GET", "/fapi/v1/ping") for _ in range(10)]
        assert all(a.status == 200 for a in answers)
        limited = await client.public("GET", "/fapi/v1/ping")
        assert (limited.status, limited.code) == (429, -1003)
        assert limited.body["msg"].startswith("Too many requests; current limit is 10 requests per minute.")
        assert limited.headers["Retry-After"] == "40"
        wall.advance(39_000)  # carrying on before Retry-After has passed
        banned = await client.public("GET", "/fapi/v1/ping")
        assert (banned.status, banned.code) == (418, -1003)
        until = wall.now_ms() + 120_000
        assert banned.body["msg"] == (f"Way too many requests; IP banned until {until}. Please use the websocket "
                                      "for live updates to avoid bans.")
        assert banned.headers["Retry-After"] == "120"
        wall.advance(60_000)
        still = await client.public("GET", "/fapi/v1/ping")
        assert still.status == 418 and still.headers["Retry-After"] == "60"
        wall.advance(60_000)
        released = await client.public("GET", "/fapi/v1/ping")
        assert released.status == 200
        for _ in range(9):
            await client.public("GET", "/fapi/v1/ping")
        assert (await client.public("GET", "/fapi/v1/ping")).status == 429
        second_ban = await client.public("GET", "/fapi/v1/ping")
        assert second_ban.status == 418 and second_ban.headers["Retry-After"] == "240"  # doubled


async def test_a_client_that_backs_off_is_not_banned(sim_server_factory):
    wall = manual_wall_clock(at_second=50)
    server = await sim_server_factory(wall_clock=wall, rate_limits=RateLimitConfig(request_weight_per_minute=5))
    async with BinanceTestClient(server.rest_url, clock_ms=wall.now_ms) as client:
        for _ in range(5):
            await client.public("GET", "/fapi/v1/ping")
        limited = await client.public("GET", "/fapi/v1/ping")
        wall.advance(int(limited.headers["Retry-After"]) * 1000)
        after = await client.public("GET", "/fapi/v1/ping")
    assert limited.status == 429 and after.status == 200


async def test_order_limits_per_account_answer_429_1015(sim_server_factory):
    wall = manual_wall_clock(at_second=1)
    server = await sim_server_factory(wall_clock=wall, two_accounts=True,
                                      rate_limits=RateLimitConfig(orders_per_10s=3, orders_per_minute=5))
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
             "price": "20000"}
    async with BinanceTestClient(server.rest_url, clock_ms=wall.now_ms) as client:
        replies = [await client.signed("POST", "/fapi/v1/order", order) for _ in range(4)]
        assert [r.status for r in replies] == [200, 200, 200, 429]
        assert [r.headers.get("X-MBX-ORDER-COUNT-10S") for r in replies[:3]] == ["1", "2", "3"]
        assert replies[3].code == -1015
        assert replies[3].body["msg"] == "Too many new orders; current limit is 3 orders per 10 SECOND."
        assert replies[3].headers["Retry-After"] == "9"
        wall.advance(10_000)
        fifth = await client.signed("POST", "/fapi/v1/order", order)
        sixth = await client.signed("POST", "/fapi/v1/order", order)
    assert fifth.status == 200 and fifth.headers["X-MBX-ORDER-COUNT-1M"] == "5"
    assert sixth.code == -1015 and "5 orders per 1 MINUTE" in sixth.body["msg"]
    async with BinanceTestClient(server.rest_url, api_key=server.account(
            list(server.accounts)[1]).api_key, secret=server.account(list(server.accounts)[1]).credentials.secret,
            clock_ms=wall.now_ms) as other:
        independent = await other.signed("POST", "/fapi/v1/order", order)
    assert independent.status == 200 and independent.headers["X-MBX-ORDER-COUNT-1M"] == "1"


async def test_the_funding_pool_is_separate(sim_server_factory):
    wall = manual_wall_clock()
    wall.set((wall.now_ms() // 300_000 + 1) * 300_000 + 1000)  # early in a 5-minute window
    server = await sim_server_factory(wall_clock=wall, rate_limits=RateLimitConfig(funding_requests_per_5min=2))
    async with BinanceTestClient(server.rest_url, clock_ms=wall.now_ms) as client:
        replies = [await client.public("GET", "/fapi/v1/fundingInfo") for _ in range(3)]
        other = await client.public("GET", "/fapi/v1/time")
    assert [r.status for r in replies] == [200, 200, 429]
    assert replies[0].headers["X-MBX-USED-WEIGHT-1M"] == "0"
    assert other.status == 418  # it asked again before its Retry-After


async def test_refused_requests_count_too(sim_server_factory):
    server = await sim_server_factory(wall_clock=manual_wall_clock(at_second=1))
    async with BinanceTestClient(server.rest_url) as client:
        duplicated = await client.raw("GET", "/fapi/v1/klines?symbol=BTCUSDT&symbol=ETHUSDT&interval=1m")
        unknown = await client.public("GET", "/fapi/v1/nowhere")
        bad_key = await client.raw("GET", "/fapi/v3/account?timestamp=1&signature=x", headers={"X-MBX-APIKEY": "no"})
    assert duplicated.code == -1101 and duplicated.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    assert unknown.headers["X-MBX-USED-WEIGHT-1M"] == "2"
    assert bad_key.code == -2015 and bad_key.headers["X-MBX-USED-WEIGHT-1M"] == "7"
