"""The execution core's vocabulary: the inputs a shell feeds it and the commands it returns, as plain data.

A shell hands the core one input at a time and carries out the returned commands in order. Persist commands
(``Persist*``) must be durable before any exchange command of the same batch leaves ("persist before send"):
shells apply all of a batch's persist commands in one transaction first, then the exchange commands. Every
exchange command is answered by exactly one result input (``SubmitResult``, ``CancelResult``, ``LookupResult``,
``PositionsResult``, ``ReconcileSnapshot``), stamped with the shell's market time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from executor.risk import StateRecord
from utils.binance_parse import UserEvent
from utils.domain import (
    AlgoStatus,
    Candle,
    Fill,
    IntentState,
    MarkPrice,
    Order,
    OrderIntent,
    Position,
    RoundTrip,
    Signal,
    SignalOutcome,
)
from utils.filters import SymbolFilters

# ================================================================================================== results


class Outcome(StrEnum):
    """What came of a request to the exchange."""

    ACCEPTED = "ACCEPTED"  # the exchange did it (an order placed, a cancel done, an order found)
    REJECTED = "REJECTED"  # the exchange answered with an error: the request did NOT execute
    UNKNOWN = "UNKNOWN"  # timeout, 408, 503 "Unknown error": it may or may not have executed
    NOT_FOUND = "NOT_FOUND"  # a lookup or cancel: the exchange has no such order (-2013 / -2011)


@dataclass(frozen=True, slots=True)
class AlgoAck:
    """What the exchange says about a conditional (algo) order."""

    algo_id: int
    client_algo_id: str
    symbol: str
    status: AlgoStatus
    triggered_order_id: int | None = None  # the order its trigger placed (``actualOrderId`` / ``ai``)


@dataclass(frozen=True, slots=True)
class SubmitResult:
    client_order_id: str
    outcome: Outcome
    time: int
    order: Order | None = None  # plain orders, when ACCEPTED
    algo: AlgoAck | None = None  # conditional orders, when ACCEPTED
    code: int | None = None  # Binance's error code, when REJECTED (or UNKNOWN with a body)
    message: str = ""
    retry_after_ms: int | None = None  # a rate-limit refusal that said when to come back


@dataclass(frozen=True, slots=True)
class CancelResult:
    client_order_id: str
    outcome: Outcome
    time: int
    order: Order | None = None
    algo: AlgoAck | None = None
    code: int | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class LookupResult:
    client_order_id: str
    outcome: Outcome
    time: int
    order: Order | None = None
    algo: AlgoAck | None = None
    code: int | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class PositionsResult:
    """The exchange's positions of one symbol (every position side), or why they could not be read."""

    symbol: str
    time: int
    positions: tuple[Position, ...] = ()
    ok: bool = True
    message: str = ""


@dataclass(frozen=True, slots=True)
class ExchangeSnapshot:
    """Everything reconciliation compares: what the exchange holds now, fetched by the shell for a ``Reconcile``."""

    time: int
    open_orders: tuple[Order, ...]
    open_algo_orders: tuple[AlgoAck, ...]
    positions: tuple[Position, ...]
    wallet_balance: Decimal
    fills: tuple[Fill, ...]  # every fill since the ones we know (the Reconcile command said from where)
    lookups: tuple[LookupResult, ...]  # the orders the command asked about, one result each
    fresh_account: bool = False  # a simulated exchange that started empty (nothing it lacks is a surprise)


@dataclass(frozen=True, slots=True)
class ReconcileSnapshot:
    """The answer to a ``Reconcile`` command: the snapshot, or why it could not be taken."""

    reason: str
    time: int
    snapshot: ExchangeSnapshot | None
    error: str = ""
    #: The read failed for a reason that passes (rate limit, timeout, 5xx, connection): the core tries again
    #: later, holding new entries back meanwhile; otherwise (the API key refused) trading halts at once.
    retryable: bool = False


# =================================================================================================== inputs


@dataclass(frozen=True, slots=True)
class SignalInput:
    signal: Signal


@dataclass(frozen=True, slots=True)
class CandleInput:
    candle: Candle


@dataclass(frozen=True, slots=True)
class MarkPriceInput:
    mark: MarkPrice


