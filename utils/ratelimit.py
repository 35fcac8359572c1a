"""Local rate-limit pools (request weight per IP, orders per account) that keep the bot inside Binance's budget.

Limits come from exchangeInfo ``rateLimits`` (2400 weight/min, 1200 orders/min and 300 orders/10 s until it is
read). Windows are fixed and aligned on the server's clock, as Binance's counters are; after every response the
local count is brought up to the server's own (``X-MBX-USED-WEIGHT-1M``, ``X-MBX-ORDER-COUNT-10S`` / ``-1M``), so
requests of other processes on the same IP or account count too. A request waits in :meth:`RateLimiter.acquire`
until it fits; it is never sent over the budget. When the budget is short, waiting requests are served by
:class:`Priority` (exits and cancels first), and new entries may not use the last ``reserve_fraction`` of a pool.
A 429 or 418 stops every request until its ``Retry-After`` has passed (the next window, or 2 minutes for a ban,
when the header is missing).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

log = logging.getLogger("utils.ratelimit")

MINUTE_MS = 60_000
DEFAULT_BAN_MS = 2 * MINUTE_MS
MAX_WAKE_MS = 250
_INTERVAL_MS = {"SECOND": 1000, "MINUTE": MINUTE_MS, "HOUR": 60 * MINUTE_MS, "DAY": 24 * 60 * MINUTE_MS}
_INTERVAL_LETTER = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}


class Priority(IntEnum):
    """Who goes first when the budget is short (lower value first)."""

    EXIT = 0  # cancels, exits, reduce-only orders, lookups of unknown outcomes
    NORMAL = 1  # queries, account reads, listenKey, back-fills
    ENTRY = 2  # new entries: never use the reserve


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One limit from exchangeInfo: ``REQUEST_WEIGHT`` or ``ORDERS``, per ``interval_ms``."""

    kind: str
    interval_ms: int
    limit: int

    @property
    def header(self) -> str:
        """The response header carrying the server's count for this window (lower-case)."""
        for name, length in _INTERVAL_MS.items():
            if self.interval_ms % length == 0 and (self.interval_ms // length < 60 or name == "DAY"):
                number = f"{self.interval_ms // length}{_INTERVAL_LETTER[name]}"
                break
        else:  # pragma: no cover - every interval is a whole number of seconds
            number = f"{self.interval_ms // 1000}S"
        prefix = "x-mbx-used-weight-" if self.kind == "REQUEST_WEIGHT" else "x-mbx-order-count-"
        return prefix + number.lower()


DEFAULT_LIMITS = (
    RateLimit("REQUEST_WEIGHT", MINUTE_MS, 2400),
    RateLimit("ORDERS", MINUTE_MS, 1200),
    RateLimit("ORDERS", 10_000, 300),
)


class RateLimitConfigError(ValueError):
    """exchangeInfo ``rateLimits`` that cannot be read."""


def parse_rate_limits(entries: Sequence[Mapping[str, Any]]) -> tuple[RateLimit, ...]:
    """exchangeInfo ``rateLimits`` -> the pools this module keeps (unknown kinds, e.g. RAW_REQUESTS, are ignored)."""
    limits: list[RateLimit] = []
    for entry in entries:
        try:
            kind = str(entry["rateLimitType"])
            interval_ms = _INTERVAL_MS[str(entry["interval"])] * int(entry.get("intervalNum", 1))
            limit = int(entry["limit"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RateLimitConfigError(f"exchangeInfo rateLimits entry {dict(entry)!r}: bad field {exc}") from None
        if kind in ("REQUEST_WEIGHT", "ORDERS") and limit > 0:
            limits.append(RateLimit(kind, interval_ms, limit))
    return tuple(limits)


class _Pool:
    __slots__ = ("limit", "start", "used")

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.start = -1
        self.used = 0

    def roll(self, now: int) -> None:
        start = now - now % self.limit.interval_ms
        if start > self.start:
            self.start = start
            self.used = 0

    def ends_at(self) -> int:
        return self.start + self.limit.interval_ms


@dataclass(order=True)
class _Waiter:
    priority: int
    sequence: int
    weight: int
    orders: int
    future: asyncio.Future[None]


class RateLimiter:
    """Request weight and order pools; ``clock_ms`` is the server's clock as best known (``TimeSync.now_ms``).

    ``acquire`` before sending, ``observe_headers`` with each response, ``back_off`` after a 429 / 418.
    """

    def __init__(self, limits: Sequence[RateLimit] = DEFAULT_LIMITS, *, clock_ms: Callable[[], int],
                 reserve_fraction: float = 0.1, guard_ms: int = 100) -> None:
        self._clock_ms = clock_ms
        self.reserve_fraction = reserve_fraction
        self.guard_ms = guard_ms  # a new window is used only this long after its start (clock uncertainty)
        self._pools: list[_Pool] = []
        self._waiters: list[_Waiter] = []
        self._sequence = itertools.count()
        self._wake: asyncio.TimerHandle | None = None
        self.blocked_until_ms = 0
        self.waits = 0
        self.back_offs = 0
        self.configure(limits)

    def configure(self, limits: Sequence[RateLimit]) -> None:
        """Use these limits from now on (exchangeInfo was read); counts of pools that stay are kept."""
        old = {(pool.limit.kind, pool.limit.interval_ms): pool for pool in self._pools}
        pools = []
        for limit in limits:
            pool = _Pool(limit)
            previous = old.get((limit.kind, limit.interval_ms))
            if previous is not None:
                pool.start, pool.used = previous.start, previous.used
            pools.append(pool)
        self._pools = pools

    @property
    def limits(self) -> tuple[RateLimit, ...]:
        return tuple(pool.limit for pool in self._pools)

    # ------------------------------------------------------------------------------------------ acquiring
    def _now(self) -> int:
        return self._clock_ms()

    def _fits(self, weight: int, orders: int, priority: int, now: int) -> bool:
        if now < self.blocked_until_ms:
            return False
        for pool in self._pools:
            pool.roll(now - self.guard_ms)
            cost = weight if pool.limit.kind == "REQUEST_WEIGHT" else orders
            if cost == 0:
                continue
            budget = pool.limit.limit
            if priority >= Priority.ENTRY:
                budget -= max(1, int(budget * self.reserve_fraction))
            if pool.used + cost > budget:
                return False
        return True

    def _take(self, weight: int, orders: int) -> None:
        for pool in self._pools:
            pool.used += weight if pool.limit.kind == "REQUEST_WEIGHT" else orders

    def try_acquire(self, weight: int = 1, orders: int = 0, priority: Priority = Priority.NORMAL) -> bool:
        """Take the budget now if it fits and nobody of the same or a higher priority is waiting."""
        if any(waiter.priority <= priority for waiter in self._waiters):
            return False
        if self._fits(weight, orders, priority, self._now()):
            self._take(weight, orders)
            return True
        return False

    async def acquire(self, weight: int = 1, orders: int = 0, priority: Priority = Priority.NORMAL) -> None:
        """Wait until ``weight`` request weight and ``orders`` orders fit, then take them."""
        if self.try_acquire(weight, orders, priority):
            return
        self.waits += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, _Waiter(int(priority), next(self._sequence), weight, orders, future))
        self._schedule()
        try:
            await future
        except asyncio.CancelledError:
            if future in (waiter.future for waiter in self._waiters):
                self._waiters = [waiter for waiter in self._waiters if waiter.future is not future]
                heapq.heapify(self._waiters)
            elif future.done() and not future.cancelled():
                self._give_back(weight, orders)
            raise

    def _give_back(self, weight: int, orders: int) -> None:
        for pool in self._pools:
            pool.used = max(0, pool.used - (weight if pool.limit.kind == "REQUEST_WEIGHT" else orders))

    def _serve(self) -> None:
        self._wake = None
        now = self._now()
        while self._waiters:
            head = self._waiters[0]
            if head.future.done():
                heapq.heappop(self._waiters)
                continue
            if not self._fits(head.weight, head.orders, head.priority, now):
                break
            heapq.heappop(self._waiters)
            self._take(head.weight, head.orders)
            head.future.set_result(None)
        self._schedule()

    def _schedule(self) -> None:
        """Wake the queue when the earliest thing that could free budget happens (a window end, the back-off)."""
        if not self._waiters or self._wake is not None:
            return
        now = self._now()
        moments = [pool.ends_at() + self.guard_ms for pool in self._pools if pool.start >= 0]
        if self.blocked_until_ms > now:
            moments = [max(m, self.blocked_until_ms) for m in moments] or [self.blocked_until_ms]
        future_moments = [m for m in moments if m > now]
        delay_ms = min(future_moments) - now if future_moments else 10
        # Look again at least every MAX_WAKE_MS: the clock is the server's, which a resync may move.
        delay_ms = min(max(delay_ms, 1), MAX_WAKE_MS)
        self._wake = asyncio.get_running_loop().call_later(delay_ms / 1000, self._serve)

    # ----------------------------------------------------------------------------------- keeping in step
    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Bring each pool up to the server's count from a response's ``X-MBX-USED-WEIGHT-*`` /
        ``X-MBX-ORDER-COUNT-*`` headers (never down: a request of ours may be in flight)."""
        if not headers:
            return
        now = self._now()
        lowered = {key.lower(): value for key, value in headers.items()}
        for pool in self._pools:
            value = lowered.get(pool.limit.header)
            if value is None:
                continue
            try:
                used = int(value)
            except ValueError:
                continue
            pool.roll(now - self.guard_ms)
            if used > pool.used:
                pool.used = used

    def back_off(self, http_status: int, retry_after_ms: int | None) -> int:
        """A 429 or 418 arrived: no request leaves before its Retry-After (default: the end of the weight window
        for 429, 2 minutes for 418). Returns the server-clock time it blocks until."""
        now = self._now()
        if retry_after_ms is None:
            if http_status == 418:
                retry_after_ms = DEFAULT_BAN_MS
            else:
                weight_pools = [pool for pool in self._pools if pool.limit.kind == "REQUEST_WEIGHT"]
                retry_after_ms = (weight_pools[0].ends_at() - now + self.guard_ms) if weight_pools else MINUTE_MS
        until = now + max(retry_after_ms, 0) + self.guard_ms
        self.blocked_until_ms = max(self.blocked_until_ms, until)
        self.back_offs += 1
        log.warning("rate limited (HTTP %d): no requests for %.1f s", http_status, (until - now) / 1000,
                    extra={"http_status": http_status, "retry_after_ms": retry_after_ms})
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        self._schedule()
        return self.blocked_until_ms

    # ---------------------------------------------------------------------------------------- reporting
    def snapshot(self) -> dict[str, Any]:
        """What the heartbeat shows: each pool's used/limit in its current window, and any back-off."""
        now = self._now()
        pools = {}
        for pool in self._pools:
            pool.roll(now - self.guard_ms)
            pools[pool.limit.header.removeprefix("x-mbx-")] = {"used": pool.used, "limit": pool.limit.limit}
        return {"pools": pools, "waiting": len(self._waiters),
                "blocked_for_ms": max(0, self.blocked_until_ms - now), "back_offs": self.back_offs}
