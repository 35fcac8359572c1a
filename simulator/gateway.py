"""The in-process simulated exchange as an :class:`~executor.gateway.ExchangeGateway`, with fault injection.

Its coroutines never suspend (the simulator answers at once), so the synchronous applier can drive them
without an event loop (``runtime/applier.py``). The exchange's user-data events are collected and handed out,
parsed, by :meth:`SimGateway.take_user_events`, exactly as a live user-data stream would deliver them.

Faults make the next call of an operation fail the way Binance can: a timeout before or after the exchange
acted, 503 "Unknown error" (executed, the caller cannot tell), 503 "Service Unavailable." (not executed), or any
Binance error code (429 rate limit, -1008 throttled, ...). So the core's unknown-outcome and retry paths are
tested against a real matching engine rather than a mock.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from executor.commands import AlgoAck
from executor.gateway import TRADES_PAGE, AccountInfo
from simulator.engine import AlgoOrder, SimExchange
from utils.binance_parse import PayloadError, UserEvent, parse_user_event
from utils.clock import Clock
from utils.domain import ZERO, Fill, Order, OrderIntent, Position
from utils.errors import BinanceError, OutcomeUnknownError

log = logging.getLogger("simulator.gateway")


class Fault(StrEnum):
    """Injectable failures of the next call (SimGateway.inject)."""

    TIMEOUT_BEFORE = "timeout_before"  # the request never reached the exchange; the caller cannot know that
    TIMEOUT_AFTER = "timeout_after"  # the exchange executed it, the response was lost
    UNKNOWN_503 = "unknown_503"  # HTTP 503 "Unknown error...": executed, the caller cannot tell
    SERVICE_UNAVAILABLE = "service_unavailable"  # HTTP 503 "Service Unavailable.": definitely not executed
    APPLIED_LATE = "applied_late"  # the request times out and the exchange applies it ``delay_ms`` later


@dataclass(frozen=True, slots=True)
class _Injected:
    operation: str
    fault: Fault | None = None
    error: BinanceError | None = None  # refuse with this error instead (not executed)
    delay_ms: int = 0


def _algo_ack(algo: AlgoOrder) -> AlgoAck:
    return AlgoAck(algo.algo_id, algo.client_algo_id, algo.symbol, algo.status, algo.actual_order_id or None)


class SimGateway:
    """ExchangeGateway over the in-process simulated exchange."""

    def __init__(self, exchange: SimExchange, clock: Clock | None = None) -> None:
        self.exchange = exchange
        self.clock = clock  # needed only by the APPLIED_LATE fault
        self._events: deque[dict[str, Any]] = deque()
        self._faults: deque[_Injected] = deque()
        self.requests = 0
        self.sent_client_order_ids: list[str] = []  # every order request that reached the exchange, in order
        self._delayed: list[tuple[int, Callable[[], object]]] = []  # (apply at, action) of APPLIED_LATE requests
        exchange.add_listener(self._events.append)

    # ------------------------------------------------------------------------------------------- faults
    def inject(self, fault: Fault, operation: str = "place_order", times: int = 1, *, delay_ms: int = 0) -> None:
        """Make the next ``times`` calls of ``operation`` fail with ``fault`` (queued, in order).

        ``APPLIED_LATE`` needs ``delay_ms``: the request times out now and reaches the exchange that much later
        (applied at the first call or event poll after that time), as a request stuck in Binance's queue can.
        """
        if fault is Fault.APPLIED_LATE and (delay_ms <= 0 or self.clock is None):
            raise ValueError("APPLIED_LATE needs delay_ms > 0 and a SimGateway built with the clock")
        for _ in range(times):
            self._faults.append(_Injected(operation, fault=fault, delay_ms=delay_ms))

    def _apply_delayed(self) -> None:
        if not self._delayed or self.clock is None:
            return
        now = self.clock.now_ms()
        due = [entry for entry in self._delayed if entry[0] <= now]
        if not due:
            return
        self._delayed = [entry for entry in self._delayed if entry[0] > now]
        for _, action in due:
            try:
                action()
            except BinanceError as exc:  # refused when it finally arrived: nobody hears of it (as live)
                log.info("a late request was refused by the exchange", extra={"code": exc.code, "reason": exc.msg})

    def inject_error(self, code: int, message: str, *, operation: str = "place_order", http_status: int = 400,
                     times: int = 1) -> None:
        """Make the next ``times`` calls of ``operation`` be refused with a Binance error (nothing executes)."""
        for _ in range(times):
            self._faults.append(_Injected(operation, error=BinanceError(code, message, http_status=http_status)))

    def _call[Result](self, operation: str, action: Callable[[], Result]) -> Result:
        self.requests += 1
        self._apply_delayed()
        injected = None
        for index, candidate in enumerate(self._faults):
            if candidate.operation == operation:
                injected = candidate
                del self._faults[index]
                break
        if injected is not None and injected.error is not None:
            raise injected.error
        fault = injected.fault if injected is not None else None
        if fault is Fault.TIMEOUT_BEFORE:
            raise OutcomeUnknownError(f"{operation}: request timed out (injected; it never reached the exchange)")
        if fault is Fault.SERVICE_UNAVAILABLE:
            raise BinanceError(-1001, "Service Unavailable.", http_status=503)
        if fault is Fault.APPLIED_LATE and injected is not None:
            assert self.clock is not None
            self._delayed.append((self.clock.now_ms() + injected.delay_ms, action))
            raise OutcomeUnknownError(f"{operation}: request timed out (injected; the exchange applies it "
                                      f"{injected.delay_ms} ms later)")
        result = action()
        if fault is Fault.TIMEOUT_AFTER:
            raise OutcomeUnknownError(f"{operation}: request timed out (injected; the exchange did act on it)")
        if fault is Fault.UNKNOWN_503:
            raise BinanceError(-1000, "Unknown error, please check your request or try again later.",
                               http_status=503)
        return result

    # -------------------------------------------------------------------------------------------- orders
    async def place_order(self, intent: OrderIntent) -> Order:
        if intent.order_type.is_conditional:
            raise BinanceError(-4120, "Order type not supported for this endpoint. Please use the Algo Order "
                                      "API endpoints instead.")

        def action() -> Order:
            self.sent_client_order_ids.append(intent.client_order_id)
            return self.exchange.new_order(
                symbol=intent.symbol, side=intent.side, order_type=intent.order_type, quantity=intent.quantity,
                price=intent.price, time_in_force=intent.time_in_force, position_side=intent.position_side,
                reduce_only=intent.reduce_only, client_order_id=intent.client_order_id)

        return self._call("place_order", action)

    async def place_algo_order(self, intent: OrderIntent) -> AlgoAck:
        def action() -> AlgoOrder:
            self.sent_client_order_ids.append(intent.client_order_id)
            return self.exchange.new_algo_order(
                symbol=intent.symbol, side=intent.side, order_type=intent.order_type,
                trigger_price=intent.stop_price or ZERO,
                quantity=None if intent.close_position else intent.quantity, close_position=intent.close_position,
                working_type=intent.working_type, position_side=intent.position_side,
                reduce_only=intent.reduce_only and not intent.close_position, client_algo_id=intent.client_order_id)

        return _algo_ack(self._call("place_algo_order", action))

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        return self._call("cancel_order", lambda: self.exchange.cancel_order(symbol, client_order_id=client_order_id))

    async def cancel_algo_order(self, client_algo_id: str) -> AlgoAck:
        return _algo_ack(self._call("cancel_algo_order",
                                    lambda: self.exchange.cancel_algo_order(client_algo_id=client_algo_id)))

    async def query_order(self, symbol: str, client_order_id: str) -> Order:
        return self._call("query_order", lambda: self.exchange.query_order(symbol, client_order_id=client_order_id))

    async def query_algo_order(self, client_algo_id: str) -> AlgoAck:
        return _algo_ack(self._call("query_algo_order",
                                    lambda: self.exchange.query_algo_order(client_algo_id=client_algo_id)))

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self._call("open_orders", lambda: self.exchange.open_orders(symbol))

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoAck]:
        algos = self._call("open_algo_orders", lambda: self.exchange.open_algo_orders(symbol))
        return [_algo_ack(algo) for algo in algos]

    async def positions(self, symbol: str | None = None) -> list[Position]:
        return self._call("positions", lambda: self.exchange.positions(symbol))

    async def account(self) -> AccountInfo:
        state = self._call("account", self.exchange.account)
        return AccountInfo(state.wallet_balance, state.available_balance, state.equity, state.unrealized_pnl)

    async def user_trades(self, symbol: str, *, from_id: int | None = None, start_time: int | None = None,
                          end_time: int | None = None, limit: int = TRADES_PAGE) -> list[Fill]:
        # Binance's userTrades rows carry the orderId but no clientOrderId: neither do these.
        def action() -> list[Fill]:
            rows = self.exchange.user_trades(symbol, from_id=from_id, start_time=start_time, end_time=end_time,
                                             limit=limit)
            return [replace(fill, client_order_id="") for fill in rows]

        return self._call("user_trades", action)

    # ----------------------------------------------------------------------------------- user data stream
    def inject_raw_event(self, event: dict[str, Any]) -> None:
        """Queue a raw user-data frame as if the stream had delivered it (for tests of malformed frames)."""
        self._events.append(event)

    def take_user_events(self) -> list[UserEvent]:
        """Parsed user-data events emitted since the last call, in order (malformed ones logged and skipped)."""
        self._apply_delayed()
        parsed: list[UserEvent] = []
        while self._events:
            raw = self._events.popleft()
            try:
                parsed.append(parse_user_event(raw))
            except PayloadError as exc:
                log.error("malformed user-data event skipped", extra={"error": str(exc), "event": raw.get("e")})
        return parsed

    @property
    def pending_events(self) -> int:
        return len(self._events)