@dataclass(frozen=True, slots=True)
class UserEventInput:
    event: UserEvent
    time: int  # the shell's market time when it arrived (events carry their own time too)


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes (the shell calls when ``ExecutionCore.next_wakeup()`` is due, and at least every minute)."""

    time: int


@dataclass(frozen=True, slots=True)
class StreamInterrupted:
    """The user-data stream dropped, was reconnected, or its listenKey expired: events may have been missed."""

    time: int
    reason: str


@dataclass(frozen=True, slots=True)
class OperatorChange:
    """An operator changed a risk state outside the bot (``main.py risk clear``): take the stored record."""

    record: StateRecord
    time: int


@dataclass(frozen=True, slots=True)
class FiltersUpdate:
    """exchangeInfo was read again: these symbols' filters and status apply from ``time`` on.

    A symbol whose ``status`` is not ``TRADING`` gets no new entries (exits, stops and cancels still go out); a
    configured symbol that left exchangeInfo is handed over with a status saying so. Symbols the core was not
    configured with are ignored.
    """

    filters: tuple[SymbolFilters, ...]
    time: int


Input = (
    SignalInput
    | CandleInput
    | MarkPriceInput
    | UserEventInput
    | Tick
    | StreamInterrupted
    | OperatorChange
    | FiltersUpdate
    | SubmitResult
    | CancelResult
    | LookupResult
    | PositionsResult
    | ReconcileSnapshot
)

# ================================================================================================= commands


@dataclass(frozen=True, slots=True)
class PersistSignal:
    """Store a signal with what came of it (stored again when that changes, e.g. a reversal's entry left)."""

    signal: Signal
    outcome: SignalOutcome = SignalOutcome.IGNORED
    detail: str = ""
    client_order_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PersistIntent:
    """Store an order about to be sent, with its intent state (the row exists before the request leaves)."""

    intent: OrderIntent
    time: int
    state: IntentState = IntentState.PENDING_SEND


@dataclass(frozen=True, slots=True)
class PersistIntentState:
    client_order_id: str
    state: IntentState
    time: int
    reject_code: int | None = None
    reject_message: str | None = None


@dataclass(frozen=True, slots=True)
class PersistOrder:
    """The exchange's report of an order (merged: status only moves forward)."""

    order: Order
    is_algo: bool | None = None
    time: int = 0
    actual_order_id: int | None = None  # a triggered conditional order: the order it placed


@dataclass(frozen=True, slots=True)
class PersistFill:
    fill: Fill


@dataclass(frozen=True, slots=True)
class PersistPosition:
    position: Position


@dataclass(frozen=True, slots=True)
class PersistFunding:
    symbol: str
    time: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PersistRiskState:
    record: StateRecord


@dataclass(frozen=True, slots=True)
class PersistRoundTrip:
    trip: RoundTrip


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """Send a plain (LIMIT / MARKET) order."""

    intent: OrderIntent


@dataclass(frozen=True, slots=True)
class SubmitAlgoOrder:
    """Send a conditional order to the algo-order service (stop-loss / take-profit)."""

    intent: OrderIntent


@dataclass(frozen=True, slots=True)
class CancelOrder:
    symbol: str
    client_order_id: str
    is_algo: bool
    reason: str


@dataclass(frozen=True, slots=True)
class LookUpOrder:
    symbol: str
    client_order_id: str
    is_algo: bool


@dataclass(frozen=True, slots=True)
class ReadPositions:
    """Read one symbol's positions from the exchange (before an exit retry, so it never over-closes)."""

    symbol: str


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Fetch an :class:`ExchangeSnapshot` and hand it back as a :class:`ReconcileSnapshot`."""

    reason: str
    lookups: tuple[tuple[str, str, bool], ...]  # (symbol, client order id, is_algo) the core thinks may be live
    #: (symbol, last trade id we hold, since): fills after that trade id; with no trade id, fills since the
    #: earliest unsettled order was sent (None and None: nothing to fetch).
    fills_from: tuple[tuple[str, int | None, int | None], ...]
    symbols: tuple[str, ...] = ()


class Level(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a person may want to know (the shell logs it and publishes it); the core itself never logs."""

    level: Level
    event: str
    fields: dict[str, object] = field(default_factory=dict)


PersistCommand = (
    PersistSignal
    | PersistIntent
    | PersistIntentState
    | PersistOrder
    | PersistFill
    | PersistPosition
    | PersistFunding
    | PersistRiskState
    | PersistRoundTrip
)
ExchangeCommand = SubmitOrder | SubmitAlgoOrder | CancelOrder | LookUpOrder | ReadPositions | Reconcile
Command = PersistCommand | ExchangeCommand | Notice

PERSIST_TYPES = (
    PersistSignal,
    PersistIntent,
    PersistIntentState,
    PersistOrder,
    PersistFill,
    PersistPosition,
    PersistFunding,
    PersistRiskState,
    PersistRoundTrip,
)
EXCHANGE_TYPES = (SubmitOrder, SubmitAlgoOrder, CancelOrder, LookUpOrder, ReadPositions, Reconcile)
