"""Binance's rate limits: request weight per IP, orders per account, 429 with Retry-After, and the 418 ban.

Windows are fixed and aligned on the gateway clock (a minute window resets at every whole minute, the order
window every 10 s), which is how Binance's ``X-MBX-USED-WEIGHT-1M`` / ``X-MBX-ORDER-COUNT-*`` counters behave.
Every request counts, refused ones included. A request that would pass the limit gets HTTP 429 (-1003 or -1015)
with ``Retry-After``; an IP that sends again before that time has passed is banned: HTTP 418 for 2 minutes, the
ban doubling with each repeat up to 3 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.server import errors
from utils.errors import BinanceError

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS


@dataclass(frozen=True)
class RateLimitConfig:
    """The limits the server enforces (exchangeInfo ``rateLimits`` is built from them)."""

    request_weight_per_minute: int = 2400
    orders_per_10s: int = 300
    orders_per_minute: int = 1200
    funding_requests_per_5min: int = 500  # fundingRate and fundingInfo share this pool (Binance: 500 / 5 min / IP)
    violations_before_ban: int = 1        # requests sent after a 429 and before its Retry-After
    first_ban_ms: int = 2 * MINUTE_MS
    max_ban_ms: int = 3 * DAY_MS

    def exchange_info(self) -> list[dict[str, Any]]:
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": self.request_weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": self.orders_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.orders_per_10s},
        ]


class FixedWindow:
    """A counter that resets at every multiple of ``length_ms``."""

    __slots__ = ("length_ms", "start", "used")

    def __init__(self, length_ms: int) -> None:
        self.length_ms = length_ms
        self.start = -1
        self.used = 0

    def _roll(self, now: int) -> None:
        start = now - now % self.length_ms
        if start != self.start:
            self.start = start
            self.used = 0

    def add(self, now: int, amount: int) -> int:
        self._roll(now)
        self.used += amount
        return self.used

    def current(self, now: int) -> int:
        self._roll(now)
        return self.used

    def ends_at(self, now: int) -> int:
        self._roll(now)
        return self.start + self.length_ms


def retry_after_seconds(now: int, until: int) -> int:
    return max(1, -(-(until - now) // 1000))


@dataclass
class _IpState:
    weight: FixedWindow = field(default_factory=lambda: FixedWindow(MINUTE_MS))
    funding: FixedWindow = field(default_factory=lambda: FixedWindow(5 * MINUTE_MS))
    back_off_until: int = 0
    violations: int = 0
    banned_until: int = 0
    bans: int = 0


@dataclass
class RateLimited(Exception):
    """A refused request: the error to answer with and the Retry-After seconds."""

    error: BinanceError
    retry_after: int
    used_weight: int


class IpLimiter:
    """Request weight per IP, the 429 back-off and the 418 ban."""

    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        self._ips: dict[str, _IpState] = {}

    def admit(self, ip: str, weight: int, now: int, *, funding_pool: bool = False) -> int:
        """Count the request; returns the weight used this minute, or raises ``RateLimited`` (429 / 418)."""
        state = self._ips.get(ip)
        if state is None:
            state = self._ips[ip] = _IpState()
        config = self.config
        used = state.weight.add(now, weight)
        if state.banned_until > now:
            raise RateLimited(errors.ip_banned(state.banned_until), retry_after_seconds(now, state.banned_until),
                              used)
        if state.back_off_until > now:
            state.violations += 1
            if state.violations >= config.violations_before_ban:
                duration = min(config.first_ban_ms * 2 ** state.bans, config.max_ban_ms)
                state.bans += 1
                state.banned_until = now + duration
                state.back_off_until = 0
                state.violations = 0
                raise RateLimited(errors.ip_banned(state.banned_until), retry_after_seconds(now, state.banned_until),
                                  used)
        if used > config.request_weight_per_minute:
            return self._refuse(state, now, state.weight.ends_at(now), errors.too_many_requests(
                config.request_weight_per_minute), used)
        if funding_pool and state.funding.add(now, 1) > config.funding_requests_per_5min:
            return self._refuse(state, now, state.funding.ends_at(now), errors.too_many_requests(
                config.request_weight_per_minute), used)
        return used

    @staticmethod
    def _refuse(state: _IpState, now: int, until: int, error: BinanceError, used: int) -> int:
        state.back_off_until = until
        state.violations = 0
        raise RateLimited(error, retry_after_seconds(now, until), used)

    def used_weight(self, ip: str, now: int) -> int:
        state = self._ips.get(ip)
        return state.weight.current(now) if state is not None else 0

    def lift_bans(self) -> None:
        """Forget every back-off and ban (tests; the admin endpoint)."""
        for state in self._ips.values():
            state.banned_until = state.back_off_until = state.violations = state.bans = 0


class OrderLimiter:
    """Orders per account: 10 s and 1 min windows (``X-MBX-ORDER-COUNT-10S`` / ``-1M``)."""

    __slots__ = ("config", "ten_seconds", "minute")

    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        self.ten_seconds = FixedWindow(10_000)
        self.minute = FixedWindow(MINUTE_MS)

    def admit(self, now: int) -> tuple[int, int]:
        """Count one order; returns (count in 10 s, count in 1 min), or raises ``RateLimited`` (429, -1015)."""
        ten = self.ten_seconds.add(now, 1)
        minute = self.minute.add(now, 1)
        if ten > self.config.orders_per_10s:
            raise RateLimited(errors.too_many_orders(self.config.orders_per_10s, "10 SECOND"),
                              retry_after_seconds(now, self.ten_seconds.ends_at(now)), 0)
        if minute > self.config.orders_per_minute:
            raise RateLimited(errors.too_many_orders(self.config.orders_per_minute, "1 MINUTE"),
                              retry_after_seconds(now, self.minute.ends_at(now)), 0)
        return ten, minute

    def counts(self, now: int) -> tuple[int, int]:
        return self.ten_seconds.current(now), self.minute.current(now)
