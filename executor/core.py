"""The execution core: signals, market data, exchange reports and request results in; ordered commands out.

Synchronous and deterministic: no I/O, no awaits, no clock reads, no database, no bus. Time comes in with every
input and never goes backwards inside the core. Each input method returns the list of commands the shell must
carry out, in order; persist commands must be durable before any exchange command of the same list is sent
(see ``executor/commands.py``). A shell feeds the core from one consumer only: the core is never entered
concurrently.

Rules that keep orders from being lost or doubled (``docs/decisions.md``):
* client order ids are derived from the signal; every id ever stored is known (seeded from the database at
  start), so a replayed signal or a redelivered request never sends a second order;
* the intent is persisted before the request leaves;
* an outcome that is unknown (timeout, 408, 503 "Unknown error") is looked up after growing delays; an order is
  only declared never placed after the exchange has said "not found" over the whole unknown-outcome window, and
  a replacement then gets a new client order id derived from the old one;
* an exit that fails is retried with backoff, re-reading the position before each retry, until the position is
  flat or the retries give up and trading halts with the reason;
* protective orders (stop-loss / take-profit, ``closePosition``) are placed on the first fill of an entry, so a
  partially filled entry is covered too, and cancelled when the position is flat;
* every fill is recognised by (symbol, trade id), so a redelivered report changes nothing;
* after a restart, round trips, owners and open orders come from the database (``CoreSeed``) and reconciliation
  with the exchange runs before any new entry.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from executor import reconcile
from executor.commands import (
    AlgoAck,
    CancelOrder,
    CancelResult,
    CandleInput,
    Command,
    ExchangeSnapshot,
    FiltersUpdate,
    Input,
    Level,
    LookUpOrder,
    LookupResult,
    MarkPriceInput,
    Notice,
    OperatorChange,
    Outcome,
    PersistFill,
    PersistFunding,
    PersistIntent,
    PersistIntentState,
    PersistOrder,
    PersistPosition,
    PersistRiskState,
    PersistRoundTrip,
    PersistSignal,
    PositionsResult,
    ReadPositions,
    Reconcile,
    ReconcileSnapshot,
    SignalInput,
    StreamInterrupted,
    SubmitAlgoOrder,
    SubmitOrder,
    SubmitResult,
    Tick,
    UserEventInput,
)
from executor.ids import retry_client_order_id
from executor.planner import ExecutionSettings, Holding, plan_signal, protective_orders
from executor.risk import GLOBAL_SCOPE, Guard, RiskEngine
from utils.binance_parse import AccountUpdate, AlgoUpdate, ListenKeyExpired, OrderUpdate, UserEvent
from utils.domain import (
    ZERO,
    AlgoStatus,
    Candle,
    Fill,
    IntentState,
    MarkPrice,
    Order,
    OrderIntent,
    OrderPurpose,
    OrderStatus,
    OrderType,
    Position,
    PositionMode,
    PositionSide,
    RoundTrip,
    Side,
    Signal,
    SignalOutcome,
    TimeInForce,
    TripStatus,
)
from utils.filters import SymbolFilters

ORDER_NOT_FOUND = -2013
UNKNOWN_ORDER = -2011
DUPLICATE_CLIENT_ORDER_ID = -4116
WOULD_IMMEDIATELY_TRIGGER = -2021
CLOSE_POSITION_EXISTS = -4130
AUTH_ERRORS = frozenset({-1022, -2014, -2015})

TRADING = "TRADING"  # the exchangeInfo status of a symbol that takes new orders
PositionKey = tuple[str, PositionSide]
PERIODIC = "periodic"  # the reason of the routine reconciliation while running
FillDigest = tuple[int, Side, Decimal, Decimal]  # order id, side, price, quantity: what a trade id must mean


def fill_digest(fill: Fill) -> FillDigest:
    return (fill.order_id, fill.side, fill.price, fill.quantity)


@dataclass(frozen=True, slots=True)
class ExecutionPolicy:
    """The timing rules of the order path (``docs/decisions.md``: unknown outcomes, exit retries)."""

    #: How long after sending an order whose outcome is unknown the exchange must keep saying "not found" before
    #: the order is declared never placed (Binance may apply a request late; 30 s or more).
    unknown_outcome_window_ms: int = 30_000
    #: Delays of the lookups after an unknown outcome (then every last delay until the window has passed).
    lookup_delays_ms: tuple[int, ...] = (500, 2_000, 5_000, 15_000)
    #: After the window, an order that still cannot be looked up is asked about this often.
    late_lookup_every_ms: int = 60_000
    #: Backoff between the attempts of an exit (or protective order) that must eventually succeed.
    retry_delays_ms: tuple[int, ...] = (1_000, 2_000, 5_000, 10_000, 30_000, 60_000)
    #: Attempts after the first before giving up and halting with the reason.
    max_retries: int = 8
    #: A cancel whose outcome is unknown is tried again after this long.
    cancel_retry_ms: int = 5_000
    #: Reconcile with the exchange this often while running (cheap: open orders, positions, account and the fills
    #: since the last one held); None: only at start and after stream interruptions (backtests).
    reconcile_every_ms: int | None = 900_000
    #: A difference nothing explains is looked at again after this long before trading halts (a fill that landed
    #: between the reads of one snapshot explains itself in the next); new entries wait meanwhile.
    confirm_difference_ms: int = 5_000
    #: Cancel open orders on our symbols that this bot did not place (otherwise they are recorded and left alone).
    cancel_foreign_orders: bool = False

    def __post_init__(self) -> None:
        if self.unknown_outcome_window_ms < 30_000:
            raise ValueError(f"unknown_outcome_window_ms must be >= 30000, got {self.unknown_outcome_window_ms}")
        if not self.lookup_delays_ms or not self.retry_delays_ms:
            raise ValueError("lookup_delays_ms and retry_delays_ms need at least one delay")
        if self.max_retries < 1:
            raise ValueError(f"max_retries must be >= 1, got {self.max_retries}")


@dataclass(slots=True)
class TrackedOrder:
    """What the core knows about one of its orders (the purpose is not something the exchange knows)."""

    intent: OrderIntent
    is_algo: bool
    create_time: int  # market time at which the core decided to place it
    intent_state: IntentState = IntentState.SENT
    status: OrderStatus | None = None
    order_id: int | None = None
    executed: Decimal = ZERO  # what the exchange says has filled
    applied: Decimal = ZERO  # what the books have taken in from fills
    first_sent: int = 0  # when the (first) request left
    lookups: int = 0  # lookups made since the outcome became unknown
    in_flight: bool = False  # a submit, lookup or cancel awaits its result
    cancel_requested: bool = False
    halted_for: bool = False  # a global halt was raised because its outcome stayed unknown

    @property
    def is_open(self) -> bool:
        """Working on the exchange, or possibly so (sent, outcome not yet known)."""
        if self.status is None:
            return self.intent_state.is_unresolved
        return self.status.is_open

    @property
    def unsettled(self) -> bool:
        """Still working, or filled on the exchange before its fills reached the books."""
        return self.is_open or self.executed > self.applied

    @property
    def to_book(self) -> Decimal:
        """What may still reach the books from this order: the unfilled rest while open, else unbooked fills."""
        if self.is_open:
            return self.intent.quantity - self.applied
        return max(self.executed - self.applied, ZERO)

    @property
    def key(self) -> PositionKey:
        return (self.intent.symbol, self.intent.position_side)


@dataclass(slots=True)
class MustSucceed:
    """An exit or protective order that failed and is retried until it succeeds or the retries give up."""

    original: OrderIntent  # the first intent; retries derive their ids from its id
    attempts: int = 0
    last_error: str = ""
    awaiting_positions: bool = False


@dataclass(slots=True)
class ExecutorStats:
    signals: int = 0
    intents: int = 0
    sent: int = 0
    refused_by_risk: int = 0
    refused_by_filters: int = 0
    refused_by_planner: int = 0
    rejected_by_exchange: int = 0
    outcome_unknown: int = 0
    duplicates_skipped: int = 0
    ttl_cancels: int = 0
    fills: int = 0
    closed_trades: int = 0
    exit_retries: int = 0
    reconciliations: int = 0
    refusals: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "refusals"}


@dataclass(frozen=True, slots=True)
class CoreSeed:
    """What the database knows at start, so that the core needs no database read afterwards."""

    known_client_order_ids: frozenset[str] = frozenset()
    attribution: Mapping[str, tuple[str, OrderPurpose]] = field(default_factory=dict)  # cid -> strategy, purpose
    live_orders: tuple[TrackedOrder, ...] = ()  # orders that are (or may be) open on the exchange
    #: every stored fill: (symbol, trade id) -> what it was (order id, side, price, quantity)
    fills: Mapping[tuple[str, int], FillDigest] = field(default_factory=dict)
    open_trips: tuple[RoundTrip, ...] = ()
    last_trade_ids: Mapping[str, int] = field(default_factory=dict)
    wallet_balance: Decimal = ZERO
    #: (symbol, exchange order id) -> client order id of every stored order (and of the orders triggered
    #: conditional orders placed): userTrades rows name only the order id
    order_ids: Mapping[tuple[str, int], str] = field(default_factory=dict)
    #: symbol -> when the bot first stored an order on it: fills are read back to there for a symbol with none stored
    first_order_times: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Deferred:
    """A reversal's entry waiting for its exit, with the signal it answers and the exit orders already sent."""

    intent: OrderIntent
    signal: Signal
    sent: tuple[str, ...]


