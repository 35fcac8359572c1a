"""The REST gateway: one request through Binance's checks, the fault switches and the endpoint's handler.

In order: the IP's request weight (429 / 418; every request counts); the route (-5000 for an unknown path or
method); the parameters (-1101 duplicates); the API key (-2014 / -2015) for USER_STREAM and SIGNED endpoints;
every parameter (-1100, -1102, -1104, -1105, -1106 ...); for SIGNED ones the timestamp against the real clock
(-1021) and the signature over query + body (-1022); the account's order limits (429, -1015); then any fault
switch that matches; then the handler. Every answer is JSON, and every error is Binance-shaped
``{"code": ..., "msg": ...}``: an unexpected exception is logged and answered as -1000 "An unknown error occured
while processing the request." (HTTP 500), never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from simulator.server import auth, errors
from simulator.server.endpoints import ENDPOINTS, SIGNED_PARAMS, Endpoint, Security
from simulator.server.faults import FaultKind, RequestFault
from simulator.server.params import RawParameters, read_parameters, validate
from simulator.server.ratelimit import RateLimited
from utils.errors import BinanceError

if TYPE_CHECKING:
    from simulator.server.app import Account, SimServer

logger = logging.getLogger("simulator.server.gateway")

MAX_BODY_BYTES = 65_536
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
ORDER_COUNT_10S_HEADER = "X-MBX-ORDER-COUNT-10S"
ORDER_COUNT_1M_HEADER = "X-MBX-ORDER-COUNT-1M"
_COMPACT = (",", ":")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(body, separators=_COMPACT), status=status, headers=headers,
                        content_type="application/json", charset="UTF-8")


def error_response(error: BinanceError, headers: dict[str, str] | None = None) -> web.Response:
    return _json(error.to_payload(), error.http_status, headers)


class _NoAnswer(Exception):
    """The request gets no answer at all (a timeout fault, a blackout): the connection is cut."""


class Gateway:
    """Runs REST requests for a ``SimServer``."""

    def __init__(self, server: SimServer) -> None:
        self._server = server

    async def handle(self, request: web.Request) -> web.StreamResponse:
        server = self._server
        try:
            if server.faults.blackout_active():
                await server.wait_out_blackout()
                raise _NoAnswer
            return await self._handle(request)
        except _NoAnswer:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)
        except Exception:  # noqa: BLE001 - whatever happens, the client gets a Binance-shaped answer
            logger.exception("unexpected error on %s %s", request.method, request.path)
            return error_response(BinanceError(-1000, "An unknown error occured while processing the request.",
                                               http_status=500))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        server = self._server
        endpoint = ENDPOINTS.get((request.method, request.path))
        headers: dict[str, str] = {}
        wall_now = server.gateway.now_ms()
        ip = request.remote or "unknown"
        try:
            raw_query = request.raw_path.partition("?")[2].encode("latin-1", errors="replace")
            unreadable: BinanceError | None = None
            try:
                raw_body = await self._read_body(request)
                raw = read_parameters(raw_query.decode("latin-1"), raw_body.decode("utf-8", errors="replace"))
            except BinanceError as error:  # still counted below, at weight 1, as every request is
                unreadable, raw_body, raw = error, b"", RawParameters({})
            weight = endpoint.weight_of(raw) if endpoint is not None and unreadable is None else 1
            used = server.ip_limiter.admit(ip, weight, wall_now, funding_pool=endpoint is not None
                                           and endpoint.funding_pool)
            headers[WEIGHT_HEADER] = str(used)
            if endpoint is None:
                raise errors.unknown_path(request.method, request.path)
            if unreadable is not None:
                raise unreadable
            account = self._account(endpoint, request, ip)
            values = self._values(endpoint, raw, account, raw_query, raw_body)
            if endpoint.counts_as_order:
                assert account is not None
                if request.method == "POST":
                    server.orders_received.record(wall_now, account.alias, request.path, values)
                ten, minute = account.orders.admit(wall_now)
                headers[ORDER_COUNT_10S_HEADER] = str(ten)
                headers[ORDER_COUNT_1M_HEADER] = str(minute)
            reduce_only = values.get("reduceOnly") is True or values.get("closePosition") is True
            fault = server.faults.take(request.method, request.path, reduce_only)
            body = await self._run(endpoint, account, values, fault, request)
            return _json(body, headers=headers)
        except RateLimited as limited:
            headers[WEIGHT_HEADER] = str(limited.used_weight or server.ip_limiter.used_weight(ip, wall_now))
            headers["Retry-After"] = str(limited.retry_after)
            return error_response(limited.error, headers)
        except BinanceError as error:
            return error_response(error, headers)

    @staticmethod
    async def _read_body(request: web.Request) -> bytes:
        if not request.can_read_body:
            return b""
        body = await request.content.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise BinanceError(-1101, "Too many parameters sent for this endpoint.")
        return body

    def _account(self, endpoint: Endpoint, request: web.Request, ip: str) -> Account | None:
        if endpoint.security is Security.NONE:
            return None
        api_key = auth.check_api_key_header(request.headers.get("X-MBX-APIKEY"))
        account = self._server.accounts.get(api_key)
        if account is None:
            raise errors.api_key_rejected(ip)
        return account

    def _values(self, endpoint: Endpoint, raw: RawParameters, account: Account | None, raw_query: bytes,
                raw_body: bytes) -> dict[str, Any]:
        if endpoint.security is not Security.SIGNED:
            return validate(endpoint.params, raw)
        values = validate(endpoint.params + SIGNED_PARAMS, raw)
        auth.check_timestamp(values["timestamp"], values.get("recvWindow"),
                             self._server.gateway.server_time_ms())
        assert account is not None
        if not account.credentials.verify(auth.signed_payload(raw_query, raw_body), values["signature"]):
            raise errors.bad_signature()
        return values

    async def _run(self, endpoint: Endpoint, account: Account | None, values: dict[str, Any],
                   fault: RequestFault | None, request: web.Request) -> Any:
        server = self._server
        if fault is None:
            server.sync_market()
            return endpoint.handler(server, account, values)
        kind = fault.kind
        if kind is FaultKind.SERVICE_UNAVAILABLE:
            raise errors.service_unavailable()
        if kind is FaultKind.THROTTLE:
            raise errors.throttled()
        if kind is FaultKind.REJECT:
            raise BinanceError(fault.code, fault.message)
        if kind is FaultKind.DELAY:
            try:
                server.sync_market()
                body = endpoint.handler(server, account, values)
            finally:
                await asyncio.sleep(fault.delay_ms / 1000)
            return body
        if fault.executed:
            server.sync_market()
            try:
                endpoint.handler(server, account, values)
            except BinanceError as error:
                logger.info("fault %s: the request executed and failed with %s", kind.value, error.code)
        if kind is FaultKind.UNKNOWN_ERROR:
            raise errors.unknown_error()
        await server.hold(request, fault.delay_ms)
        raise _NoAnswer
