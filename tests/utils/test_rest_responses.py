"""Odd answers a proxy or an outage can give, classified by the REST client (a small aiohttp server plays them)."""

from __future__ import annotations

import pytest
from aiohttp import web

from utils.errors import (
    AuthError,
    BinanceError,
    ErrorKind,
    OutcomeUnknownError,
    RateLimitedError,
)
from utils.rest import RestClient
from utils.signing import HmacSigner

ANSWERS = {
    "/html-502": (502, "<html><body>Bad Gateway</body></html>", {}),
    "/empty-200": (200, "", {}),
    "/text-200": (200, "OK", {}),
    "/code-not-int": (400, '{"code": "x", "msg": "odd"}', {}),
    "/list-400": (400, "[1, 2]", {}),
    "/empty-500": (500, "", {}),
    "/429-bad-retry": (429, '{"code": -1003, "msg": "Too many requests"}', {"Retry-After": "soon"}),
    "/418": (418, '{"code": -1003, "msg": "Way too many requests; IP banned"}', {"Retry-After": "120"}),
    "/401-bare": (401, "Unauthorized", {}),
    "/408": (408, '{"code": -1007, "msg": "Timeout waiting for response from backend server."}', {}),
    "/503-unavailable": (503, '{"code": -1001, "msg": "Service Unavailable."}', {}),
}


@pytest.fixture
async def odd_server(unused_tcp_port):
    calls: dict[str, int] = {}

    async def answer(request: web.Request) -> web.Response:
        calls[request.path] = calls.get(request.path, 0) + 1
        status, body, headers = ANSWERS[request.path]
        return web.Response(status=status, text=body, headers=headers)

    app = web.Application()
    for path in ANSWERS:
        app.router.add_route("*", path, answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        async with RestClient(f"http://127.0.0.1:{unused_tcp_port}", api_key="k", signer=HmacSigner("s"),
                              get_retries=1) as rest:
            yield rest, calls
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("path, method, error_type, kind, tries", [
    ("/html-502", "GET", BinanceError, ErrorKind.OUTCOME_UNKNOWN, 2),
    ("/html-502", "POST", BinanceError, ErrorKind.OUTCOME_UNKNOWN, 1),
    ("/text-200", "POST", OutcomeUnknownError, ErrorKind.OUTCOME_UNKNOWN, 1),
    ("/code-not-int", "POST", BinanceError, ErrorKind.REJECTED, 1),
    ("/list-400", "GET", BinanceError, ErrorKind.REJECTED, 1),
    ("/empty-500", "GET", BinanceError, ErrorKind.OUTCOME_UNKNOWN, 2),
    ("/429-bad-retry", "GET", RateLimitedError, ErrorKind.RATE_LIMITED, 1),
    ("/418", "GET", RateLimitedError, ErrorKind.RATE_LIMITED, 1),
    ("/401-bare", "GET", AuthError, ErrorKind.AUTH, 1),
    ("/408", "POST", BinanceError, ErrorKind.OUTCOME_UNKNOWN, 1),
    ("/503-unavailable", "POST", BinanceError, ErrorKind.REJECTED, 1),
    ("/503-unavailable", "GET", BinanceError, ErrorKind.REJECTED, 2),
])
async def test_odd_answers_are_classified(odd_server, path, method, error_type, kind, tries):
    rest, calls = odd_server
    with pytest.raises(error_type) as caught:
        await rest.request(method, path, {"a": 1})
    assert caught.value.kind is kind
    assert calls[path] == tries
    if isinstance(caught.value, BinanceError):
        assert caught.value.msg  # always says something, even when the body did not
        if path == "/418":
            assert caught.value.retry_after_ms == 120_000 and caught.value.http_status == 418
            assert rest.rate_limiter.snapshot()["blocked_for_ms"] > 110_000


async def test_an_empty_2xx_body_is_none(odd_server):
    rest, _ = odd_server
    assert await rest.request("GET", "/empty-200") is None
