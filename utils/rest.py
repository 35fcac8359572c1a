"""The bot's Binance REST client (aiohttp): exact decimal parameters, signing with the server-time offset, per-call
timeouts, rate-limit pools, and errors classified for the caller (``utils/errors.py``).

Retries: a GET that timed out or got a 5xx (and any request that provably never left: connection refused) is
retried up to ``get_retries`` times; a -1021 is retried once, for every method, after re-measuring the time
offset (the request was refused, so nothing executed). Anything else that is not a GET is never retried here: a
POST that timed out or got a 5xx "Unknown error" may have executed, and only the caller can look it up (by
clientOrderId) before sending again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from utils.errors import (
    AuthError,
    BinanceError,
    ClockSkewError,
    NotSentError,
    OutcomeUnknownError,
    RateLimitedError,
    classify,
)
from utils.precision import to_wire
from utils.ratelimit import Priority, RateLimiter
from utils.signing import Signer
from utils.timesync import TimeSync

log = logging.getLogger("utils.rest")

ParamValue = str | int | Decimal | bool | Enum | None
Params = Mapping[str, ParamValue]

DEFAULT_TIMEOUT_SEC = 10.0
DEFAULT_GET_RETRIES = 2
USER_AGENT = "auto-coin-trader-v3"


class ParameterError(ValueError):
    """A parameter value that cannot be sent exactly (a float, a non-finite Decimal, ...)."""


def encode_value(name: str, value: ParamValue) -> str:
    """One parameter as Binance expects it: Decimals in plain notation (never ``1E-5``), booleans lower-case,
    enums by value. Floats are refused: they cannot carry an exact price or quantity."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ParameterError(f"parameter {name!r}: {value} is not a finite number")
        return to_wire(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise ParameterError(f"parameter {name!r}: {type(value).__name__} values are not sent (use Decimal or str)")


_PLAIN = re.compile(r"[A-Za-z0-9._~-]*\Z").match  # needs no percent-encoding


def encode_params(params: Params | None) -> str:
    """``a=1&b=2`` in the given order, values percent-encoded; ``None`` values are left out."""
    if not params:
        return ""
    parts = []
    for name, value in params.items():
        if value is None:
            continue
        text = value if type(value) is str else encode_value(name, value)
        parts.append(f"{name}={text}" if _PLAIN(text) else f"{name}={quote(text, safe='')}")
    return "&".join(parts)


def _retry_after_ms(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0, int(float(value) * 1000))
    except ValueError:
        return None


class RestClient:
    """Async Binance USD-M REST client. Use as ``async with RestClient(...) as rest`` or ``start()`` / ``close()``.

    ``signer`` and ``api_key`` are needed for SIGNED / USER_STREAM calls only. ``on_auth_error`` is called once
    per -1022 / -2014 / -2015 (the shell halts the bot); the error is raised to the caller as well.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, signer: Signer | None = None,
                 recv_window_ms: int = 5000, timeout_sec: float = DEFAULT_TIMEOUT_SEC,
                 get_retries: int = DEFAULT_GET_RETRIES, time_sync: TimeSync | None = None,
                 rate_limiter: RateLimiter | None = None, session: aiohttp.ClientSession | None = None,
                 on_auth_error: Callable[[AuthError], None] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.signer = signer
        self.recv_window_ms = recv_window_ms
        self.timeout_sec = timeout_sec
        self.get_retries = get_retries
        self.time_sync = time_sync or TimeSync(self.server_time)
        self.rate_limiter = rate_limiter or RateLimiter(clock_ms=self.time_sync.now_ms)
        self._session = session
        self._owns_session = session is None
        self.on_auth_error = on_auth_error
        self.requests = 0
        self.errors: dict[str, int] = {}

    # ------------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
            self._owns_session = True

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> RestClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --------------------------------------------------------------------------------------------- calls
    async def server_time(self) -> int:
        """``GET /fapi/v1/time``'s ``serverTime`` (unsigned, weight 1, first in the rate-limit queue)."""
        await self.rate_limiter.acquire(1, 0, Priority.EXIT)
        body = await self._send("GET", "/fapi/v1/time", "", "", {}, self.timeout_sec)
        try:
            return int(body["serverTime"])
        except (KeyError, TypeError, ValueError):
            raise BinanceError(0, f"GET /fapi/v1/time: no serverTime in {str(body)[:200]!r}", 200) from None

    async def request(self, method: str, path: str, params: Params | None = None, *, signed: bool = False,
                      api_key: bool = False, weight: int = 1, orders: int = 0,
                      priority: Priority = Priority.NORMAL, timeout_sec: float | None = None) -> Any:
        """Send one request and return its parsed JSON body, or raise a classified error.

        ``signed``: add ``recvWindow``, ``timestamp`` and ``signature`` (and the key header); ``api_key``: the key
        header only (USER_STREAM calls). GET and DELETE carry parameters in the query, POST and PUT in the body.
        ``weight`` and ``orders`` are what the call costs in the rate-limit pools.
        """
        method = method.upper()
        timeout = self.timeout_sec if timeout_sec is None else timeout_sec
        headers: dict[str, str] = {}
        if signed or api_key:
            if not self.api_key:
                raise AuthError(-2014, "no API key configured for a call that needs one", 0)
            headers["X-MBX-APIKEY"] = self.api_key
        attempts = 0
        clock_retried = False
        while True:
            attempts += 1
            text = encode_params(params)
            await self.rate_limiter.acquire(weight, orders, priority)
            if signed:  # signed after any wait for the budget, so the timestamp is fresh
                text = self._signed_text(text)
            in_body = method in ("POST", "PUT")
            query, body = ("", text) if in_body else (text, "")
            try:
                return await self._send(method, path, query, body, headers, timeout)
            except ClockSkewError:
                if clock_retried or not signed:
                    raise
                clock_retried = True
                log.warning("%s %s: timestamp outside recvWindow (-1021); re-measuring the server time", method,
                            path)
                await self.time_sync.sync()
            except NotSentError:
                if attempts > self.get_retries:
                    raise
                await asyncio.sleep(min(0.2 * attempts, 1.0))
            except OutcomeUnknownError:
                if method != "GET" or attempts > self.get_retries:
                    raise
                await asyncio.sleep(min(0.2 * attempts, 1.0))
            except BinanceError as exc:
                if method != "GET" or exc.http_status < 500 or attempts > self.get_retries:
                    raise
                await asyncio.sleep(min(0.2 * attempts, 1.0))

    def _signed_text(self, text: str) -> str:
        if self.signer is None:
            raise AuthError(-2014, "no API secret configured for a SIGNED call", 0)
        stamp = f"recvWindow={self.recv_window_ms}&timestamp={self.time_sync.now_ms()}"
        total = f"{text}&{stamp}" if text else stamp
        return f"{total}&signature={self.signer.signature_param(total)}"

    async def _send(self, method: str, path: str, query: str, body: str, headers: Mapping[str, str],
                    timeout: float) -> Any:
        if self._session is None:
            await self.start()
        assert self._session is not None
        # encoded=True: send the query exactly as signed (yarl would otherwise re-quote it, e.g. %3A -> ":").
        url = URL(f"{self.base_url}{path}?{query}" if query else f"{self.base_url}{path}", encoded=True)
        all_headers = dict(headers)
        if body:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.requests += 1
        what = f"{method} {path}"
        try:
            async with self._session.request(method, url, data=body.encode() if body else None,
                                             headers=all_headers,
                                             timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                status = response.status
                response_headers = response.headers
                raw = await response.read()
        except TimeoutError:
            self._count("outcome_unknown")
            raise OutcomeUnknownError(f"{what}: no answer within {timeout:g} s (the request may have executed)")\
                from None
        except aiohttp.ClientConnectorError as exc:
            self._count("not_sent")
            raise NotSentError(f"{what}: could not connect ({exc.os_error or exc})") from None
        except (aiohttp.ClientError, OSError) as exc:
            # The connection broke after the request may have been written: its outcome is unknown.
            self._count("outcome_unknown")
            raise OutcomeUnknownError(f"{what}: connection lost ({type(exc).__name__}: {exc})") from None
        self.rate_limiter.observe_headers(response_headers)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        if 200 <= status < 300:
            if parsed is None and raw:
                self._count("outcome_unknown")
                raise OutcomeUnknownError(f"{what}: HTTP {status} with a body that is not JSON: {raw[:200]!r}")
            return parsed
        code, message = 0, ""
        if isinstance(parsed, Mapping):
            try:
                code = int(parsed.get("code", 0))
            except (TypeError, ValueError):
                code = 0
            message = str(parsed.get("msg", ""))
        if not message:
            message = raw[:200].decode("utf-8", "replace").strip() or f"HTTP {status}"
        retry_after = _retry_after_ms(response_headers)
        error = classify(code, message, status, retry_after_ms=retry_after)
        self._count(error.kind.value)
        if isinstance(error, RateLimitedError):
            self.rate_limiter.back_off(status, retry_after)
        elif isinstance(error, AuthError) and self.on_auth_error is not None:
            self.on_auth_error(error)
        raise error

    def _count(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """What the heartbeat shows: requests sent, errors by kind, time offset, rate-limit pools."""
        sample = self.time_sync.last_sample
        return {"requests": self.requests, "errors": dict(self.errors),
                "time_offset_ms": self.time_sync.offset_ms,
                "time_round_trip_ms": sample.round_trip_ms if sample else None,
                "rate_limits": self.rate_limiter.snapshot()}
