"""Fault switches: what a test (or the admin endpoint) can make the server do wrong, and when it stops.

Request faults apply to the next ``count`` REST requests that match (``count=None``: until cleared), optionally
only one method and path: answer late (``delay``), never answer (``time_out``, with the request executed or
not), 503 "Unknown error" (executed or not), 503 "Service Unavailable." (not executed), -1008 throttled (not
executed; reduce-only / closePosition orders exempt unless told otherwise) and rejecting the next N orders with a
given code. Server-wide faults: shift the server clock, stop answering anything (HTTP and WebSocket) for N
seconds, drop or silence WebSocket connections, expire listenKeys now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from simulator.server.clock import GatewayClock
from simulator.server.connections import ConnectionHub
from simulator.server.user_streams import UserStreams

ORDER_ENDPOINTS = frozenset({("POST", "/fapi/v1/order"), ("POST", "/fapi/v1/algoOrder")})


class FaultKind(StrEnum):
    DELAY = "delay"
    TIME_OUT = "time_out"
    UNKNOWN_ERROR = "unknown_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    THROTTLE = "throttle"
    REJECT = "reject"


@dataclass
class RequestFault:
    """One request fault and which requests it applies to."""

    kind: FaultKind
    remaining: int | None = 1          # None: every matching request until cleared
    method: str | None = None          # e.g. "POST"; None: any
    path: str | None = None            # e.g. "/fapi/v1/order"; None: any (order endpoints for reject/throttle)
    executed: bool = False             # time_out / unknown_error: did the request take effect before the fault
    delay_ms: int = 0                  # delay: how late the answer comes; time_out: how long it is held
    code: int = 0                      # reject: Binance code and message
    message: str = ""
    exempt_reduce_only: bool = True    # throttle: reduce-only / closePosition orders pass, as on Binance

    def matches(self, method: str, path: str, reduce_only: bool) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is not None:
            if self.path != path:
                return False
        elif self.kind in (FaultKind.REJECT, FaultKind.THROTTLE) and (method, path) not in ORDER_ENDPOINTS:
            return False
        return not (self.kind is FaultKind.THROTTLE and self.exempt_reduce_only and reduce_only)

    def describe(self) -> dict[str, Any]:
        described = asdict(self)
        described["kind"] = self.kind.value
        return described


class Faults:
    """Every active fault switch. Methods return what they changed, so a test can assert it did something."""

    DEFAULT_HOLD_MS = 60_000

    def __init__(self, gateway: GatewayClock, hub: ConnectionHub, user_streams: UserStreams,
                 wall_now: Callable[[], int]) -> None:
        self._gateway = gateway
        self._hub = hub
        self._user_streams = user_streams
        self._wall_now = wall_now
        self.request_faults: list[RequestFault] = []
        self.blackout_until = 0

    # ------------------------------------------------------------------------------------------ request faults
    def add(self, fault: RequestFault) -> RequestFault:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("a fault's count must be at least 1 (or None: until cleared)")
        self.request_faults.append(fault)
        return fault

    def delay(self, delay_ms: int, count: int | None = None, method: str | None = None,
              path: str | None = None) -> RequestFault:
        """Answer the matching requests ``delay_ms`` late (they execute first)."""
        return self.add(RequestFault(FaultKind.DELAY, count, method, path, delay_ms=delay_ms))

    def time_out(self, count: int | None = 1, *, executed: bool, method: str | None = None,
                 path: str | None = None, hold_ms: int = DEFAULT_HOLD_MS) -> RequestFault:
        """Never answer: hold the connection ``hold_ms`` (or until the client gives up), then cut it."""
        return self.add(RequestFault(FaultKind.TIME_OUT, count, method, path, executed, delay_ms=hold_ms))

    def unknown_error(self, count: int | None = 1, *, executed: bool, method: str | None = None,
                      path: str | None = None) -> RequestFault:
        """HTTP 503 "Unknown error, please check your request or try again later.", executed or not."""
        return self.add(RequestFault(FaultKind.UNKNOWN_ERROR, count, method, path, executed))

    def service_unavailable(self, count: int | None = 1, method: str | None = None,
                            path: str | None = None) -> RequestFault:
        """HTTP 503 "Service Unavailable." (nothing executed)."""
        return self.add(RequestFault(FaultKind.SERVICE_UNAVAILABLE, count, method, path))

    def throttle(self, count: int | None = 1, *, exempt_reduce_only: bool = True, method: str | None = None,
                 path: str | None = None) -> RequestFault:
        """-1008 "Request throttled by system-level protection" on orders (by default)."""
        return self.add(RequestFault(FaultKind.THROTTLE, count, method, path,
                                     exempt_reduce_only=exempt_reduce_only))

    def reject_orders(self, count: int, code: int, message: str, *, method: str | None = None,
                      path: str | None = None) -> RequestFault:
        """Refuse the next ``count`` orders with HTTP 400 ``{"code": code, "msg": message}``."""
        return self.add(RequestFault(FaultKind.REJECT, count, method, path, code=code, message=message))

    def take(self, method: str, path: str, reduce_only: bool) -> RequestFault | None:
        """The first active fault this request meets (its count is used up by one)."""
        for fault in self.request_faults:
            if fault.matches(method, path, reduce_only):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.request_faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------------------------------------ server-wide
    def shift_clock(self, shift_ms: int) -> int:
        """The server's clock (what /fapi/v1/time says and timestamps are checked against) moves by ``shift_ms``."""
        self._gateway.shift_ms = shift_ms
        return shift_ms

    def blackout(self, seconds: float) -> int:
        """Answer nothing (HTTP or WebSocket) for ``seconds`` of real time; returns when it ends (gateway ms)."""
        self.blackout_until = self._wall_now() + int(seconds * 1000)
        self._hub.gate.paused = True
        return self.blackout_until

    def blackout_active(self) -> bool:
        """True while the blackout lasts; reopens the WebSocket gate once it is over."""
        active = self.blackout_until > self._wall_now()
        if not active and self._hub.gate.paused:
            self._hub.gate.paused = False
        return active

    def drop_connections(self, route: str | None = None, *, only_one: bool = False,
                         connection_id: int | None = None) -> int:
        """Cut WebSocket connections (all, one, or those of a route: market / public / private / unrouted)."""
        return self._hub.drop(route, connection_id, only_one)

    def silence_connections(self, route: str | None = None, *, only_one: bool = False,
                            connection_id: int | None = None, new_ones_too: bool = False) -> int:
        """Stop sending on connections without closing them."""
        return self._hub.silence(route, connection_id, only_one, new_ones_too=new_ones_too)

    def expire_listen_key(self, api_key: str | None = None) -> int:
        """End the listenKey of one account (every account when None) now, with ``listenKeyExpired``."""
        return self._user_streams.expire_now(api_key)

    def clear(self) -> None:
        """Every fault off (the clock shift back to 0, silenced connections speak again)."""
        self.request_faults.clear()
        self.blackout_until = 0
        self._hub.gate.paused = False
        self._gateway.shift_ms = 0
        self._hub.unsilence()

    def describe(self) -> dict[str, Any]:
        return {
            "requestFaults": [fault.describe() for fault in self.request_faults],
            "clockShiftMs": self._gateway.shift_ms,
            "blackoutUntil": self.blackout_until if self.blackout_active() else 0,
            "silencedRoutes": sorted(self._hub.silenced_routes),
        }
