"""The admin endpoint: fault switches, the market clock and status over HTTP, for tests that run the server apart.

Refused (HTTP 403) unless the server was started with an admin token, the request comes from a loopback address
and carries the token in ``X-Admin-Token``. Bodies are JSON; answers are JSON; errors are Binance-shaped.

    GET    /admin/status                      market time, server time, clock, accounts, connections, faults
    POST   /admin/faults  {"fault": NAME, ...} switch one fault on (names and arguments: docs/simulator.md)
    DELETE /admin/faults                      every fault off
    POST   /admin/clock   {"advanceMs": N} | {"setMs": T}   move the market clock
    DELETE /admin/bans                        lift every rate-limit back-off and IP ban
    GET    /admin/orders-received             every new-order request since the server started (order_log.py)
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from simulator.server import errors
from utils.errors import BinanceError

if TYPE_CHECKING:
    from simulator.server.app import SimServer

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
TOKEN_HEADER = "X-Admin-Token"

_FAULT_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "delay": ("delayMs", "count", "method", "path"),
    "time_out": ("count", "executed", "method", "path", "holdMs"),
    "unknown_error": ("count", "executed", "method", "path"),
    "service_unavailable": ("count", "method", "path"),
    "throttle": ("count", "exemptReduceOnly", "method", "path"),
    "reject_orders": ("count", "code", "msg", "method", "path"),
    "shift_clock": ("shiftMs",),
    "blackout": ("seconds",),
    "drop_connections": ("route", "onlyOne", "connectionId"),
    "silence_connections": ("route", "onlyOne", "connectionId", "newOnesToo"),
    "expire_listen_key": ("apiKey",),
}


def _answer(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body, separators=(",", ":")), status=status,
                        content_type="application/json")


def _error(error: BinanceError) -> web.Response:
    return _answer(error.to_payload(), error.http_status)


def _bad(message: str) -> BinanceError:
    return BinanceError(-1102, message)


def _field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool:
        raise _bad(f"'{name}' must be {kind}")
    if not isinstance(value, kind):
        raise _bad(f"'{name}' must be {kind}, got {type(value).__name__}")
    return value


def apply_fault(server: SimServer, body: Mapping[str, Any]) -> Any:
    """Switch on the fault ``body["fault"]`` names, with its arguments (unknown names and arguments refused)."""
    name = body.get("fault")
    if not isinstance(name, str) or name not in _FAULT_ARGUMENTS:
        raise _bad(f"'fault' must be one of {', '.join(_FAULT_ARGUMENTS)}")
    unknown = sorted(set(body) - {"fault", *_FAULT_ARGUMENTS[name]})
    if unknown:
        raise _bad(f"fault {name} takes {', '.join(_FAULT_ARGUMENTS[name])}; not {', '.join(unknown)}")
    faults = server.faults
    count = _field(body, "count", int)
    method = _field(body, "method", str)
    path = _field(body, "path", str)
    if name == "delay":
        return faults.delay(_field(body, "delayMs", int, 0), count, method, path).describe()
    if name == "time_out":
        return faults.time_out(count or 1, executed=bool(_field(body, "executed", bool, False)), method=method,
                               path=path, hold_ms=_field(body, "holdMs", int, faults.DEFAULT_HOLD_MS)).describe()
    if name == "unknown_error":
        return faults.unknown_error(count or 1, executed=bool(_field(body, "executed", bool, False)), method=method,
                                    path=path).describe()
    if name == "service_unavailable":
        return faults.service_unavailable(count or 1, method, path).describe()
    if name == "throttle":
        return faults.throttle(count or 1, exempt_reduce_only=bool(_field(body, "exemptReduceOnly", bool, True)),
                               method=method, path=path).describe()
    if name == "reject_orders":
        code = _field(body, "code", int)
        if code is None:
            raise _bad("reject_orders needs 'code' (and 'msg')")
        return faults.reject_orders(count or 1, code, _field(body, "msg", str, "") or "", method=method,
                                    path=path).describe()
    if name == "shift_clock":
        return {"clockShiftMs": faults.shift_clock(_field(body, "shiftMs", int, 0))}
    if name == "blackout":
        return {"blackoutUntil": faults.blackout(float(_field(body, "seconds", (int, float), 0)))}
    if name == "drop_connections":
        return {"dropped": faults.drop_connections(_field(body, "route", str), only_one=bool(
            _field(body, "onlyOne", bool, False)), connection_id=_field(body, "connectionId", int))}
    if name == "silence_connections":
        return {"silenced": faults.silence_connections(
            _field(body, "route", str), only_one=bool(_field(body, "onlyOne", bool, False)),
            connection_id=_field(body, "connectionId", int),
            new_ones_too=bool(_field(body, "newOnesToo", bool, False)))}
    return {"expired": faults.expire_listen_key(_field(body, "apiKey", str))}


def status(server: SimServer) -> dict[str, Any]:
    return {
        "marketTime": server.market_clock.now_ms(),
        "serverTime": server.gateway.server_time_ms(),
        "speed": server.market_clock.speed,
        "stepped": server.market_clock.stepped,
        "accounts": [{"apiKey": a.api_key, "alias": a.alias, "keyType": a.credentials.kind}
                     for a in server.accounts.values()],
        "connections": [{"id": c.id, "route": c.route, "combined": c.combined, "silent": c.silent,
                         "subscriptions": len(c.subscriptions)} for c in server.hub.all()],
        "faults": server.faults.describe(),
    }


def refusal(admin_token: str | None, remote: str | None, token_sent: str) -> BinanceError | None:
    """Why an admin request is refused (None: it may go ahead)."""
    if not admin_token:
        return BinanceError(-1002, "The admin endpoint is off: start the server with --admin-token.",
                            http_status=403)
    if remote not in LOOPBACK:
        return errors.unauthorized()
    if not hmac.compare_digest(token_sent.encode(), admin_token.encode()):
        return errors.unauthorized()
    return None


def add_routes(app: web.Application, server: SimServer) -> None:
    def guarded(action: Callable[[web.Request], Awaitable[web.Response]]
                ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            refused = refusal(server.config.admin_token, request.remote, request.headers.get(TOKEN_HEADER, ""))
            if refused is not None:
                return _error(refused)
            try:
                return await action(request)
            except BinanceError as error:
                return _error(error)
            except ValueError as exc:
                return _error(_bad(str(exc)))
        return handler

    async def read_json(request: web.Request) -> Mapping[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _bad("the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise _bad("the body must be a JSON object")
        return body

    async def get_status(request: web.Request) -> web.Response:
        return _answer(status(server))

    async def post_fault(request: web.Request) -> web.Response:
        return _answer({"result": apply_fault(server, await read_json(request))})

    async def delete_faults(request: web.Request) -> web.Response:
        server.faults.clear()
        return _answer({"result": "cleared"})

    async def post_clock(request: web.Request) -> web.Response:
        body = await read_json(request)
        if "advanceMs" in body:
            now = await server.advance(_field(body, "advanceMs", int, 0))
        elif "setMs" in body:
            now = await server.advance_to(_field(body, "setMs", int, 0))
        else:
            raise _bad("give 'advanceMs' or 'setMs'")
        return _answer({"marketTime": now})

    async def delete_bans(request: web.Request) -> web.Response:
        server.ip_limiter.lift_bans()
        return _answer({"result": "lifted"})

    app.router.add_get("/admin/status", guarded(get_status))
    app.router.add_post("/admin/faults", guarded(post_fault))
    app.router.add_delete("/admin/faults", guarded(delete_faults))
    app.router.add_post("/admin/clock", guarded(post_clock))
    app.router.add_delete("/admin/bans", guarded(delete_bans))

    async def get_orders_received(request: web.Request) -> web.Response:
        return _answer([{"time": e.time, "account": e.account, "path": e.path, "symbol": e.symbol,
                         "clientOrderId": e.client_order_id} for e in server.orders_received.entries])

    app.router.add_get("/admin/orders-received", guarded(get_orders_received))
