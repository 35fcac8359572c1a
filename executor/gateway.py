"""The executor's view of an exchange (an async protocol), and its in-process implementation over the simulator.

The executor only ever talks to an :class:`ExchangeGateway`. In sim mode that is :class:`SimGateway`, which calls
the in-process :class:`simulator.engine.SimExchange` and turns its user-data events into the same parsed
events a live user-data stream yields. A live gateway (REST + user-data WebSocket) implements the same protocol.

Outcome-unknown faults (a request that timed out before or after the exchange acted on it, or a 503 "Unknown
error") can be injected into SimGateway, so the executor's "look it up before any retry" path is tested against
a real matching engine rather than a mock.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from simulator.engine import SimExchange
from utils.binance_parse import PayloadError, UserEvent, parse_user_event
from utils.domain import ZERO, AlgoStatus, Fill, Order, OrderIntent, Position
from utils.errors import BinanceError, OutcomeUnknownError

log = logging.getLogger("executor.gateway")


@dataclass(frozen=True, slots=True)
class AlgoAck:
    """What the exchange says about a conditional (algo) order."""

    algo_id: int
    client_algo_id: str
    symbol: str
    status: AlgoStatus


@dataclass(frozen=True, slots=True)
class AccountInfo:
    wallet_balance: Decimal
    available_balance: Decimal
    equity: Decimal
    unrealized_pnl: Decimal


class ExchangeGateway(Protocol):
    """Everything the executor asks of an exchange. Errors: BinanceError (did not execute) or OutcomeUnknownError."""

    async def place_order(self, intent: OrderIntent) -> Order: ...
    async def place_algo_order(self, intent: OrderIntent) -> AlgoAck: ...
    async def cancel_order(self, symbol: str, client_order_id: str) -> Order: ...
    async def cancel_algo_order(self, client_algo_id: str) -> AlgoAck: ...
    async def query_order(self, symbol: str, client_order_id: str) -> Order: ...
    async def query_algo_order(self, client_algo_id: str) -> AlgoAck: ...
    async def open_orders(self, symbol: str | None = None) -> list[Order]: ...
    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoAck]: ...
    async def positions(self) -> list[Position]: ...
    async def account(self) -> AccountInfo: ...
    async def user_trades(self, symbol: str, *, start_time: int | None = None) -> list[Fill]: ...
    def take_user_events(self) -> list[UserEvent]: ...


class Fault(StrEnum):
    """Injectable failures of the next request (SimGateway.inject)."""

    TIMEOUT_BEFORE = "timeout_before"  # the request never reached the exchange; the caller cannot know that
    TIMEOUT_AFTER = "timeout_after"  # the exchange executed it, the response was lost
    UNKNOWN_503 = "unknown_503"  # HTTP 503 "Unknown error...": executed or not, the caller cannot tell
    SERVICE_UNAVAILABLE = "service_unavailable"  # HTTP 503 "Service Unavailable.": definitely not executed


class SimGateway:
    """ExchangeGateway over the in-process simulated exchange, with optional fault injection."""

    #: The simulated exchange lives only as long as the process: a restart starts it afresh.
    ephemeral = True

    def __init__(self, exchange: SimExchange) -> None:
        self.exchange = exchange
        self._events: deque[dict[str, Any]] = deque()
        self._faults: deque[tuple[str, Fault]] = deque()
        self.requests = 0
        exchange.add_listener(self._events.append)

    # ------------------------------------------------------------------------------------------- faults
    def inject(self, fault: Fault, operation: str = "place_order") -> None:
        """Make the next ``operation`` call fail with ``fault`` (queued; one fault per call)."""
        self._faults.append((operation, fault))

    def _call[Result](self, operation: str, action: Callable[[], Result]) -> Result:
        self.requests += 1
        fault = None
        if self._faults and self._faults[0][0] == operation:
            fault = self._faults.popleft()[1]
        if fault is Fault.TIMEOUT_BEFORE:
            raise OutcomeUnknownError(f"{operation}: request timed out (injected; it never reached the exchange)")
        if fault is Fault.SERVICE_UNAVAILABLE:
            raise BinanceError(-1001, "Service Unavailable.", http_status=503)
        result = action()
        if fault is Fault.TIMEOUT_AFTER:
            raise OutcomeUnknownError(f"{operation}: request timed out (injected; the exchange did act on it)")
        if fault is Fault.UNKNOWN_503:
            raise OutcomeUnknownError(f"{operation}: HTTP 503 Unknown error, please check your request or try "
                                      "again later. (injected; the exchange did act on it)")
        return result

    # -------------------------------------------------------------------------------------------- orders
    async def place_order(self, intent: OrderIntent) -> Order:
        if intent.order_type.is_conditional:
            raise BinanceError(-4120, "Order type not supported for this endpoint. Please use the Algo Order "
                                      "API endpoints instead.")
        return self._call("place_order", lambda: self.exchange.new_order(
            symbol=intent.symbol, side=intent.side, order_type=intent.order_type, quantity=intent.quantity,
            price=intent.price, time_in_force=intent.time_in_force, position_side=intent.position_side,
            reduce_only=intent.reduce_only, client_order_id=intent.client_order_id,
        ))

    async def place_algo_order(self, intent: OrderIntent) -> AlgoAck:
        algo = self._call("place_algo_order", lambda: self.exchange.new_algo_order(
            symbol=intent.symbol, side=intent.side, order_type=intent.order_type,
            trigger_price=intent.stop_price or ZERO,
            quantity=None if intent.close_position else intent.quantity, close_position=intent.close_position,
            working_type=intent.working_type, position_side=intent.position_side,
            reduce_only=intent.reduce_only and not intent.close_position, client_algo_id=intent.client_order_id,
        ))
        return AlgoAck(algo.algo_id, algo.client_algo_id, algo.symbol, algo.status)

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        return self._call("cancel_order", lambda: self.exchange.cancel_order(symbol, client_order_id=client_order_id))

    async def cancel_algo_order(self, client_algo_id: str) -> AlgoAck:
        algo = self._call("cancel_algo_order", lambda: self.exchange.cancel_algo_order(client_algo_id=client_algo_id))
        return AlgoAck(algo.algo_id, algo.client_algo_id, algo.symbol, algo.status)

    async def query_order(self, symbol: str, client_order_id: str) -> Order:
        return self._call("query_order", lambda: self.exchange.query_order(symbol, client_order_id=client_order_id))

    async def query_algo_order(self, client_algo_id: str) -> AlgoAck:
        algo = self._call("query_algo_order", lambda: self.exchange.query_algo_order(client_algo_id=client_algo_id))
        return AlgoAck(algo.algo_id, algo.client_algo_id, algo.symbol, algo.status)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self._call("open_orders", lambda: self.exchange.open_orders(symbol))

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoAck]:
        algos = self._call("open_algo_orders", lambda: self.exchange.open_algo_orders(symbol))
        return [AlgoAck(a.algo_id, a.client_algo_id, a.symbol, a.status) for a in algos]

    async def positions(self) -> list[Position]:
        return self._call("positions", self.exchange.positions)

    async def account(self) -> AccountInfo:
        state = self._call("account", self.exchange.account)
        return AccountInfo(state.wallet_balance, state.available_balance, state.equity, state.unrealized_pnl)

    async def user_trades(self, symbol: str, *, start_time: int | None = None) -> list[Fill]:
        return self._call("user_trades", lambda: self.exchange.user_trades(symbol, start_time=start_time, limit=1000))

    # ----------------------------------------------------------------------------------- user data stream
    def take_user_events(self) -> list[UserEvent]:
        """Parsed user-data events emitted since the last call, in order (malformed ones logged and skipped)."""
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

