"""Risk guards as a pure core: may an entry go out, which orders outlived their TTL, and the trading state.

Everything here is synchronous and deterministic: no I/O, no clock reads, no awaits. The shell feeds facts in
(closed trades, unrealized PnL, new positions, funding times, each with the time it happened as int ms UTC), asks
for decisions (``check_entry``, ``check_exit``, ``expired_orders``), and persists every changed
:class:`StateRecord` it drains with :meth:`RiskEngine.drain_state_changes`. See ``docs/risk.md``.

Scopes: ``"global"`` (operator actions only; blocks every strategy) and ``"strategy:<name>"`` (the automatic
guards act here). Money is ``Decimal`` USDT.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from utils.domain import ZERO, TradingState

MS_PER_DAY = 86_400_000
GLOBAL_SCOPE = "global"
STRATEGY_SCOPE_PREFIX = "strategy:"


class Guard(StrEnum):
    """Names carried by decisions (``RiskDecision.guard``) and by state records (``StateRecord.guard``)."""

    TRADING_STATE = "trading_state"  # an entry refused because a scope is REDUCING or HALTED
    DAILY_LOSS_LIMIT = "daily_loss_limit"  # set a strategy to REDUCING
    CONSECUTIVE_LOSSES = "consecutive_losses"  # set a strategy to HALTED
    MAX_NEW_POSITIONS = "max_new_positions"
    SYMBOL_EXPOSURE = "symbol_exposure"
    FUNDING_BLACKOUT = "funding_blackout"
    SYMBOL_STATUS = "symbol_status"  # an entry refused because exchangeInfo says the symbol is not TRADING
    OPERATOR = "operator"  # set by halt() / set_reducing()


def strategy_scope(strategy: str) -> str:
    return f"{STRATEGY_SCOPE_PREFIX}{strategy}"


def parse_scope(scope: str) -> str | None:
    """The strategy name of a ``"strategy:<name>"`` scope, ``None`` for ``"global"``; ``ValueError`` otherwise."""
    if scope == GLOBAL_SCOPE:
        return None
    if scope.startswith(STRATEGY_SCOPE_PREFIX) and len(scope) > len(STRATEGY_SCOPE_PREFIX):
        return scope[len(STRATEGY_SCOPE_PREFIX) :]
    raise ValueError(f"unknown risk scope {scope!r}: use 'global' or 'strategy:<name>'")


def utc_day_start(now_ms: int) -> int:
    """00:00:00.000 UTC of the day containing ``now_ms``."""
    return now_ms - now_ms % MS_PER_DAY


def format_time(ms: int) -> str:
    """``2024-05-01T08:00:00.000Z`` (a pure conversion, no clock read)."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _usdt(value: Decimal) -> str:
    return format(value, "f")


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """One strategy's limits (``None`` = that guard is off). Config keys under ``[risk]`` have the same names."""

    daily_loss_limit_usdt: Decimal | None = None
    max_new_positions_per_day: int | None = None
    max_symbol_exposure_usdt: Decimal | None = None
    order_ttl_sec: int | None = None
    max_consecutive_losses: int | None = None
    funding_blackout_minutes: int | None = None
    #: A consecutive-loss halt lifts itself after this many minutes (counter reset); None: until an operator clears it.
    consecutive_losses_cooldown_minutes: int | None = None

    def __post_init__(self) -> None:
        for name, minimum in (("daily_loss_limit_usdt", 0), ("max_symbol_exposure_usdt", -1)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, (float, bool)) or not isinstance(value, (Decimal, int, str)):
                raise TypeError(f"risk limit {name} must be a Decimal (or int/str), got {value!r}")
            value = Decimal(value)
            if not value.is_finite() or value <= minimum:
                bound = "> 0" if minimum == 0 else ">= 0"
                raise ValueError(f"risk limit {name} must be {bound} USDT (unset turns the guard off), got {value}")
            object.__setattr__(self, name, value)
        for name, minimum in (
            ("max_new_positions_per_day", 0),
            ("order_ttl_sec", 1),
            ("max_consecutive_losses", 1),
            ("funding_blackout_minutes", 0),
            ("consecutive_losses_cooldown_minutes", 1),
        ):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"risk limit {name} must be an int, got {value!r}")
            if value < minimum:
                raise ValueError(f"risk limit {name} must be >= {minimum} (unset turns the guard off), got {value}")

    def with_overrides(self, overrides: Mapping[str, object]) -> RiskLimits:
        """These limits with some keys replaced (a strategy's ``[risk.<strategy>]`` table); unknown keys raise."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown risk setting(s) {unknown}; known: {sorted(known)}")
        return replace(self, **overrides)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RiskDecision:
    allowed: bool
    guard: Guard | None  # None when allowed
    reason: str  # for a person, with the numbers


@dataclass(frozen=True, slots=True)
class StateRecord:
    """One scope's trading state and the counters that must survive a restart (persisted by the shell)."""

    scope: str
    state: TradingState = TradingState.ACTIVE
    reason: str = ""
    guard: Guard | None = None  # which guard set the state (None while ACTIVE)
    since_ms: int = 0
    consecutive_losses: int = 0
    day_start_ms: int = 0  # the UTC day the daily counters below belong to
    realized_pnl_today: Decimal = ZERO
    new_positions_today: int = 0

    def describe(self) -> str:
        if self.state is TradingState.ACTIVE:
            return f"{self.scope} ACTIVE"
        exits_only = " (exits only)" if self.state is TradingState.REDUCING else ""
        return f"{self.scope} {self.state}{exits_only} since {format_time(self.since_ms)} [{self.guard}]: {self.reason}"

    def transition(self, state: TradingState, guard: Guard | None, reason: str, now_ms: int) -> StateRecord:
        """This record moved to ``state`` (set by ``guard``, for ``reason``) at ``now_ms``."""
        return replace(self, state=state, guard=guard, reason=reason, since_ms=now_ms)

    def to_dict(self) -> dict[str, str | int]:
        """Plain JSON-safe values (Decimal as a string)."""
        return {
            "scope": self.scope,
            "state": self.state.value,
            "reason": self.reason,
            "guard": self.guard.value if self.guard is not None else "",
            "since_ms": self.since_ms,
            "consecutive_losses": self.consecutive_losses,
            "day_start_ms": self.day_start_ms,
            "realized_pnl_today": str(self.realized_pnl_today),
            "new_positions_today": self.new_positions_today,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> StateRecord:
        try:
            scope = str(data["scope"])
            parse_scope(scope)
            return cls(
                scope=scope,
                state=TradingState(str(data["state"])),
                reason=str(data.get("reason", "")),
                guard=Guard(str(data["guard"])) if data.get("guard") else None,
                since_ms=int(data.get("since_ms", 0)),  # type: ignore[call-overload]
                consecutive_losses=int(data.get("consecutive_losses", 0)),  # type: ignore[call-overload]
                day_start_ms=int(data.get("day_start_ms", 0)),  # type: ignore[call-overload]
                realized_pnl_today=Decimal(str(data.get("realized_pnl_today", "0"))),
                new_positions_today=int(data.get("new_positions_today", 0)),  # type: ignore[call-overload]
            )
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            raise ValueError(f"bad risk state record {dict(data)!r}: {exc!r}") from exc


_ALLOWED = RiskDecision(True, None, "all risk guards passed")


def _refuse(guard: Guard, reason: str) -> RiskDecision:
    return RiskDecision(False, guard, reason)


class RiskEngine:
    """Every risk guard, fed facts by the shell; each state change is queued for :meth:`drain_state_changes`."""

    def __init__(
        self,
        limits: RiskLimits,
        per_strategy: Mapping[str, RiskLimits] | None = None,
        *,
        state: Mapping[str, StateRecord] | None = None,
    ) -> None:
        self._limits = limits
        self._per_strategy = dict(per_strategy or {})
        self._records: dict[str, StateRecord] = {GLOBAL_SCOPE: StateRecord(GLOBAL_SCOPE)}
        for scope, record in (state or {}).items():
            parse_scope(scope)
            if record.scope != scope:
                raise ValueError(f"risk state for {scope!r} holds a record for {record.scope!r}")
            self._records[scope] = record
        self._unrealized: dict[str, Decimal] = {}
        self._funding: dict[str, tuple[int | None, int]] = {}  # symbol -> (previous, next) funding time
        self._changed: dict[str, None] = {}  # scopes changed since the last drain, in order

    # ---- configuration and state -------------------------------------------------------------------------

    def limits_for(self, strategy: str | None = None) -> RiskLimits:
        if strategy is None:
            return self._limits
        return self._per_strategy.get(strategy, self._limits)

    def state(self, scope: str = GLOBAL_SCOPE) -> StateRecord:
        parse_scope(scope)
        return self._records.get(scope) or StateRecord(scope)

    def states(self) -> dict[str, StateRecord]:
        return dict(self._records)

    def drain_state_changes(self) -> list[StateRecord]:
        """The current record of every scope changed (state or counters) since the last call; persist each."""
        changed = [self._records[scope] for scope in self._changed]
        self._changed.clear()
        return changed

    # ---- operator actions ---------------------------------------------------------------------------------

    def halt(self, scope: str, reason: str, now_ms: int) -> StateRecord:
        return self._operator_set(scope, TradingState.HALTED, reason or "halted by operator", now_ms)

    def set_reducing(self, scope: str, reason: str, now_ms: int) -> StateRecord:
        return self._operator_set(scope, TradingState.REDUCING, reason or "set to exits only by operator", now_ms)

    def clear(self, scope: str, now_ms: int) -> StateRecord:
        """Back to ACTIVE and reset the consecutive-loss count. Automatic guards still apply from the next fact."""
        parse_scope(scope)
        record = self._records.get(scope)
        if record is None:
            raise ValueError(f"no risk state for scope {scope!r}; known scopes: {sorted(self._records)}")
        cleared = record.transition(TradingState.ACTIVE, None, f"cleared by operator (was {record.describe()})", now_ms)
        self._put(replace(cleared, consecutive_losses=0))
        return self._records[scope]

    def replace_state(self, record: StateRecord) -> None:
        """Take a record an operator stored while the bot runs (e.g. a halt cleared with ``main.py risk clear``)."""
        parse_scope(record.scope)
        self._put(record)

    def _operator_set(self, scope: str, state: TradingState, reason: str, now_ms: int) -> StateRecord:
        parse_scope(scope)
        record = self._records.get(scope) or StateRecord(scope, day_start_ms=utc_day_start(now_ms))
        self._put(record.transition(state, Guard.OPERATOR, reason, now_ms))
        return self._records[scope]

    # ---- facts ----------------------------------------------------------------------------------------------

    def on_time(self, now_ms: int) -> None:
        """Let time pass: at a new UTC day, reset every strategy's daily counters (and lift daily-loss REDUCING);
        a consecutive-loss halt whose cool-down has passed lifts itself."""
        for scope in list(self._records):
            strategy = parse_scope(scope)
            if strategy is not None:
                self._roll_day(strategy, now_ms)
                self._end_cooldown(strategy, now_ms)

    def _end_cooldown(self, strategy: str, now_ms: int) -> None:
        record = self._records[strategy_scope(strategy)]
        cooldown = self.limits_for(strategy).consecutive_losses_cooldown_minutes
        if (cooldown and record.state is TradingState.HALTED and record.guard is Guard.CONSECUTIVE_LOSSES
                and now_ms - record.since_ms >= cooldown * 60_000):
            lifted = record.transition(TradingState.ACTIVE, None, f"the {cooldown}-minute cool-down after "
                                       f"{record.consecutive_losses} consecutive losses ended", now_ms)
            self._put(replace(lifted, consecutive_losses=0))

    def on_fill_closed_trade(
        self,
        strategy: str,
        symbol: str,
        realized_pnl: Decimal,
        now_ms: int,
        *,
        unrealized_pnl: Decimal | None = None,
    ) -> None:
        """A round trip closed with ``realized_pnl`` (after fees). ``< 0`` is a loss; anything else ends a losing run.

        Pass ``unrealized_pnl`` (the strategy's unrealized PnL after this close) when known, so the closed amount is
        not counted twice (as realized and as still-unrealized) by the daily loss limit.
        """
        record = self._roll_day(strategy, now_ms)
        if unrealized_pnl is not None:
            self._unrealized[strategy] = unrealized_pnl
        losses = record.consecutive_losses + 1 if realized_pnl < 0 else 0
        record = replace(
            record, realized_pnl_today=record.realized_pnl_today + realized_pnl, consecutive_losses=losses
        )
        limits = self.limits_for(strategy)
        limit = limits.max_consecutive_losses
        if limit is not None and losses >= limit and record.state is not TradingState.HALTED:
            cooldown = limits.consecutive_losses_cooldown_minutes
            until = (f"for {cooldown} min, until {format_time(now_ms + cooldown * 60_000)}, or until an operator "
                     f"clears it" if cooldown else "until an operator clears it")
            record = record.transition(
                TradingState.HALTED,
                Guard.CONSECUTIVE_LOSSES,
                f"{losses} consecutive losing trades reached limit {limit} (last: {symbol} {_usdt(realized_pnl)}"
                f" USDT); halted {until}: uv run main.py risk clear {record.scope}",
                now_ms,
            )
        self._put(record)
        self._check_daily_loss(strategy, now_ms)

    def on_unrealized(self, strategy: str, unrealized_pnl: Decimal, now_ms: int) -> None:
        """The strategy's current unrealized PnL (all its positions, at mark price)."""
        self._roll_day(strategy, now_ms)
        self._unrealized[strategy] = unrealized_pnl
        self._check_daily_loss(strategy, now_ms)

    def on_position_opened(self, strategy: str, symbol: str, now_ms: int) -> None:
        """A new position (from flat) was opened: counts toward the strategy's positions for this UTC day."""
        record = self._roll_day(strategy, now_ms)
        self._put(replace(record, new_positions_today=record.new_positions_today + 1))

    def on_funding_time(self, symbol: str, next_funding_time_ms: int) -> None:
        """The mark-price stream's next funding time (field ``T``); when it moves on, the old one is remembered."""
        current = self._funding.get(symbol)
        if current is None:
            self._funding[symbol] = (None, next_funding_time_ms)
        elif next_funding_time_ms > current[1]:
            self._funding[symbol] = (current[1], next_funding_time_ms)
        # an equal or older value (a repeat, or a stale event) changes nothing

    # ---- decisions ----------------------------------------------------------------------------------------

    def check_entry(
        self,
        *,
        strategy: str,
        symbol: str,
        notional: Decimal,
        symbol_exposure: Decimal,
        now_ms: int,
        pending_new_positions: int = 0,
    ) -> RiskDecision:
        """May ``strategy`` open or increase a position on ``symbol`` by ``notional`` USDT now?

        ``pending_new_positions`` counts the strategy's entries already sent that will open a position when they
        fill, so several entries in flight at once cannot together pass the daily limit.

        ``symbol_exposure`` is the current absolute notional on ``symbol`` across all strategies. Every guard applies.
        """
        if notional < 0 or symbol_exposure < 0:
            raise ValueError(
                f"check_entry needs non-negative notionals: {strategy} {symbol} notional={notional}"
                f" symbol_exposure={symbol_exposure}"
            )
        record = self._roll_day(strategy, now_ms)
        self._check_daily_loss(strategy, now_ms)
        for scope in (GLOBAL_SCOPE, record.scope):
            blocking = self._records[scope]
            if blocking.state is not TradingState.ACTIVE:
                return _refuse(Guard.TRADING_STATE, f"no new entries for {strategy} {symbol}: {blocking.describe()}")
        record = self._records[record.scope]
        limits = self.limits_for(strategy)

        max_new = limits.max_new_positions_per_day
        if max_new is not None and record.new_positions_today + pending_new_positions >= max_new:
            in_flight = f" (+{pending_new_positions} entries on their way)" if pending_new_positions else ""
            return _refuse(
                Guard.MAX_NEW_POSITIONS,
                f"{strategy} opened {record.new_positions_today}{in_flight} new positions on UTC day"
                f" {format_time(record.day_start_ms)[:10]} >= limit {max_new}",
            )

        if limits.max_symbol_exposure_usdt is not None:
            after = symbol_exposure + notional
            if after > limits.max_symbol_exposure_usdt:
                return _refuse(
                    Guard.SYMBOL_EXPOSURE,
                    f"{symbol} exposure {_usdt(symbol_exposure)} + order {_usdt(notional)} = {_usdt(after)} USDT"
                    f" > limit {_usdt(limits.max_symbol_exposure_usdt)} USDT",
                )

        if limits.funding_blackout_minutes:  # 0 or unset: off
            refusal = self._funding_blackout(symbol, limits.funding_blackout_minutes, now_ms)
            if refusal is not None:
                return refusal

        return _ALLOWED

    def check_exit(self, *, strategy: str, symbol: str, now_ms: int) -> RiskDecision:
        """Reduce-only exits are always allowed, in every state: halting never traps a position."""
        record = self._roll_day(strategy, now_ms)
        scopes = (GLOBAL_SCOPE, record.scope)
        blocking = [self._records[s] for s in scopes if self._records[s].state is not TradingState.ACTIVE]
        if not blocking:
            return RiskDecision(True, None, "exits are always allowed")
        states = "; ".join(r.describe() for r in blocking)
        return RiskDecision(True, None, f"exits are always allowed ({symbol}, while {states})")

    def expired_orders(
        self, open_orders: Iterable[tuple[str, int]], now_ms: int, *, strategy: str | None = None
    ) -> list[str]:
        """Client order ids, from ``(client_order_id, create_time_ms)``, whose age is at least ``order_ttl_sec``.

        Uses ``strategy``'s TTL when given, else the default one; no TTL configured means nothing expires.
        """
        ttl_sec = self.limits_for(strategy).order_ttl_sec
        if ttl_sec is None:
            return []
        ttl_ms = ttl_sec * 1000
        return [client_order_id for client_order_id, create_time in open_orders if now_ms - create_time >= ttl_ms]

    # ---- internals ----------------------------------------------------------------------------------------

    def _put(self, record: StateRecord) -> None:
        if self._records.get(record.scope) != record:
            self._records[record.scope] = record
            self._changed[record.scope] = None

    def _roll_day(self, strategy: str, now_ms: int) -> StateRecord:
        """The strategy's record, its daily counters reset if ``now_ms`` is in a later UTC day than theirs."""
        scope = strategy_scope(strategy)
        day = utc_day_start(now_ms)
        record = self._records.get(scope)
        if record is None:
            record = StateRecord(scope, day_start_ms=day)
            self._records[scope] = record  # nothing to persist until something changes
            return record
        if day <= record.day_start_ms:  # same day (or time went backwards: keep the later day's counters)
            return record
        record = replace(record, day_start_ms=day, realized_pnl_today=ZERO, new_positions_today=0)
        if record.state is TradingState.REDUCING and record.guard == Guard.DAILY_LOSS_LIMIT:
            record = record.transition(
                TradingState.ACTIVE,
                None,
                f"daily loss limit lifted at the new UTC day {format_time(day)[:10]} (was: {record.reason})",
                now_ms,
            )
        self._put(record)
        self._check_daily_loss(strategy, now_ms)
        return self._records[scope]

    def _check_daily_loss(self, strategy: str, now_ms: int) -> None:
        limit = self.limits_for(strategy).daily_loss_limit_usdt
        record = self._records[strategy_scope(strategy)]
        if limit is None or record.state is not TradingState.ACTIVE:
            return
        realized = record.realized_pnl_today
        unrealized = self._unrealized.get(strategy, ZERO)
        total = realized + unrealized
        if total > -limit:
            return
        self._put(
            record.transition(
                TradingState.REDUCING,
                Guard.DAILY_LOSS_LIMIT,
                f"daily loss {_usdt(-total)} USDT >= limit {_usdt(limit)} USDT"
                f" (realized {_usdt(realized)}, unrealized {_usdt(unrealized)})",
                now_ms,
            )
        )

    def _funding_blackout(self, symbol: str, minutes: int, now_ms: int) -> RiskDecision | None:
        known = self._funding.get(symbol)
        if known is None:
            return _refuse(
                Guard.FUNDING_BLACKOUT,
                f"no funding time known for {symbol} yet (the {minutes}-minute funding blackout needs the"
                f" mark-price stream's next funding time)",
            )
        window_ms = minutes * 60_000
        for funding_time in known[::-1]:  # next, then previous
            if funding_time is None:
                continue
            distance = now_ms - funding_time
            if abs(distance) <= window_ms:
                when = "before" if distance < 0 else "after"
                return _refuse(
                    Guard.FUNDING_BLACKOUT,
                    f"{symbol}: {abs(distance) // 1000}.{abs(distance) % 1000:03d} s {when} funding at"
                    f" {format_time(funding_time)},"
                    f" within the {minutes}-minute blackout",
                )
        return None