class _Timer(StrEnum):
    LOOKUP = "lookup"
    RETRY = "retry"  # a MustSucceed order's next attempt (key: the original client order id)
    CANCEL = "cancel"
    RECONCILE = "reconcile"  # key: the reason


_ALGO_TO_ORDER_STATUS = {
    AlgoStatus.NEW: OrderStatus.NEW,
    AlgoStatus.TRIGGERING: OrderStatus.NEW,
    AlgoStatus.TRIGGERED: OrderStatus.FILLED,
    AlgoStatus.FINISHED: OrderStatus.FILLED,
    AlgoStatus.CANCELED: OrderStatus.CANCELED,
    AlgoStatus.EXPIRED: OrderStatus.EXPIRED,
    AlgoStatus.REJECTED: OrderStatus.REJECTED,
}


class ExecutionCore:
    """Owns order placement and the books: positions, owners, round trips, the risk engine's facts."""

    def __init__(
        self,
        *,
        risk: RiskEngine,
        filters: Mapping[str, SymbolFilters],
        settings: Iterable[ExecutionSettings],
        position_mode: PositionMode,
        policy: ExecutionPolicy | None = None,
        seed: CoreSeed | None = None,
        leverage: Mapping[str, int] | None = None,
    ) -> None:
        self.risk = risk
        self.filters = dict(filters)
        self.settings = {(s.strategy, s.symbol): s for s in settings}
        self.position_mode = position_mode
        self.policy = policy or ExecutionPolicy()
        self.leverage = dict(leverage or {s.symbol: s.leverage for s in self.settings.values()})
        self.now = 0
        self.stats = ExecutorStats()
        self.holdings: dict[PositionKey, Holding] = {}
        self.trips: dict[PositionKey, RoundTrip] = {}
        self.entry_prices: dict[PositionKey, Decimal] = {}
        self.exchange_positions: dict[PositionKey, Decimal] = {}
        self.last_price: dict[str, Decimal] = {}
        self.mark_price: dict[str, Decimal] = {}
        self.wallet_balance = ZERO
        self.orders: dict[str, TrackedOrder] = {}  # every order this core placed or was seeded with
        self._live: dict[str, TrackedOrder] = {}  # the unsettled ones: the only ones scanned per candle
        self._known_ids: set[str] = set()
        self._attribution: dict[str, tuple[str, OrderPurpose]] = {}
        self._fills: dict[tuple[str, int], FillDigest] = {}
        self._last_trade_id: dict[str, int] = {}
        self._cid_by_order: dict[tuple[str, int], str] = {}  # (symbol, order id) -> client order id
        self._first_order_time: dict[str, int] = {}  # symbol -> when the bot first placed an order on it
        self._must_succeed: dict[str, MustSucceed] = {}  # original client order id -> retry state
        self._retry_of: dict[str, str] = {}  # a retry's client order id -> the original's
        self._protected: set[PositionKey] = set()  # positions whose protective orders were placed
        self._deferred: dict[PositionKey, _Deferred] = {}  # reversal entries waiting for their exit
        self._refusal: tuple[SignalOutcome, str] | None = None  # why the last _request sent nothing
        self._timers: list[tuple[int, int, _Timer, str]] = []
        self._timer_seq = 0
        self._reconciling: str | None = None  # the reason of a reconciliation in progress
        self._reconcile_again: str | None = None
        self._reconcile_failures = 0  # reads of the exchange that failed in a row (tried again, then halt)
        self._reconcile_waiting: str | None = None  # the reason of a reconciliation to be tried again
        self._suspect: list[str] = []  # differences found once, being confirmed before trading halts
        self._suspect_since: dict[str, int] = {}  # each difference's key -> when it was first seen
        self._periodic_scheduled = False
        self._started = False
        self.last_reconcile: reconcile.ReconcilePlan | None = None
        self._known_states = {scope: record.state for scope, record in risk.states().items()}
        self._seed_problems: tuple[str, ...] = ()
        if seed is not None:
            self._seed(seed)

    # ============================================================================================ seeding
    def _seed(self, seed: CoreSeed) -> None:
        self._known_ids.update(seed.known_client_order_ids)
        self._attribution.update(seed.attribution)
        self._fills.update(seed.fills)
        self._last_trade_id.update(seed.last_trade_ids)
        self._cid_by_order.update(seed.order_ids)
        self._first_order_time.update(seed.first_order_times)
        self.wallet_balance = seed.wallet_balance
        for tracked in seed.live_orders:
            cid = tracked.intent.client_order_id
            self.orders[cid] = tracked
            self._live[cid] = tracked
            self._known_ids.add(cid)
        open_trips: dict[PositionKey, list[str]] = {}
        for trip in seed.open_trips:
            key = (trip.symbol, trip.position_side)
            open_trips.setdefault(key, []).append(trip.trip_id)
            self.trips[key] = trip
            self.holdings[key] = Holding(trip.amount, trip.strategy or None)
            self.entry_prices[key] = trip.entry_price
        for tracked in seed.live_orders:
            if tracked.intent.purpose.is_protective and tracked.key in self.holdings:
                self._protected.add(tracked.key)
        # The bot keeps one open round trip per position; a database with more cannot say which one holds it
        # (every reconciliation reports it, so trading halts until an operator repairs the database).
        self._seed_problems = tuple(
            f"{symbol} {side.value}: the database holds {len(ids)} open round trips ({', '.join(ids)}) for one "
            "position" for (symbol, side), ids in sorted(open_trips.items()) if len(ids) > 1)

    def start(self, now: int) -> list[Command]:
        """The first input after construction: reconcile with the exchange before trading."""
        self._advance(now)
        self._started = True
        return self._begin_reconcile("start", now)

    # ============================================================================================ views
    def _sides(self) -> tuple[PositionSide, ...]:
        if self.position_mode is PositionMode.ONEWAY:
            return (PositionSide.BOTH,)
        return (PositionSide.LONG, PositionSide.SHORT)

    def holdings_for(self, symbol: str) -> dict[PositionSide, Holding]:
        return {side: self.holdings.get((symbol, side), Holding()) for side in self._sides()}

    def open_orders(self) -> list[TrackedOrder]:
        return [tracked for tracked in self._live.values() if tracked.is_open]

    @property
    def live_count(self) -> int:
        """Orders in the live index (open, or filled with fills not yet booked): all the per-candle work sees."""
        return len(self._live)

    def open_orders_by_id(self) -> dict[str, TrackedOrder]:
        return {cid: tracked for cid, tracked in self._live.items() if tracked.is_open}

    def symbol_exposure(self, symbol: str) -> Decimal:
        """Absolute notional held on ``symbol``, plus what entries already sent will add when they fill."""
        price = self.mark_price.get(symbol) or self.last_price.get(symbol) or ZERO
        held = sum((abs(h.amount) * price for (s, _), h in self.holdings.items() if s == symbol), ZERO)
        coming = sum((t.to_book * (t.intent.price or price) for t in self._live.values()
                      if t.intent.symbol == symbol and t.intent.purpose is OrderPurpose.ENTRY), ZERO)
        return held + coming

    def _pending_new_positions(self, strategy: str) -> int:
        """Entries of ``strategy`` sent from flat whose first fill has not reached the books yet."""
        return sum(1 for t in self._live.values()
                   if t.intent.strategy == strategy and t.intent.purpose is OrderPurpose.ENTRY and t.applied == 0
                   and t.to_book > 0 and self.holdings.get(t.key, Holding()).amount == 0)

    def unrealized_pnl(self, strategy: str | None = None) -> Decimal:
        total = ZERO
        for key, holding in self.holdings.items():
            if holding.amount == 0 or (strategy is not None and holding.owner != strategy):
                continue
            mark = self.mark_price.get(key[0]) or self.last_price.get(key[0])
            entry = self.entry_prices.get(key)
            if mark and entry:
                total += holding.amount * (mark - entry)
        return total

    def equity(self) -> Decimal:
        return self.wallet_balance + self.unrealized_pnl()

    @property
    def reconciling(self) -> bool:
        return self._reconciling is not None

    def next_wakeup(self) -> int | None:
        """The market time at which the core wants a :class:`Tick` (a lookup or retry falls due), if any."""
        return self._timers[0][0] if self._timers else None

    def position_mismatches(self) -> list[str]:
        """Positions the exchange reports (ACCOUNT_UPDATE) that the fills we know do not explain."""
        problems = []
        for key in sorted(set(self.exchange_positions) | {k for k, h in self.holdings.items() if h.amount}):
            ours = self.holdings.get(key, Holding()).amount
            theirs = self.exchange_positions.get(key, ZERO)
            if ours != theirs:
                problems.append(f"{key[0]} {key[1].value}: fills say {ours}, exchange says {theirs}")
        return problems

    # ============================================================================================ dispatch
    def handle(self, item: Input) -> list[Command]:
        """Any input, for shells that queue them; timers that fell due by the input's time fire after it."""
        commands = self._dispatch(item)
        if self._timers and self._timers[0][0] <= self.now and not isinstance(item, Tick):
            commands.extend(self.on_tick(self.now))
        return commands

    def _dispatch(self, item: Input) -> list[Command]:
        if isinstance(item, SignalInput):
            return self.on_signal(item.signal)
        if isinstance(item, CandleInput):
            return self.on_candle(item.candle)
        if isinstance(item, MarkPriceInput):
            return self.on_mark_price(item.mark)
        if isinstance(item, UserEventInput):
            return self.on_user_event(item.event, item.time)
        if isinstance(item, SubmitResult):
            return self.on_submit_result(item)
        if isinstance(item, LookupResult):
            return self.on_lookup_result(item)
        if isinstance(item, CancelResult):
            return self.on_cancel_result(item)
        if isinstance(item, PositionsResult):
            return self.on_positions(item)
        if isinstance(item, ReconcileSnapshot):
            return self.on_reconcile_snapshot(item)
        if isinstance(item, Tick):
            return self.on_tick(item.time)
        if isinstance(item, StreamInterrupted):
            return self.on_stream_interrupted(item.reason, item.time)
        if isinstance(item, OperatorChange):
            return self.on_operator_change(item)
        if isinstance(item, FiltersUpdate):
            return self.on_filters_update(item)
        raise TypeError(f"not an input of the execution core: {type(item).__name__}")

    def _advance(self, time: int) -> int:
        if time > self.now:
            self.now = time
        return self.now

    # ========================================================================================== risk state
    def _risk_changes(self) -> list[Command]:
        commands: list[Command] = []
        for record in self.risk.drain_state_changes():
            previous = self._known_states.get(record.scope)
            if previous is not record.state:
                level = Level.INFO if record.state.value == "ACTIVE" else Level.WARNING
                commands.append(Notice(level, "trading state changed", {
                    "scope": record.scope, "state": record.state.value, "reason": record.reason}))
                self._known_states[record.scope] = record.state
            commands.append(PersistRiskState(record))
        return commands

    def _halt(self, reason: str) -> list[Command]:
        self.risk.halt(GLOBAL_SCOPE, reason, self.now)
        return [Notice(Level.ERROR, "trading halted", {"reason": reason}), *self._risk_changes()]

    def on_operator_change(self, change: OperatorChange) -> list[Command]:
        """An operator cleared or set a state in the database while the bot runs."""
        self._advance(change.time)
        self.risk.replace_state(change.record)
        self._known_states[change.record.scope] = change.record.state
        self.risk.drain_state_changes()  # it is already stored: nothing to persist
        return [Notice(Level.INFO, "operator changed a trading state", {
            "scope": change.record.scope, "state": change.record.state.value, "reason": change.record.reason})]

    # ====================================================================================== exchangeInfo
    def on_filters_update(self, update: FiltersUpdate) -> list[Command]:
        """exchangeInfo read again: changed filters are used from now on; a symbol not TRADING takes no entries."""
        self._advance(update.time)
        commands: list[Command] = []
        for new in update.filters:
            old = self.filters.get(new.symbol)
            if old is None or old == new:
                continue
            self.filters[new.symbol] = new
            if old.status != new.status:
                trading = new.status == TRADING
                commands.append(Notice(Level.INFO if trading else Level.WARNING,
                                       "symbol trading again: entries allowed" if trading
                                       else "symbol not trading: no new entries",
                                       {"symbol": new.symbol, "status": new.status, "was": old.status}))
            changed = sorted(name for name in old.__dataclass_fields__
                             if name != "status" and getattr(old, name) != getattr(new, name))
            if changed:
                commands.append(Notice(Level.INFO, "exchange filters changed; the new ones apply from now on", {
                    "symbol": new.symbol, "changed": ", ".join(changed)}))
        return commands

    def symbols_not_trading(self) -> dict[str, str]:
        """Configured symbols whose exchangeInfo status is not TRADING, with that status."""
        return {symbol: f.status for symbol, f in sorted(self.filters.items()) if f.status != TRADING}

    # ============================================================================================= signals
    def on_signal(self, signal: Signal) -> list[Command]:
        now = self._advance(signal.time)
        self.stats.signals += 1
        commands: list[Command] = []
        settings = self.settings.get((signal.strategy, signal.symbol))
        filters = self.filters.get(signal.symbol)
        if settings is None or filters is None:
            detail = "no such strategy/symbol in the configuration"
            return [PersistSignal(signal, SignalOutcome.IGNORED, detail),
                    Notice(Level.ERROR, "signal for a strategy/symbol that is not configured", {
                        "strategy": signal.strategy, "symbol": signal.symbol})]
        reference = self.last_price.get(signal.symbol) or self.mark_price.get(signal.symbol)
        if reference is None:
            return [PersistSignal(signal, SignalOutcome.IGNORED, "no price known yet for this symbol"),
                    Notice(Level.WARNING, "signal before any price is known; ignored", {"symbol": signal.symbol})]
        plan = plan_signal(signal, settings=settings, filters=filters, position_mode=self.position_mode,
                           holdings=self.holdings_for(signal.symbol), reference_price=reference,
                           equity=self.equity())
        if plan.refused:
            self.stats.refused_by_planner += 1
            commands.append(Notice(Level.INFO, "signal not (fully) acted on", {
                "strategy": signal.strategy, "symbol": signal.symbol, "side": signal.side.value,
                "reason": plan.refused}))
        exiting = {(i.symbol, i.position_side) for i in plan.intents if i.purpose is OrderPurpose.EXIT}
        sent: list[str] = []
        refusals: list[tuple[SignalOutcome, str]] = []
        waiting = False
        for intent in plan.intents:
            self.stats.intents += 1
            key = (intent.symbol, intent.position_side)
            if intent.purpose is OrderPurpose.ENTRY:
                self._deferred.pop(key, None)  # a newer signal replaces an entry still waiting
                if self.holdings.get(key, Holding()).amount == 0:
                    self.holdings[key] = Holding(ZERO, intent.strategy)  # reserved until the entry resolves
                elif key in exiting:
                    # A reversal in one-way mode: the entry goes out once the exit has made the position flat,
                    # so a failed exit can never leave the entry netting against the old position.
                    self._deferred[key] = _Deferred(intent, signal, tuple(sent))
                    waiting = True
                    continue
            commands.extend(self._request(intent, now))
            if self._refusal is None:
                sent.append(intent.client_order_id)
            else:
                refusals.append(self._refusal)
        if waiting and sent:
            outcome, detail = SignalOutcome.WAITING, "the exit was sent; the entry waits until it has filled"
        elif sent:
            outcome, detail = SignalOutcome.ORDERED, plan.refused or ""
        elif refusals:
            outcome, detail = refusals[0]
        elif plan.refused:
            outcome, detail = SignalOutcome.REFUSED_BY_PLANNER, plan.refused
        else:
            outcome, detail = SignalOutcome.NO_ACTION, f"the position is already {signal.side.value}"
        commands.insert(0, PersistSignal(signal, outcome, detail, tuple(sent)))
        return commands

    # ============================================================================================== orders
    def _check_risk(self, intent: OrderIntent, now: int) -> tuple[bool, Guard | None, str]:
        if intent.purpose is OrderPurpose.ENTRY:
            status = self.filters[intent.symbol].status
            if status != TRADING:
                return False, Guard.SYMBOL_STATUS, (f"{intent.symbol} is {status} on the exchange, not TRADING: "
                                                    "no new entries")
            price = intent.price or self.last_price.get(intent.symbol) or ZERO
            decision = self.risk.check_entry(strategy=intent.strategy, symbol=intent.symbol,
                                             notional=intent.quantity * price,
                                             symbol_exposure=self.symbol_exposure(intent.symbol), now_ms=now,
                                             pending_new_positions=self._pending_new_positions(intent.strategy))
            if decision.allowed and self._reconcile_waiting not in (None, PERIODIC):
                return False, Guard.TRADING_STATE, ("no new entries until the exchange can be read for the "
                                                    f"reconciliation ({self._reconcile_waiting})")
            if decision.allowed and self._reconciling not in (None, PERIODIC):
                # (a routine check does not hold entries back: a difference it finds is confirmed, and that does)
                return False, Guard.TRADING_STATE, (f"no new entries while reconciling with the exchange "
                                                    f"({self._reconciling})")
            if decision.allowed and self._suspect:
                return False, Guard.TRADING_STATE, ("no new entries while a difference with the exchange is being "
                                                    f"confirmed: {self._suspect[0]}")
            return decision.allowed, decision.guard, decision.reason
        decision = self.risk.check_exit(strategy=intent.strategy, symbol=intent.symbol, now_ms=now)
        return decision.allowed, decision.guard, decision.reason

    def _has_pending_entry(self, key: PositionKey, strategy: str) -> bool:
        deferred = self._deferred.get(key)
        if deferred is not None and deferred.intent.strategy == strategy:
            return True
        for tracked in self._live.values():
            intent = tracked.intent
            if (intent.purpose is OrderPurpose.ENTRY and intent.strategy == strategy and tracked.key == key
                    and tracked.unsettled):
                return True
        return False

    def _has_working_exit(self, key: PositionKey) -> bool:
        if any(t.intent.purpose is OrderPurpose.EXIT and t.key == key and t.is_open for t in self._live.values()):
            return True
        return any(state.original.purpose is OrderPurpose.EXIT
                   and (state.original.symbol, state.original.position_side) == key
                   for state in self._must_succeed.values())

    def _release_if_idle(self, key: PositionKey) -> None:
        """Drop a reservation whose entry came to nothing (refused, rejected, cancelled or expired unfilled)."""
        holding = self.holdings.get(key)
        if holding is not None and holding.amount == 0 and (
                holding.owner is None or not self._has_pending_entry(key, holding.owner)):
            del self.holdings[key]

    def _request(self, intent: OrderIntent, now: int) -> list[Command]:
        """Risk guards, ownership, filters; then persist the intent and send it (retries come here too).

        Leaves ``self._refusal`` as None when the order was sent, else (outcome, reason) for the signal's record.
        """
        commands: list[Command] = []
        cid = intent.client_order_id
        self._refusal = None
        key = (intent.symbol, intent.position_side)
        entry = intent.purpose is OrderPurpose.ENTRY
        if cid in self._known_ids:
            self.stats.duplicates_skipped += 1
            self._refusal = (SignalOutcome.ALREADY_SENT, f"order {cid} is already stored; not sent again")
            commands.append(Notice(Level.INFO, "order already stored; not sent again", {"client_order_id": cid}))
            if entry:
                self._release_if_idle(key)
            return commands
        if intent.purpose is OrderPurpose.EXIT and cid not in self._retry_of and self._has_working_exit(key):
            self._refusal = (SignalOutcome.NO_ACTION, "an exit for this position is already working")
            commands.append(Notice(Level.INFO, "an exit for this position is already working; not sent again",
                                   {"client_order_id": cid, "symbol": intent.symbol}))
            return commands
        allowed, guard, reason = self._check_risk(intent, now)
        commands.extend(self._risk_changes())
        if not allowed:
            self.stats.refused_by_risk += 1
            self._refusal = (SignalOutcome.REFUSED_BY_RISK, f"{guard.value if guard else 'risk'}: {reason}")
            if len(self.stats.refusals) < 1000:
                self.stats.refusals.append(f"{guard}: {reason}")
            # A scope that is already REDUCING/HALTED was announced when it changed; its refusals are routine.
            level = Level.INFO if guard is Guard.TRADING_STATE else Level.WARNING
            commands.append(Notice(level, "order refused by risk guard", {
                "client_order_id": cid, "strategy": intent.strategy, "symbol": intent.symbol,
                "guard": guard.value if guard else "", "reason": reason}))
            if entry:
                self._release_if_idle(key)
            return commands
        owner = self.holdings.get(key, Holding()).owner
        if entry and owner not in (None, intent.strategy):
            self.stats.refused_by_planner += 1
            self._refusal = (SignalOutcome.REFUSED_BY_PLANNER, f"{intent.symbol} position is owned by {owner}")
            commands.append(Notice(Level.INFO, "entry refused: position owned by another strategy", {
                "client_order_id": cid, "owner": owner}))
            return commands
        filters = self.filters[intent.symbol]
        if not intent.order_type.is_conditional:
            open_count = sum(1 for t in self._live.values()
                             if t.intent.symbol == intent.symbol and not t.is_algo and t.is_open)
            violation = filters.validate(
                order_type=intent.order_type, quantity=intent.quantity, price=intent.price,
                mark_price=self.mark_price.get(intent.symbol) or self.last_price.get(intent.symbol, ZERO),
                reduce_only=intent.reduce_only or not entry, open_orders=open_count,
                last_price=self.last_price.get(intent.symbol), side=intent.side,
            )
            if violation is not None:
                self.stats.refused_by_filters += 1
                self._refusal = (SignalOutcome.REFUSED_BY_FILTERS,
                                 f"{violation.filter_type} {violation.code}: {violation.message}")
                commands.append(Notice(Level.WARNING, "order refused by exchange filter check", {
                    "client_order_id": cid, "symbol": intent.symbol, "code": violation.code,
                    "filter": violation.filter_type, "reason": violation.message}))
                if entry:
                    self._release_if_idle(key)
                return commands
        is_algo = intent.order_type.is_conditional
        tracked = TrackedOrder(intent, is_algo=is_algo, create_time=now, first_sent=now, in_flight=True)
        self._track(tracked)
        # Persist BEFORE sending: a crash after this point finds the intent at restart and looks it up.
        commands.append(PersistIntent(intent, now, IntentState.SENT))
        commands.append(SubmitAlgoOrder(intent) if is_algo else SubmitOrder(intent))
        return commands

    def _track(self, tracked: TrackedOrder) -> None:
        cid = tracked.intent.client_order_id
        symbol = tracked.intent.symbol
        if tracked.first_sent and tracked.first_sent < self._first_order_time.get(symbol, tracked.first_sent + 1):
            self._first_order_time[symbol] = tracked.first_sent
        self.orders[cid] = tracked
        self._live[cid] = tracked
        self._known_ids.add(cid)
        self._attribution[cid] = (tracked.intent.strategy, tracked.intent.purpose)

    def _settle(self, tracked: TrackedOrder) -> None:
        """Take an order out of the live index once nothing more can happen to it."""
        if not tracked.unsettled and not tracked.in_flight:
            self._live.pop(tracked.intent.client_order_id, None)

    # ------------------------------------------------------------------------------------- submit results
    def on_submit_result(self, result: SubmitResult) -> list[Command]:
        now = self._advance(result.time)
        tracked = self.orders.get(result.client_order_id)
        if tracked is None:
            return [Notice(Level.WARNING, "result for an order this core does not know",
                           {"client_order_id": result.client_order_id})]
        tracked.in_flight = False
        commands: list[Command] = []
        if result.outcome is Outcome.ACCEPTED:
            self.stats.sent += 1
            commands.extend(self._acknowledge(tracked, result.order, result.algo, now))
        elif result.outcome is Outcome.REJECTED and result.code == DUPLICATE_CLIENT_ORDER_ID:
            # An order with this id is already on the exchange (an earlier request did arrive): find it.
            commands.extend(self._outcome_unknown(tracked, f"{result.code} {result.message}", now))
        elif result.outcome is Outcome.REJECTED:
            commands.extend(self._rejected(tracked, result.code, result.message, now))
        else:
            commands.extend(self._outcome_unknown(tracked, f"{result.code or ''} {result.message}".strip(), now))
        self._settle(tracked)
        return commands

    def _acknowledge(self, tracked: TrackedOrder, order: Order | None, algo: AlgoAck | None,
                     now: int) -> list[Command]:
        commands: list[Command] = []
        cid = tracked.intent.client_order_id
        if tracked.intent_state is not IntentState.ACKNOWLEDGED:
            tracked.intent_state = IntentState.ACKNOWLEDGED
            commands.append(PersistIntentState(cid, IntentState.ACKNOWLEDGED, now))
        if order is not None:
            commands.extend(self._apply_order(order, now))
        elif algo is not None:
            commands.extend(self._apply_algo(cid, algo.status, algo.algo_id, now, algo.triggered_order_id))
        return commands

    def _rejected(self, tracked: TrackedOrder, code: int | None, message: str, now: int) -> list[Command]:
        intent = tracked.intent
        cid = intent.client_order_id
        self.stats.rejected_by_exchange += 1
        tracked.status = OrderStatus.REJECTED
        tracked.intent_state = IntentState.REJECTED
        commands: list[Command] = [
            PersistIntentState(cid, IntentState.REJECTED, now, reject_code=code, reject_message=message),
            Notice(Level.WARNING, "order rejected by the exchange", {
                "client_order_id": cid, "symbol": intent.symbol, "code": code, "reason": message}),
        ]
        if code in AUTH_ERRORS:
            commands.extend(self._halt(f"the exchange refused our API key or signature ({code} {message}); "
                                       "fix the key (permissions, IP whitelist, secret), then clear the halt"))
            return commands
        if intent.purpose is OrderPurpose.ENTRY:
            self._release_if_idle(tracked.key)
        elif intent.purpose.is_protective and code == CLOSE_POSITION_EXISTS:
            pass  # an equal stop is already working (an earlier request did arrive)
        elif intent.purpose.is_protective and code == WOULD_IMMEDIATELY_TRIGGER:
            commands.extend(self._protective_exit(tracked, message, now))
        else:
            commands.extend(self._schedule_retry(tracked, f"{code} {message}", now))
        return commands

    def _outcome_unknown(self, tracked: TrackedOrder, reason: str, now: int) -> list[Command]:
        cid = tracked.intent.client_order_id
        self.stats.outcome_unknown += 1
        if tracked.intent_state is IntentState.ACKNOWLEDGED or tracked.status is not None:
            return []  # the user stream already reported the order: the outcome is known
        commands: list[Command] = []
        if tracked.intent_state is not IntentState.UNKNOWN:
            tracked.intent_state = IntentState.UNKNOWN
            commands.append(PersistIntentState(cid, IntentState.UNKNOWN, now))
        tracked.lookups = 0
        commands.append(Notice(Level.WARNING, "order outcome unknown; looking it up before any retry", {
            "client_order_id": cid, "reason": reason}))
        self._schedule(self._lookup_due(tracked, now), _Timer.LOOKUP, cid)
        return commands

    # ------------------------------------------------------------------------------------------- lookups
    def on_lookup_result(self, result: LookupResult) -> list[Command]:
        now = self._advance(result.time)
        tracked = self.orders.get(result.client_order_id)
        if tracked is None:
            return []
        tracked.in_flight = False
        cid = result.client_order_id
        commands: list[Command] = []
        if result.outcome is Outcome.ACCEPTED:
            commands.extend(self._acknowledge(tracked, result.order, result.algo, now))
            if tracked.halted_for:
                commands.append(Notice(Level.WARNING, "an order whose outcome was unknown was found; the halt it "
                                       "caused stays until an operator clears it", {"client_order_id": cid}))
        elif tracked.intent_state is IntentState.ACKNOWLEDGED or tracked.status is not None:
            pass  # the stream told us meanwhile
        elif result.outcome is Outcome.NOT_FOUND and now - tracked.first_sent >= self.policy.unknown_outcome_window_ms:
            commands.extend(self._never_placed(tracked, now))
        else:
            commands.extend(self._next_lookup(tracked, result, now))
        self._settle(tracked)
        return commands

    def _lookup_due(self, tracked: TrackedOrder, now: int) -> int:
        """When to ask next: at the growing delays after the first send, then at the window's end, then rarely."""
        delays = self.policy.lookup_delays_ms
        window = self.policy.unknown_outcome_window_ms
        if tracked.lookups < len(delays) and delays[tracked.lookups] < window:
            return max(now, tracked.first_sent + delays[tracked.lookups])
        if now < tracked.first_sent + window:
            return tracked.first_sent + window
        return now + self.policy.late_lookup_every_ms

    def _next_lookup(self, tracked: TrackedOrder, result: LookupResult, now: int) -> list[Command]:
        cid = tracked.intent.client_order_id
        commands: list[Command] = []
        if now >= tracked.first_sent + self.policy.unknown_outcome_window_ms and not tracked.halted_for:
            tracked.halted_for = True
            intent = tracked.intent
            commands.extend(self._halt(
                f"order {cid} ({intent.symbol} {intent.side.value} {intent.quantity}) outcome still unknown "
                f"after {self.policy.unknown_outcome_window_ms // 1000} s ({result.outcome.value} "
                f"{result.code or ''} {result.message}); check the exchange, then clear the halt"))
        self._schedule(self._lookup_due(tracked, now), _Timer.LOOKUP, cid)
        return commands

    def _never_placed(self, tracked: TrackedOrder, now: int) -> list[Command]:
        """The exchange said "not found" over the whole window: the order was never placed."""
        intent = tracked.intent
        cid = intent.client_order_id
        tracked.intent_state = IntentState.NOT_FOUND
        commands: list[Command] = [
            PersistIntentState(cid, IntentState.NOT_FOUND, now),
            Notice(Level.WARNING, "order never reached the exchange", {
                "client_order_id": cid, "symbol": intent.symbol, "purpose": intent.purpose.value}),
        ]
        if intent.purpose is OrderPurpose.ENTRY:
            # The entry's price is stale by now; the strategy's next signal decides (docs/decisions.md).
            self._release_if_idle(tracked.key)
        else:
            commands.extend(self._schedule_retry(tracked, "never reached the exchange", now, immediately=True))
        return commands

    # ------------------------------------------------------------------------------ exits that must succeed
    def _original_of(self, cid: str) -> str:
        return self._retry_of.get(cid, cid)

    def _schedule_retry(self, tracked: TrackedOrder, error: str, now: int, *,
                        immediately: bool = False) -> list[Command]:
        """An exit or protective order failed: try again (re-reading the position first) or give up and halt."""
        original_id = self._original_of(tracked.intent.client_order_id)
        state = self._must_succeed.get(original_id)
        if state is None:
            original = self.orders[original_id].intent if original_id in self.orders else tracked.intent
            state = self._must_succeed[original_id] = MustSucceed(original)
        state.last_error = error
        if state.attempts >= self.policy.max_retries:
            del self._must_succeed[original_id]
            intent = state.original
            commands: list[Command] = []
            dropped = self._deferred.pop((intent.symbol, intent.position_side), None)
            if dropped is not None:
                self._release_if_idle((intent.symbol, intent.position_side))
                commands.append(PersistSignal(dropped.signal, SignalOutcome.ORDERED,
                                              "the exit could not be placed; the entry that waited for it was "
                                              "dropped", dropped.sent))
            return commands + self._halt(
                f"{intent.purpose.value} order for {intent.symbol} {intent.position_side.value} could not be placed "
                f"after {state.attempts + 1} attempts (last: {error}); the position may be unprotected: check it on "
                "the exchange, then clear the halt")
        delays = self.policy.retry_delays_ms
        delay = 0 if immediately else delays[min(state.attempts, len(delays) - 1)]
        self._schedule(now + delay, _Timer.RETRY, original_id)
        return [Notice(Level.WARNING, "order will be retried", {
            "client_order_id": tracked.intent.client_order_id, "purpose": tracked.intent.purpose.value,
            "attempt": state.attempts + 1, "in_ms": delay, "reason": error})]

    def _retry_due(self, original_id: str, now: int) -> list[Command]:
        state = self._must_succeed.get(original_id)
        if state is None or state.awaiting_positions:
            return []
        intent = state.original
        if intent.purpose.is_protective:
            return self._retry_protective(original_id, state, now)
        state.awaiting_positions = True
        return [ReadPositions(intent.symbol)]

    def on_positions(self, result: PositionsResult) -> list[Command]:
        """The exchange's positions of one symbol, asked for before an exit retry."""
        now = self._advance(result.time)
        commands: list[Command] = []
        for original_id, state in list(self._must_succeed.items()):
            intent = state.original
            if intent.symbol != result.symbol or not state.awaiting_positions:
                continue
            state.awaiting_positions = False
            if not result.ok:
                commands.extend(self._reschedule(original_id, state, f"positions unreadable: {result.message}", now))
                continue
            amount = next((p.amount for p in result.positions if p.position_side is intent.position_side), ZERO)
            key = (intent.symbol, intent.position_side)
            held = self.holdings.get(key, Holding()).amount
            closing_sign = -intent.side.sign  # an exit SELLs a long (+) position, BUYs a short (-) one
            if amount == 0 or amount * closing_sign <= 0:
                del self._must_succeed[original_id]
                commands.append(Notice(Level.INFO, "exit not retried: the exchange holds no such position", {
                    "symbol": intent.symbol, "position_side": intent.position_side.value,
                    "exchange_amount": str(amount), "books": str(held)}))
                if held != amount:
                    commands.extend(self._begin_reconcile(f"{intent.symbol} position differs before an exit "
                                                          "retry", now))
                continue
            commands.extend(self._send_retry(original_id, state, abs(amount), now))
        return commands

    def _reschedule(self, original_id: str, state: MustSucceed, error: str, now: int) -> list[Command]:
        tracked = self.orders.get(original_id)
        if tracked is None:
            return []
        return self._schedule_retry(tracked, error, now)

    def _send_retry(self, original_id: str, state: MustSucceed, quantity: Decimal, now: int) -> list[Command]:
        state.attempts += 1
        self.stats.exit_retries += 1
        intent = state.original
        filters = self.filters[intent.symbol]
        rounded = filters.round_quantity(quantity, intent.order_type)
        if rounded <= 0:
            del self._must_succeed[original_id]
            return [Notice(Level.WARNING, "exit not retried: what is left is below the step size", {
                "symbol": intent.symbol, "quantity": str(quantity)})]
        retry = replace(intent, client_order_id=self._fresh_id(original_id, state), quantity=rounded)
        self._retry_of[retry.client_order_id] = original_id
        commands = self._request(retry, now)
        if not any(isinstance(c, (SubmitOrder, SubmitAlgoOrder)) for c in commands):
            del self._must_succeed[original_id]
        return commands

    def _fresh_id(self, original_id: str, state: MustSucceed) -> str:
        state.attempts = max(state.attempts, 1)
        while True:
            candidate = retry_client_order_id(original_id, state.attempts)
            if candidate not in self._known_ids:
                return candidate
            state.attempts += 1

    def _retry_protective(self, original_id: str, state: MustSucceed, now: int) -> list[Command]:
        intent = state.original
        key = (intent.symbol, intent.position_side)
        if self.holdings.get(key, Holding()).amount == 0:
            del self._must_succeed[original_id]
            return []
        state.attempts += 1
        retry = replace(intent, client_order_id=self._fresh_id(original_id, state))
        self._retry_of[retry.client_order_id] = original_id
        return self._request(retry, now)

    def _protective_exit(self, tracked: TrackedOrder, message: str, now: int) -> list[Command]:
        """A stop-loss the exchange refused because the price is already past it: close the position now."""
        intent = tracked.intent
        key = tracked.key
        holding = self.holdings.get(key, Holding())
        if holding.amount == 0 or self._has_working_exit(key):
            return []
        exit_intent = OrderIntent(
            client_order_id=self._fresh_id(intent.client_order_id, MustSucceed(intent)), symbol=intent.symbol,
            side=Side.SELL if holding.amount > 0 else Side.BUY, order_type=OrderType.MARKET,
            quantity=self.filters[intent.symbol].round_quantity(abs(holding.amount), OrderType.MARKET),
            position_side=intent.position_side, reduce_only=self.position_mode is PositionMode.ONEWAY,
            strategy=intent.strategy, signal_time=intent.signal_time, purpose=OrderPurpose.EXIT)
        self._retry_of[exit_intent.client_order_id] = exit_intent.client_order_id
        return [Notice(Level.WARNING, "protective order would trigger at once; closing the position", {
            "client_order_id": intent.client_order_id, "reason": message}), *self._request(exit_intent, now)]

    # -------------------------------------------------------------------------------------------- cancels
    def _cancel(self, tracked: TrackedOrder, reason: str) -> list[Command]:
        if not tracked.is_open or tracked.cancel_requested:
            return []
        tracked.cancel_requested = True
        tracked.in_flight = True
        intent = tracked.intent
        return [CancelOrder(intent.symbol, intent.client_order_id, tracked.is_algo, reason)]

    def on_cancel_result(self, result: CancelResult) -> list[Command]:
        now = self._advance(result.time)
        tracked = self.orders.get(result.client_order_id)
        if tracked is None:
            return []
        tracked.in_flight = False
        cid = result.client_order_id
        commands: list[Command] = []
        if result.outcome is Outcome.ACCEPTED:
            commands.append(Notice(Level.INFO, "order cancelled", {"client_order_id": cid}))
            commands.extend(self._acknowledge(tracked, result.order, result.algo, now))
        elif result.outcome is Outcome.UNKNOWN:
            tracked.cancel_requested = False
            self._schedule(now + self.policy.cancel_retry_ms, _Timer.CANCEL, cid)
            commands.append(Notice(Level.WARNING, "cancel outcome unknown; will try again",
                                   {"client_order_id": cid}))
        else:
            # Already filled, cancelled or triggered: the exchange's report will (or did) say which; ask.
            commands.append(Notice(Level.INFO, "cancel not needed", {
                "client_order_id": cid, "code": result.code, "reason": result.message}))
            tracked.in_flight = True
            commands.append(LookUpOrder(tracked.intent.symbol, cid, tracked.is_algo))
        self._settle(tracked)
        return commands

    # ------------------------------------------------------------------------------------ exchange reports
    def _apply_order(self, order: Order, now: int) -> list[Command]:
        if order.order_id and order.client_order_id:
            self._cid_by_order[(order.symbol, order.order_id)] = order.client_order_id
        tracked = self.orders.get(order.client_order_id)
        commands: list[Command] = [PersistOrder(order, None, now)]
        if tracked is None:
            return commands
        if tracked.is_algo:
            return commands  # the order a triggered conditional order placed: its fills do the booking
        if tracked.intent_state is not IntentState.ACKNOWLEDGED:
            tracked.intent_state = IntentState.ACKNOWLEDGED  # any report proves the exchange has it
        tracked.order_id = order.order_id
        if tracked.status is None or order.status.rank >= tracked.status.rank:
            if tracked.status is None or order.status.rank > tracked.status.rank:
                tracked.status = order.status
            tracked.executed = max(tracked.executed, order.executed_quantity)
        if tracked.status is not None and not tracked.status.is_open:
            commands.extend(self._order_finished(tracked, now))
        self._settle(tracked)
        return commands

    def _order_finished(self, tracked: TrackedOrder, now: int) -> list[Command]:
        intent = tracked.intent
        if intent.purpose is OrderPurpose.ENTRY:
            if tracked.executed == 0:
                self._release_if_idle(tracked.key)
            return []
        if intent.purpose is OrderPurpose.EXIT and tracked.executed < intent.quantity:
            holding = self.holdings.get(tracked.key, Holding())
            if holding.amount != 0 and tracked.status is not OrderStatus.FILLED:
                return self._schedule_retry(tracked, f"exit ended {tracked.status} with {tracked.executed} of "
                                                     f"{intent.quantity} filled", now)
        original = self._original_of(intent.client_order_id)
        if tracked.status is OrderStatus.FILLED and original in self._must_succeed:
            del self._must_succeed[original]
        return []

    def _apply_algo(self, client_algo_id: str, status: AlgoStatus, algo_id: int, now: int,
                    triggered_order_id: int | None = None) -> list[Command]:
        tracked = self.orders.get(client_algo_id)
        if tracked is None:
            return []
        if triggered_order_id:  # the order the trigger placed carries the conditional order's client id
            self._cid_by_order[(tracked.intent.symbol, triggered_order_id)] = client_algo_id
        new_status = _ALGO_TO_ORDER_STATUS[status]
        if tracked.status is None or new_status.rank > tracked.status.rank:
            tracked.status = new_status
        tracked.intent_state = IntentState.ACKNOWLEDGED
        tracked.order_id = algo_id
        intent = tracked.intent
        order = Order(
            symbol=intent.symbol, order_id=algo_id, client_order_id=client_algo_id, side=intent.side,
            order_type=intent.order_type, status=tracked.status, quantity=intent.quantity, price=ZERO,
            time_in_force=intent.time_in_force or TimeInForce.GTC, position_side=intent.position_side,
            reduce_only=intent.reduce_only, close_position=intent.close_position,
            stop_price=intent.stop_price or ZERO, working_type=intent.working_type,
            create_time=tracked.create_time, update_time=now)
        commands: list[Command] = [PersistOrder(order, True, now, triggered_order_id)]
        if not tracked.status.is_open:
            original = self._original_of(client_algo_id)
            if original in self._must_succeed and tracked.status is not OrderStatus.REJECTED:
                del self._must_succeed[original]
        self._settle(tracked)
        return commands

    # =========================================================================================== user data
    def on_user_event(self, event: UserEvent, time: int | None = None) -> list[Command]:
        now = self._advance(time if time is not None else getattr(event, "event_time", 0))
        if isinstance(event, OrderUpdate):
            return self._on_order_update(event, now)
        if isinstance(event, AccountUpdate):
            return self._on_account_update(event)
        if isinstance(event, AlgoUpdate):
            return self._apply_algo(event.client_algo_id, event.status, event.algo_id, now,
                                    event.triggered_order_id)
        if isinstance(event, ListenKeyExpired):
            return [Notice(Level.WARNING, "user data stream key expired; reconciling"),
                    *self._begin_reconcile("listenKey expired", now)]
        return []

    def _on_order_update(self, update: OrderUpdate, now: int) -> list[Command]:
        order = update.order
        commands: list[Command] = []
        tracked = self.orders.get(order.client_order_id)
        if tracked is None and order.client_order_id not in self._attribution:
            # Not ours (a liquidation, ADL or an operator's order): recorded, and its fill still moves the books.
            self._attribution[order.client_order_id] = ("", OrderPurpose.EXTERNAL)
        commands.extend(self._apply_order(order, now))
        if update.fill is not None:
            commands.extend(self._apply_fill(update.fill, now))
        return commands

    def _strategy_of(self, client_order_id: str) -> str:
        tracked = self.orders.get(client_order_id)
        if tracked is not None:
            return tracked.intent.strategy
        return self._attribution.get(client_order_id, ("", OrderPurpose.EXTERNAL))[0]

    def _purpose_of(self, client_order_id: str) -> OrderPurpose:
        tracked = self.orders.get(client_order_id)
        if tracked is not None:
            return tracked.intent.purpose
        return self._attribution.get(client_order_id, ("", OrderPurpose.EXTERNAL))[1]

    def _apply_fill(self, fill: Fill, now: int) -> list[Command]:
        if not fill.client_order_id:  # a userTrades row (reconciliation) names only the order id
            cid = self._cid_by_order.get((fill.symbol, fill.order_id))
            if cid is not None:
                fill = replace(fill, client_order_id=cid)
        fill_key = (fill.symbol, fill.trade_id)
        digest = fill_digest(fill)
        known = self._fills.get(fill_key)
        if known is not None:
            if known == digest:
                return []  # the same report again: nothing changes
            return self._halt(f"fill {fill.symbol} trade {fill.trade_id} (order {fill.order_id}, {fill.side.value} "
                              f"{fill.quantity} at {fill.price}) collides with a stored fill that differs (order "
                              f"{known[0]}, {known[1].value} {known[3]} at {known[2]}): the exchange's trade ids "
                              "repeat (a new account on an old database?); nothing was booked; check, then clear")
        self._fills[fill_key] = digest
        if fill.trade_id > self._last_trade_id.get(fill.symbol, -1):
            self._last_trade_id[fill.symbol] = fill.trade_id
        self.stats.fills += 1
        commands: list[Command] = [PersistFill(fill)]
        tracked = self.orders.get(fill.client_order_id)
        if tracked is not None:
            tracked.applied += fill.quantity
            if tracked.is_algo:  # the order a triggered stop placed: the stop's row says what it executed
                tracked.executed = max(tracked.executed, tracked.applied)
                commands.append(PersistOrder(_order_from_intent(tracked, tracked.status or OrderStatus.FILLED, now),
                                             True, now, fill.order_id))
        key = (fill.symbol, fill.position_side)
        signed = fill.side.sign * fill.quantity
        remaining = fill
        holding = self.holdings.get(key, Holding())
        if holding.amount != 0 and (holding.amount > 0) != (signed > 0) and abs(signed) > abs(holding.amount):
            # One fill closes the position and opens the other way (never one of ours: exits are reduce-only).
            closing = abs(holding.amount)
            share = closing / fill.quantity
            first = replace(fill, quantity=closing, quote_quantity=fill.quote_quantity * share,
                            commission=fill.commission * share)
            remaining = replace(fill, quantity=fill.quantity - closing,
                                quote_quantity=fill.quote_quantity - first.quote_quantity,
                                commission=fill.commission - first.commission, realized_pnl=ZERO)
            commands.extend(self._book(first, key, now))
        commands.extend(self._book(remaining, key, now))
        if tracked is not None:
            self._settle(tracked)
        commands.extend(self._risk_changes())
        return commands

    def _book(self, fill: Fill, key: PositionKey, now: int) -> list[Command]:
        """One fill into the position, its owner and its round trip."""
        commands: list[Command] = []
        holding = self.holdings.get(key, Holding())
        signed = fill.side.sign * fill.quantity
        amount = holding.amount + signed
        trip = self.trips.get(key)
        if holding.amount == 0 or trip is None:
            strategy = self._strategy_of(fill.client_order_id) if holding.amount == 0 else (holding.owner or "")
            if holding.amount == 0 and holding.owner and self._purpose_of(fill.client_order_id) is not \
                    OrderPurpose.ENTRY:
                strategy = holding.owner
            trip = RoundTrip(trip_id=fill.client_order_id, strategy=strategy, symbol=fill.symbol,
                             position_side=key[1], direction=fill.side, open_time=fill.time,
                             quantity=abs(holding.amount))
            if strategy:
                self.risk.on_position_opened(strategy, fill.symbol, now)
        opening = (signed > 0) == (trip.direction is Side.BUY)
        value = fill.price * fill.quantity
        trip = RoundTrip(  # one construction per fill (dataclasses.replace costs several times more)
            trip.trip_id, trip.strategy, trip.symbol, trip.position_side, trip.direction, trip.open_time,
            trip.status, trip.close_time,
            trip.quantity + fill.quantity if opening else trip.quantity,
            trip.closed_quantity if opening else trip.closed_quantity + fill.quantity,
            trip.entry_value + value if opening else trip.entry_value,
            trip.exit_value if opening else trip.exit_value + value,
            trip.realized_pnl + fill.realized_pnl, trip.commission + fill.commission, trip.fills + 1)
        owner = trip.strategy or None
        if amount != 0:
            self.holdings[key] = Holding(amount, owner)
            self.trips[key] = trip
            if opening:
                self.entry_prices[key] = trip.entry_price
            commands.append(PersistRoundTrip(trip))
            if opening and owner is not None:
                commands.extend(self._protect(key, trip, fill.price, now))
            return commands
        # Flat again: the trip is closed.
        trip = replace(trip, status=TripStatus.CLOSED, close_time=fill.time)
        del self.trips[key]
        self._protected.discard(key)
        if owner and self._has_pending_entry(key, owner):
            self.holdings[key] = Holding(ZERO, owner)  # a reversal: its entry is on the way
        else:
            self.holdings.pop(key, None)
        self.stats.closed_trades += 1
        commands.append(PersistRoundTrip(trip))
        if trip.strategy:
            self.risk.on_fill_closed_trade(trip.strategy, fill.symbol, trip.net_pnl, now,
                                           unrealized_pnl=self.unrealized_pnl(trip.strategy))
            commands.append(Notice(Level.INFO, "position closed", {
                "strategy": trip.strategy, "symbol": fill.symbol, "pnl": str(trip.net_pnl)}))
        for tracked in list(self._live.values()):
            if tracked.is_algo and tracked.is_open and tracked.key == key:
                commands.extend(self._cancel(tracked, "position closed"))
        for original_id, state in list(self._must_succeed.items()):
            if (state.original.symbol, state.original.position_side) == key:
                del self._must_succeed[original_id]
        deferred = self._deferred.pop(key, None)
        if deferred is not None:
            commands.extend(self._request(deferred.intent, now))
            if self._refusal is None:
                commands.append(PersistSignal(deferred.signal, SignalOutcome.ORDERED, "the exit filled; entry sent",
                                              (*deferred.sent, deferred.intent.client_order_id)))
            else:
                outcome, reason = self._refusal
                commands.append(PersistSignal(deferred.signal, outcome, f"the exit filled; entry not sent: {reason}",
                                              deferred.sent))
        return commands

    def _protect(self, key: PositionKey, trip: RoundTrip, entry_price: Decimal, now: int) -> list[Command]:
        """Place the position's stop-loss / take-profit once, on its first opening fill."""
        if key in self._protected:
            return []
        settings = self.settings.get((trip.strategy, key[0]))
        if settings is None or not (settings.stop_loss_pct or settings.take_profit_pct):
            return []
        if any(t.is_algo and t.is_open and t.key == key for t in self._live.values()):
            self._protected.add(key)
            return []
        self._protected.add(key)
        entry = self.orders.get(trip.trip_id)
        base = entry.intent if entry is not None else OrderIntent(
            client_order_id=trip.trip_id if len(trip.trip_id) <= 33 else trip.trip_id[:33], symbol=key[0],
            side=trip.direction, order_type=OrderType.MARKET, quantity=trip.quantity, position_side=key[1],
            strategy=trip.strategy, purpose=OrderPurpose.ENTRY)
        commands: list[Command] = []
        for protective in protective_orders(base, entry_price, settings, self.filters[key[0]]):
            if protective.client_order_id in self._known_ids:
                protective = replace(protective, client_order_id=self._fresh_id(
                    protective.client_order_id, MustSucceed(protective)))
                self._retry_of[protective.client_order_id] = protective.client_order_id
            commands.extend(self._request(protective, now))
        return commands

    def _on_account_update(self, update: AccountUpdate) -> list[Command]:
        commands: list[Command] = []
        for balance in update.balances:
            if balance.asset == "USDT":
                self.wallet_balance = balance.wallet_balance
        for position in update.positions:
            key = (position.symbol, position.position_side)
            self.exchange_positions[key] = position.amount
            if position.amount:
                self.entry_prices[key] = position.entry_price
            leverage = self.leverage.get(position.symbol, position.leverage)
            commands.append(PersistPosition(replace(position, leverage=leverage)))
        if update.reason == "FUNDING_FEE":
            symbol = update.positions[0].symbol if update.positions else "ACCOUNT"
            for balance in update.balances:
                if balance.asset == "USDT" and balance.balance_change:
                    commands.append(PersistFunding(symbol, update.event_time, balance.balance_change))
        return commands

    # ========================================================================================= market data
    def on_candle(self, candle: Candle) -> list[Command]:
        now = self._advance(candle.close_time)
        self.last_price[candle.symbol] = candle.close
        return self._expire_stale_orders(now)

    def on_mark_price(self, mark: MarkPrice) -> list[Command]:
        now = self._advance(mark.event_time)
        self.mark_price[mark.symbol] = mark.mark_price
        if mark.next_funding_time:
            self.risk.on_funding_time(mark.symbol, mark.next_funding_time)
        owners = {h.owner for (s, _), h in self.holdings.items() if s == mark.symbol and h.owner}
        for strategy in sorted(owners):
            self.risk.on_unrealized(strategy, self.unrealized_pnl(strategy), now)
        self.risk.on_time(now)
        return self._risk_changes()

    def _expire_stale_orders(self, now: int) -> list[Command]:
        candidates = [(cid, t.create_time) for cid, t in self._live.items()
                      if t.is_open and not t.is_algo and t.intent.purpose is OrderPurpose.ENTRY
                      and not t.cancel_requested and t.status is not None]
        if not candidates:
            return []
        commands: list[Command] = []
        for cid in self.risk.expired_orders(candidates, now):
            self.stats.ttl_cancels += 1
            commands.extend(self._cancel(self.orders[cid], "order TTL reached"))
        return commands

    # ============================================================================================== timers
    def _schedule(self, due: int, kind: _Timer, key: str) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (due, self._timer_seq, kind, key))

    def on_tick(self, time: int) -> list[Command]:
        now = self._advance(time)
        commands: list[Command] = []
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, key = heapq.heappop(self._timers)
            if kind is _Timer.RETRY:
                commands.extend(self._retry_due(key, now))
                continue
            if kind is _Timer.RECONCILE:
                if key == PERIODIC:
                    self._periodic_scheduled = False
                commands.extend(self._begin_reconcile(key, now))
                continue
            tracked = self.orders.get(key)
            if tracked is None or tracked.in_flight:
                continue
            if kind is _Timer.LOOKUP and tracked.intent_state is IntentState.UNKNOWN and tracked.status is None:
                tracked.lookups += 1
                tracked.in_flight = True
                commands.append(LookUpOrder(tracked.intent.symbol, key, tracked.is_algo))
            elif kind is _Timer.CANCEL and tracked.is_open:
                commands.extend(self._cancel(tracked, "retrying a cancel whose outcome was unknown"))
        return commands

    # ====================================================================================== reconciliation
    def on_stream_interrupted(self, reason: str, time: int) -> list[Command]:
        now = self._advance(time)
        return self._begin_reconcile(f"user stream interrupted: {reason}", now)

    def _begin_reconcile(self, reason: str, now: int) -> list[Command]:
        if self._reconciling is not None:
            self._reconcile_again = reason
            return []
        self._reconciling = reason
        self.stats.reconciliations += 1
        lookups = tuple((t.intent.symbol, cid, t.is_algo) for cid, t in self._live.items() if t.is_open)
        symbols = tuple(sorted(self.filters))
        earliest: dict[str, int] = {}
        for tracked in self._live.values():
            symbol = tracked.intent.symbol
            earliest[symbol] = min(earliest.get(symbol, tracked.first_sent), tracked.first_sent)
        # Fills since the last one stored; for a symbol with none stored, since the bot's first order on it (an
        # order that filled while its fill was never written, a kill between the two, is found that way).
        fills_from = tuple((symbol, self._last_trade_id.get(symbol),
                            _earliest(earliest.get(symbol), self._first_order_time.get(symbol)))
                           for symbol in symbols)
        return [Notice(Level.INFO, "reconciling with the exchange", {"reason": reason}),
                Reconcile(reason, lookups, fills_from, symbols)]

    def local_books(self) -> reconcile.LocalBooks:
        """What the core holds, in the form reconciliation compares with the exchange."""
        return reconcile.LocalBooks(
            live_orders={cid: reconcile.LiveOrder(t.intent.symbol, t.is_algo, t.intent_state, t.first_sent,
                                                  t.intent.purpose, t.status)
                         for cid, t in self._live.items() if t.is_open},
            holdings={key: h.amount for key, h in self.holdings.items() if h.amount},
            owners={key: h.owner for key, h in self.holdings.items() if h.amount},
            known_client_order_ids=frozenset(self._known_ids),
            fills=self._fills,
            symbols=frozenset(self.filters),
            problems=self._seed_problems,
        )

    def on_reconcile_snapshot(self, answer: ReconcileSnapshot) -> list[Command]:
        now = self._advance(answer.time)
        reason = self._reconciling or answer.reason
        self._reconciling = None
        if answer.snapshot is None:
            return self._reconcile_failed(answer, reason, now)
        self._reconcile_failures, self._reconcile_waiting = 0, None
        snapshot = answer.snapshot
        plan = reconcile.plan(self.local_books(), snapshot, unknown_window_ms=self.policy.unknown_outcome_window_ms)
        commands: list[Command] = []
        for lookup in plan.resolved:
            commands.extend(self.on_lookup_result(lookup))
        for cid in plan.never_placed:
            tracked = self.orders.get(cid)
            if tracked is not None and tracked.status is None:
                commands.extend(self._never_placed(tracked, now))
        for cid in plan.still_unknown:
            tracked = self.orders.get(cid)
            if tracked is not None and tracked.intent_state is not IntentState.UNKNOWN:
                tracked.intent_state = IntentState.UNKNOWN
                commands.append(PersistIntentState(cid, IntentState.UNKNOWN, now))
            if tracked is not None:
                self._schedule(self._lookup_due(tracked, now), _Timer.LOOKUP, cid)
        for cid in plan.vanished:
            tracked = self.orders.get(cid)
            if tracked is not None and snapshot.fresh_account:
                expired = OrderStatus.EXPIRED
                tracked.status = expired
                commands.append(PersistOrder(_order_from_intent(tracked, expired, now), tracked.is_algo, now))
                self._settle(tracked)
        for order in plan.foreign_orders:
            self._attribution.setdefault(order.client_order_id, ("", OrderPurpose.EXTERNAL))
            commands.append(PersistOrder(order, False, now))
            if self.policy.cancel_foreign_orders:
                commands.append(CancelOrder(order.symbol, order.client_order_id, False,
                                            "placed by someone else (cancel_foreign_orders)"))
        for order in plan.adopted_orders:
            self._adopt(order, now)
            commands.append(PersistOrder(order, False, now))
        for fill in plan.missing_fills:
            commands.extend(self._apply_fill(fill, now))
        for key, _amount in plan.fresh_account_flat:
            commands.extend(self._abandon(key, now))
        self.wallet_balance = snapshot.wallet_balance
        for position in snapshot.positions:
            key = (position.symbol, position.position_side)
            self.exchange_positions[key] = position.amount
            if position.amount:
                self.entry_prices[key] = position.entry_price
            leverage = self.leverage.get(position.symbol, position.leverage)
            commands.append(PersistPosition(replace(position, leverage=leverage)))
        for key in plan.flat_on_exchange:
            self.exchange_positions[key] = ZERO
            commands.append(PersistPosition(Position(key[0], key[1], ZERO, update_time=now,
                                                     leverage=self.leverage.get(key[0], 1))))
        commands.extend(self._protect_open_positions(snapshot, now))
        for line in plan.fixed:
            commands.append(Notice(Level.INFO, "reconciled", {"detail": line}))
        for line in plan.warnings:
            commands.append(Notice(Level.WARNING, "reconciliation", {"detail": line}))
        for line in plan.problems:
            # A warning, not yet an error: a fill in flight between the snapshot's reads explains itself at the next
            # look; one still there then halts trading ("trading halted", an error, with the difference as reason).
            commands.append(Notice(Level.WARNING, "difference with the exchange; looked at again before trading halts",
                                   {"detail": line}))
        commands.extend(self._confirm_differences([] if snapshot.fresh_account else plan.problems, now))
        commands.append(Notice(Level.INFO, "reconciliation finished", {
            "reason": reason, "fixed": len(plan.fixed), "problems": len(plan.problems)}))
        self.last_reconcile = plan
        if self._reconcile_again is not None:
            again, self._reconcile_again = self._reconcile_again, None
            commands.extend(self._begin_reconcile(again, now))
        elif self.policy.reconcile_every_ms and not self._periodic_scheduled:
            self._periodic_scheduled = True
            self._schedule(now + self.policy.reconcile_every_ms, _Timer.RECONCILE, PERIODIC)
        return commands

    def _reconcile_failed(self, answer: ReconcileSnapshot, reason: str, now: int) -> list[Command]:
        """The snapshot could not be read: try again with backoff (rate limit, timeout, 5xx), else halt."""
        if answer.retryable and self._reconcile_failures < self.policy.max_retries:
            delays = self.policy.retry_delays_ms
            delay = delays[min(self._reconcile_failures, len(delays) - 1)]
            self._reconcile_failures += 1
            self._reconcile_waiting = reason
            self._schedule(now + delay, _Timer.RECONCILE, reason)
            if reason == PERIODIC:
                self._periodic_scheduled = True
            return [Notice(Level.WARNING, "reconciliation could not read the exchange; trying again", {
                "reason": reason, "attempt": self._reconcile_failures, "in_ms": delay, "error": answer.error})]
        self._reconcile_failures, self._reconcile_waiting = 0, None
        return self._halt(f"reconciliation ({reason}) could not read the exchange: {answer.error}")

    def _confirm_differences(self, problems: list[str], now: int) -> list[Command]:
        """Halt only on a difference that is still there ``confirm_difference_ms`` after it was first seen.

        A snapshot is read in several requests while orders trade, so one reconciliation can see a fill in one
        read and not in another; the next one explains it. A difference is known by its subject (the text before
        its first colon: the order, or the symbol and side), so a position that still differs, by another amount,
        is the same difference. Until it is confirmed or gone, new entries wait.
        """
        since: dict[str, int] = {}
        for problem in problems:
            key = problem.split(":", 1)[0]
            since[key] = min(self._suspect_since.get(key, now), since.get(key, now))
        self._suspect_since = since
        self._suspect = list(problems)
        if not problems:
            return []
        confirmed = [p for p in problems if now - since[p.split(":", 1)[0]] >= self.policy.confirm_difference_ms]
        if confirmed:
            self._suspect, self._suspect_since = [], {}
            return self._halt("reconciliation found differences it cannot explain: " + "; ".join(confirmed[:5]))
        due = min(since.values()) + self.policy.confirm_difference_ms
        self._schedule(max(due, now + 1), _Timer.RECONCILE, "confirming a difference")
        return []

    def _adopt(self, order: Order, now: int) -> None:
        """An open order with our id that the database lacks: tracked again, with its strategy when the id's tag
        names exactly one configured strategy."""
        cid = order.client_order_id
        tag = cid.split("-", 1)[0][:-4]
        candidates = {strategy for strategy, _ in self.settings if _strategy_tag(strategy) == tag}
        strategy = candidates.pop() if len(candidates) == 1 else ""
        purpose = OrderPurpose.STOP_LOSS if cid.endswith("-sl") else OrderPurpose.TAKE_PROFIT if cid.endswith(
            "-tp") else OrderPurpose.EXIT if order.reduce_only else OrderPurpose.ENTRY
        intent = OrderIntent(cid, order.symbol, order.side, order.order_type, order.quantity, order.price or None,
                             order.time_in_force, order.position_side, order.reduce_only, order.close_position,
                             order.stop_price or None, order.working_type, strategy, 0, purpose)
        tracked = TrackedOrder(intent, is_algo=False, create_time=order.create_time or now,
                               intent_state=IntentState.ACKNOWLEDGED, status=order.status, order_id=order.order_id,
                               executed=order.executed_quantity, first_sent=order.create_time or now)
        self._track(tracked)

    def _abandon(self, key: PositionKey, now: int) -> list[Command]:
        """A fresh simulated account does not hold what an earlier run left: close the books on it."""
        commands: list[Command] = []
        trip = self.trips.pop(key, None)
        if trip is not None:
            commands.append(PersistRoundTrip(replace(trip, status=TripStatus.ABANDONED, close_time=now)))
        self.holdings.pop(key, None)
        self._protected.discard(key)
        return commands

    def _protect_open_positions(self, snapshot: ExchangeSnapshot, now: int) -> list[Command]:
        """After a restart: an open position of ours without its configured protective orders gets them."""
        commands: list[Command] = []
        working = {(a.symbol, self.orders[a.client_algo_id].intent.position_side)
                   for a in snapshot.open_algo_orders if a.client_algo_id in self.orders}
        for key, holding in list(self.holdings.items()):
            trip = self.trips.get(key)
            if holding.amount == 0 or holding.owner is None or trip is None or key in working:
                continue
            self._protected.discard(key)
            entry = self.entry_prices.get(key) or trip.entry_price
            if entry:
                commands.extend(self._protect(key, trip, entry, now))
        return commands


def _earliest(*times: int | None) -> int | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _strategy_tag(strategy: str) -> str:
    """The letters of a strategy's name its client order ids start with (see executor/ids.py)."""
    return "".join(c for c in strategy.lower() if c.isascii() and c.isalnum())[:4]


def _order_from_intent(tracked: TrackedOrder, status: OrderStatus, now: int) -> Order:
    intent = tracked.intent
    return Order(
        symbol=intent.symbol, order_id=tracked.order_id or 0, client_order_id=intent.client_order_id,
        side=intent.side, order_type=intent.order_type, status=status, quantity=intent.quantity,
        price=intent.price or ZERO, time_in_force=intent.time_in_force or TimeInForce.GTC,
        position_side=intent.position_side, reduce_only=intent.reduce_only, close_position=intent.close_position,
        stop_price=intent.stop_price or ZERO, working_type=intent.working_type, executed_quantity=tracked.executed,
        create_time=tracked.create_time, update_time=now)
