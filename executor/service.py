"""The executor: signals in, orders out, exchange reports back into the database, positions and risk state.

Path of an order: ``signal.*`` -> :meth:`Executor.on_signal` (record the signal, plan intents) -> ``order.request``
-> :meth:`Executor.on_order_request` (risk guards, filter check, PERSIST the intent, send, resolve the outcome)
-> the exchange's user-data events (``order.update`` / ``algo.update`` / ``account.update``) ->
:meth:`Executor.on_user_event` (orders, fills, positions and risk state in the database).

Rules that keep orders from being lost or doubled:
* the client order id is derived from the signal, so a replayed signal finds its order already stored and stops;
* the intent is stored before the request leaves; a timeout or 5xx marks it UNKNOWN and the order is looked up
  by client order id before anything is re-sent (under the same id, so the exchange refuses a double);
* an outcome that stays unknown halts new entries (global HALTED) until an operator looks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from database.models import IntentState
from database.repository import Repository
from executor.gateway import ExchangeGateway
from executor.planner import ExecutionSettings, Holding, plan_signal, protective_orders
from executor.risk import GLOBAL_SCOPE, RiskDecision, RiskEngine, StateRecord
from utils.binance_parse import AccountUpdate, AlgoUpdate, ListenKeyExpired, OrderUpdate, UserEvent
from utils.bus import EventBus
from utils.clock import Clock
from utils.domain import (
    ZERO,
    AlgoStatus,
    Candle,
    Fill,
    MarkPrice,
    Order,
    OrderIntent,
    OrderStatus,
    PositionMode,
    PositionSide,
    Signal,
    TimeInForce,
    TradingState,
)
from utils.errors import BinanceError, OutcomeUnknownError
from utils.filters import SymbolFilters

log = logging.getLogger("executor")

ORDER_NOT_FOUND = -2013
UNKNOWN_ORDER = -2011
DUPLICATE_CLIENT_ORDER_ID = -4116


@dataclass(slots=True)
class TrackedOrder:
    """What the executor remembers about an order it placed (purpose is not something the exchange knows)."""

    intent: OrderIntent
    status: OrderStatus | None = None
    create_time: int = 0
    is_algo: bool = False
    executed: Decimal = ZERO  # what the exchange says has filled
    applied: Decimal = ZERO  # what our books have taken in from fill events

    @property
    def unsettled(self) -> bool:
        """Still working, or filled on the exchange before its fills reached our books."""
        return self.is_open or self.executed > self.applied

    @property
    def is_open(self) -> bool:
        if self.is_algo:
            return self.status in (None, OrderStatus.NEW)
        return self.status is None or self.status.is_open


@dataclass(slots=True)
class RoundTrip:
    """Realized PnL and commission of one position, from its opening fill until it is flat again."""

    strategy: str
    realized_pnl: Decimal = ZERO
    commission: Decimal = ZERO


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
    refusals: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "refusals"}


_ALGO_TO_ORDER_STATUS = {
    AlgoStatus.NEW: OrderStatus.NEW,
    AlgoStatus.TRIGGERING: OrderStatus.NEW,
    AlgoStatus.TRIGGERED: OrderStatus.FILLED,
    AlgoStatus.FINISHED: OrderStatus.FILLED,
    AlgoStatus.CANCELED: OrderStatus.CANCELED,
    AlgoStatus.EXPIRED: OrderStatus.EXPIRED,
    AlgoStatus.REJECTED: OrderStatus.REJECTED,
}


class Executor:
    """Owns order placement and the bookkeeping of what the exchange reports back."""

    def __init__(
        self,
        *,
        bus: EventBus,
        gateway: ExchangeGateway,
        repository: Repository,
        risk: RiskEngine,
        filters: dict[str, SymbolFilters],
        settings: Iterable[ExecutionSettings],
        position_mode: PositionMode,
        clock: Clock,
        max_send_attempts: int = 3,
        max_lookups: int = 3,
    ) -> None:
        self.bus = bus
        self.gateway = gateway
        self.repository = repository
        self.risk = risk
        self.filters = filters
        self.settings = {(s.strategy, s.symbol): s for s in settings}
        self.position_mode = position_mode
        self.clock = clock
        self.max_send_attempts = max_send_attempts
        self.max_lookups = max_lookups
        self.holdings: dict[tuple[str, PositionSide], Holding] = {}
        self.entry_prices: dict[tuple[str, PositionSide], Decimal] = {}
        self.exchange_positions: dict[tuple[str, PositionSide], Decimal] = {}
        self.round_trips: dict[tuple[str, PositionSide], RoundTrip] = {}
        self.orders: dict[str, TrackedOrder] = {}
        self.planned: dict[str, OrderIntent] = {}  # published on order.request, not yet handled
        self.last_price: dict[str, Decimal] = {}
        self.mark_price: dict[str, Decimal] = {}
        self.wallet_balance = ZERO
        self.stats = ExecutorStats()
        self._known_states = {scope: record.state for scope, record in risk.states().items()}

    # ================================================================================================ state
    def _sides(self) -> tuple[PositionSide, ...]:
        if self.position_mode is PositionMode.ONEWAY:
            return (PositionSide.BOTH,)
        return (PositionSide.LONG, PositionSide.SHORT)

    def holdings_for(self, symbol: str) -> dict[PositionSide, Holding]:
        return {side: self.holdings.get((symbol, side), Holding()) for side in self._sides()}

    def symbol_exposure(self, symbol: str) -> Decimal:
        price = self.mark_price.get(symbol) or self.last_price.get(symbol) or ZERO
        return sum((abs(h.amount) * price for (s, _), h in self.holdings.items() if s == symbol), ZERO)

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

    def open_orders(self) -> list[TrackedOrder]:
        return [tracked for tracked in self.orders.values() if tracked.is_open]

    def _persist_risk_changes(self) -> None:
        for record in self.risk.drain_state_changes():
            previous = self._known_states.get(record.scope)
            if previous is not record.state:
                level = logging.INFO if record.state is TradingState.ACTIVE else logging.WARNING
                log.log(level, "trading state changed", extra={
                    "scope": record.scope, "state": record.state.value, "reason": record.reason})
                self._known_states[record.scope] = record.state
            persist_risk_record(self.repository, record)

    # ============================================================================================== signals
    async def on_signal(self, signal: Signal) -> None:
        self.stats.signals += 1
        self.repository.record_signal(signal)
        settings = self.settings.get((signal.strategy, signal.symbol))
        filters = self.filters.get(signal.symbol)
        if settings is None or filters is None:
            log.error("signal for a strategy/symbol that is not configured", extra={
                "strategy": signal.strategy, "symbol": signal.symbol})
            return
        reference = self.last_price.get(signal.symbol) or self.mark_price.get(signal.symbol)
        if reference is None:
            log.warning("signal before any price is known; ignored", extra={"symbol": signal.symbol})
            return
        plan = plan_signal(signal, settings=settings, filters=filters, position_mode=self.position_mode,
                           holdings=self.holdings_for(signal.symbol), reference_price=reference,
                           equity=self.equity())
        if plan.refused:
            self.stats.refused_by_planner += 1
            log.info("signal not (fully) acted on", extra={"strategy": signal.strategy, "symbol": signal.symbol,
                                                            "side": signal.side.value, "reason": plan.refused})
        for intent in plan.intents:
            self.stats.intents += 1
            if intent.purpose == "entry":
                key = (intent.symbol, intent.position_side)
                if self.holdings.get(key, Holding()).amount == 0:
                    self.holdings[key] = Holding(ZERO, intent.strategy)  # reserved until the entry resolves
            self.planned[intent.client_order_id] = intent
            await self.bus.publish("order.request", intent)

    # =============================================================================================== orders
    def _check_risk(self, intent: OrderIntent, now: int) -> RiskDecision:
        if intent.purpose == "entry":
            price = intent.price or self.last_price.get(intent.symbol) or ZERO
            decision = self.risk.check_entry(strategy=intent.strategy, symbol=intent.symbol,
                                             notional=intent.quantity * price,
                                             symbol_exposure=self.symbol_exposure(intent.symbol), now_ms=now)
        else:
            decision = self.risk.check_exit(strategy=intent.strategy, symbol=intent.symbol, now_ms=now)
        self._persist_risk_changes()
        return decision

    def _has_pending_entry(self, key: tuple[str, PositionSide], strategy: str) -> bool:
        def pending(intent: OrderIntent) -> bool:
            return (intent.purpose == "entry" and intent.strategy == strategy
                    and (intent.symbol, intent.position_side) == key)

        return (any(pending(intent) for intent in self.planned.values())
                or any(pending(t.intent) and t.unsettled for t in self.orders.values()))

    def _release_if_idle(self, symbol: str, position_side: PositionSide) -> None:
        """Drop a reservation whose entry came to nothing (refused, rejected, cancelled or expired unfilled)."""
        key = (symbol, position_side)
        holding = self.holdings.get(key)
        if holding is not None and holding.amount == 0 and (
                holding.owner is None or not self._has_pending_entry(key, holding.owner)):
            del self.holdings[key]

    async def on_order_request(self, intent: OrderIntent) -> None:
        self.planned.pop(intent.client_order_id, None)
        try:
            await self._handle_order_request(intent)
        finally:
            if intent.purpose == "entry":
                self._release_if_idle(intent.symbol, intent.position_side)

    async def _handle_order_request(self, intent: OrderIntent) -> None:
        if intent.client_order_id in self.orders or self.repository.get_order(intent.client_order_id) is not None:
            self.stats.duplicates_skipped += 1
            log.info("order already stored; not sent again", extra={"client_order_id": intent.client_order_id})
            return
        now = self.clock.now_ms()
        decision = self._check_risk(intent, now)
        if not decision.allowed:
            self.stats.refused_by_risk += 1
            if len(self.stats.refusals) < 1000:
                self.stats.refusals.append(f"{decision.guard}: {decision.reason}")
            # A scope that is already REDUCING/HALTED was announced when it changed; its refusals are routine.
            level = logging.INFO if decision.guard == "trading_state" else logging.WARNING
            log.log(level, "order refused by risk guard", extra={
                "client_order_id": intent.client_order_id, "strategy": intent.strategy, "symbol": intent.symbol,
                "guard": decision.guard, "reason": decision.reason})
            return
        owner = self.holdings.get((intent.symbol, intent.position_side), Holding()).owner
        if intent.purpose == "entry" and owner not in (None, intent.strategy):
            self.stats.refused_by_planner += 1
            log.info("entry refused: position owned by another strategy", extra={
                "client_order_id": intent.client_order_id, "owner": owner})
            return
        filters = self.filters[intent.symbol]
        if not intent.order_type.is_conditional:
            open_count = sum(1 for t in self.open_orders() if t.intent.symbol == intent.symbol and not t.is_algo)
            violation = filters.validate(
                order_type=intent.order_type, quantity=intent.quantity, price=intent.price,
                mark_price=self.mark_price.get(intent.symbol) or self.last_price.get(intent.symbol, ZERO),
                reduce_only=intent.reduce_only or intent.purpose != "entry", open_orders=open_count,
                last_price=self.last_price.get(intent.symbol),
            )
            if violation is not None:
                self.stats.refused_by_filters += 1
                log.warning("order refused by exchange filter check", extra={
                    "client_order_id": intent.client_order_id, "symbol": intent.symbol, "code": violation.code,
                    "filter": violation.filter_type, "reason": violation.message})
                return
        # Persist BEFORE sending: if we crash after this line, the restart finds the intent and looks it up.
        self.repository.save_order_intent(intent)
        self.orders[intent.client_order_id] = TrackedOrder(intent, create_time=now,
                                                           is_algo=intent.order_type.is_conditional)
        await self._send(intent)

    async def _send(self, intent: OrderIntent) -> None:
        cid = intent.client_order_id
        is_algo = intent.order_type.is_conditional
        for attempt in range(1, self.max_send_attempts + 1):
            self.repository.mark_intent(cid, IntentState.SENT)
            try:
                if is_algo:
                    ack = await self.gateway.place_algo_order(intent)
                    self._apply_algo_status(cid, ack.status, ack.algo_id)
                else:
                    order = await self.gateway.place_order(intent)
                    self._apply_order(order)
                self.repository.mark_intent(cid, IntentState.ACKNOWLEDGED)
                self.stats.sent += 1
                return
            except BinanceError as exc:
                if not exc.outcome_unknown and exc.code != DUPLICATE_CLIENT_ORDER_ID:
                    self._rejected(intent, exc)
                    return
                reason = f"{exc.code} {exc.msg}"
            except OutcomeUnknownError as exc:
                reason = str(exc)
            self.stats.outcome_unknown += 1
            self.repository.mark_intent(cid, IntentState.UNKNOWN)
            log.warning("order outcome unknown; looking it up before any retry", extra={
                "client_order_id": cid, "attempt": attempt, "reason": reason})
            found = await self._lookup(intent)
            if found is True:
                self.repository.mark_intent(cid, IntentState.ACKNOWLEDGED)
                self.stats.sent += 1
                return
            if found is None:
                break  # could not even tell: stop and halt below
            # found is False: the exchange has no such order; resending under the same id is safe.
        self._halt(f"order {cid} ({intent.symbol} {intent.side.value} {intent.quantity}) outcome unknown after "
                   f"{self.max_send_attempts} attempts; check the exchange, then clear the halt")

    async def _lookup(self, intent: OrderIntent) -> bool | None:
        """True: the exchange has the order (state applied); False: it has not; None: still cannot tell."""
        cid = intent.client_order_id
        for _ in range(self.max_lookups):
            try:
                if intent.order_type.is_conditional:
                    ack = await self.gateway.query_algo_order(cid)
                    self._apply_algo_status(cid, ack.status, ack.algo_id)
                else:
                    self._apply_order(await self.gateway.query_order(intent.symbol, cid))
                return True
            except BinanceError as exc:
                if exc.code == ORDER_NOT_FOUND:
                    return False
                if not exc.outcome_unknown:
                    log.error("order lookup refused", extra={"client_order_id": cid, "code": exc.code,
                                                             "reason": exc.msg})
                    return None
            except OutcomeUnknownError:
                continue
        return None

    def _rejected(self, intent: OrderIntent, exc: BinanceError) -> None:
        self.stats.rejected_by_exchange += 1
        tracked = self.orders.get(intent.client_order_id)
        if tracked is not None:
            tracked.status = OrderStatus.REJECTED
        self.repository.mark_intent(intent.client_order_id, IntentState.REJECTED, reject_code=exc.code,
                                    reject_message=exc.msg)
        log.warning("order rejected by the exchange", extra={
            "client_order_id": intent.client_order_id, "symbol": intent.symbol, "code": exc.code, "reason": exc.msg})

    def _halt(self, reason: str) -> None:
        log.error("trading halted", extra={"reason": reason})
        self.risk.halt(GLOBAL_SCOPE, reason, self.clock.now_ms())
        self._persist_risk_changes()

    def _apply_order(self, order: Order) -> None:
        self.repository.update_order(order)
        tracked = self.orders.get(order.client_order_id)
        if tracked is not None and (tracked.status is None or order.status.rank >= tracked.status.rank):
            tracked.status = order.status
            tracked.executed = max(tracked.executed, order.executed_quantity)
            if not order.status.is_open and order.executed_quantity == 0:
                self._release_if_idle(order.symbol, order.position_side)

    def _apply_algo_status(self, client_algo_id: str, status: AlgoStatus, algo_id: int) -> None:
        tracked = self.orders.get(client_algo_id)
        if tracked is None:
            return
        tracked.status = _ALGO_TO_ORDER_STATUS[status]
        intent = tracked.intent
        now = self.clock.now_ms()
        self.repository.update_order(Order(
            symbol=intent.symbol, order_id=algo_id, client_order_id=client_algo_id, side=intent.side,
            order_type=intent.order_type, status=tracked.status, quantity=intent.quantity, price=ZERO,
            time_in_force=intent.time_in_force or TimeInForce.GTC, position_side=intent.position_side,
            reduce_only=intent.reduce_only, close_position=intent.close_position,
            stop_price=intent.stop_price or ZERO, working_type=intent.working_type, create_time=tracked.create_time,
            update_time=now), is_algo=True)

    async def cancel(self, client_order_id: str, reason: str) -> None:
        tracked = self.orders.get(client_order_id)
        if tracked is None or not tracked.is_open:
            return
        intent = tracked.intent
        try:
            if tracked.is_algo:
                ack = await self.gateway.cancel_algo_order(client_order_id)
                self._apply_algo_status(client_order_id, ack.status, ack.algo_id)
            else:
                self._apply_order(await self.gateway.cancel_order(intent.symbol, client_order_id))
            log.info("order cancelled", extra={"client_order_id": client_order_id, "reason": reason})
        except BinanceError as exc:
            if exc.code in (UNKNOWN_ORDER, ORDER_NOT_FOUND) or not exc.outcome_unknown:
                # Already filled, cancelled or triggered: the exchange's report will (or did) say which.
                log.info("cancel not needed", extra={"client_order_id": client_order_id, "code": exc.code,
                                                     "reason": exc.msg})
                await self._lookup(intent)
            else:
                log.warning("cancel outcome unknown", extra={"client_order_id": client_order_id})
        except OutcomeUnknownError:
            log.warning("cancel outcome unknown; will look again", extra={"client_order_id": client_order_id})

    # ============================================================================================ user data
    async def on_user_event(self, event: UserEvent) -> None:
        if isinstance(event, OrderUpdate):
            await self._on_order_update(event)
        elif isinstance(event, AccountUpdate):
            self._on_account_update(event)
        elif isinstance(event, AlgoUpdate):
            self._apply_algo_status(event.client_algo_id, event.status, event.algo_id)
        elif isinstance(event, ListenKeyExpired):
            log.warning("user data stream key expired; the stream shell reconnects and reconciles")

    async def _on_order_update(self, update: OrderUpdate) -> None:
        order = update.order
        self._apply_order(order)
        if update.fill is not None and self.repository.record_fill(update.fill):
            self.stats.fills += 1
            await self._apply_fill(update.fill)
        tracked = self.orders.get(order.client_order_id)
        if tracked is not None and order.status is OrderStatus.FILLED and tracked.intent.purpose == "entry":
            settings = self.settings.get((tracked.intent.strategy, tracked.intent.symbol))
            if settings is not None and (settings.stop_loss_pct or settings.take_profit_pct):
                for protective in protective_orders(tracked.intent, order.avg_price or order.price, settings,
                                                    self.filters[order.symbol]):
                    await self.bus.publish("order.request", protective)

    def _strategy_of(self, client_order_id: str) -> str | None:
        tracked = self.orders.get(client_order_id)
        if tracked is not None:
            return tracked.intent.strategy
        record = self.repository.get_order(client_order_id)
        return record.strategy if record is not None and record.strategy else None

    async def _apply_fill(self, fill: Fill) -> None:
        key = (fill.symbol, fill.position_side)
        tracked = self.orders.get(fill.client_order_id)
        if tracked is not None:
            tracked.applied += fill.quantity
        holding = self.holdings.get(key, Holding())
        strategy = holding.owner if holding.amount != 0 else self._strategy_of(fill.client_order_id)
        amount = holding.amount + fill.side.sign * fill.quantity
        now = self.clock.now_ms()
        trip = self.round_trips.get(key)
        if holding.amount == 0:
            trip = RoundTrip(strategy or "")
            self.round_trips[key] = trip
            if strategy:
                self.risk.on_position_opened(strategy, fill.symbol, now)
        assert trip is not None
        trip.realized_pnl += fill.realized_pnl
        trip.commission += fill.commission
        self.holdings[key] = Holding(amount, strategy if amount != 0 else None)
        if amount == 0:
            if strategy and self._has_pending_entry(key, strategy):
                self.holdings[key] = Holding(ZERO, strategy)  # a reversal: its entry is on the way
            else:
                del self.holdings[key]
            self.stats.closed_trades += 1
            del self.round_trips[key]
            if trip.strategy:
                pnl = trip.realized_pnl - trip.commission
                self.risk.on_fill_closed_trade(trip.strategy, fill.symbol, pnl, now,
                                               unrealized_pnl=self.unrealized_pnl(trip.strategy))
                log.info("position closed", extra={"strategy": trip.strategy, "symbol": fill.symbol,
                                                   "pnl": str(pnl)})
            await self._cancel_protective(fill.symbol, fill.position_side)
        self._persist_risk_changes()

    async def _cancel_protective(self, symbol: str, position_side: PositionSide) -> None:
        for cid, tracked in list(self.orders.items()):
            intent = tracked.intent
            if (tracked.is_algo and tracked.is_open and intent.symbol == symbol
                    and intent.position_side is position_side):
                await self.cancel(cid, "position closed")

    def _on_account_update(self, update: AccountUpdate) -> None:
        for balance in update.balances:
            if balance.asset == "USDT":
                self.wallet_balance = balance.wallet_balance
        for position in update.positions:
            key = (position.symbol, position.position_side)
            self.exchange_positions[key] = position.amount
            self.entry_prices[key] = position.entry_price
            self.repository.upsert_position(position)
        if update.reason == "FUNDING_FEE":
            symbol = update.positions[0].symbol if update.positions else "ACCOUNT"
            for balance in update.balances:
                if balance.asset == "USDT" and balance.balance_change:
                    self.repository.record_funding(symbol, update.event_time, balance.balance_change)

    # ========================================================================================== market data
    async def on_candle(self, candle: Candle) -> None:
        self.last_price[candle.symbol] = candle.close
        await self.expire_stale_orders()

    async def on_mark_price(self, mark: MarkPrice) -> None:
        self.mark_price[mark.symbol] = mark.mark_price
        if mark.next_funding_time:
            self.risk.on_funding_time(mark.symbol, mark.next_funding_time)
        now = self.clock.now_ms()
        for strategy in {h.owner for (s, _), h in self.holdings.items() if s == mark.symbol and h.owner}:
            self.risk.on_unrealized(strategy, self.unrealized_pnl(strategy), now)
        self.risk.on_time(now)
        self._persist_risk_changes()

    async def expire_stale_orders(self) -> None:
        candidates = [(cid, t.create_time) for cid, t in self.orders.items()
                      if t.is_open and not t.is_algo and t.intent.purpose == "entry"]
        if not candidates:
            return
        for cid in self.risk.expired_orders(candidates, self.clock.now_ms()):
            self.stats.ttl_cancels += 1
            await self.cancel(cid, "order TTL reached")

    def position_mismatches(self) -> list[str]:
        """Positions the exchange reports that the fills we know do not explain."""
        problems = []
        for key in set(self.exchange_positions) | {k for k, h in self.holdings.items() if h.amount}:
            ours = self.holdings.get(key, Holding()).amount
            theirs = self.exchange_positions.get(key, ZERO)
            if ours != theirs:
                problems.append(f"{key[0]} {key[1].value}: fills say {ours}, exchange says {theirs}")
        return problems


def persist_risk_record(repository: Repository, record: StateRecord) -> None:
    repository.set_risk_state(record.scope, record.state, record.reason,
                              consecutive_losses=record.consecutive_losses, details=record.to_dict())

