"""A test harness: the real execution core on the real simulated exchange and database, through the sync applier.

One ``Harness`` is one bot process. Pass the ``exchange`` (and ``clock``) of an earlier harness to restart the bot
against an exchange that kept its state, as a live one does.
"""

from __future__ import annotations

from decimal import Decimal

from database.journal import RepositoryJournal, load_seed
from database.repository import Repository
from executor.commands import CandleInput, MarkPriceInput, SignalInput, StreamInterrupted, UserEventInput
from executor.core import ExecutionCore, ExecutionPolicy
from executor.planner import ExecutionSettings
from executor.risk import GLOBAL_SCOPE, RiskEngine, RiskLimits, StateRecord, strategy_scope
from runtime.applier import SyncApplier
from runtime.assembly import load_risk_state
from simulator.engine import SimConfig, SimExchange
from simulator.exchange_info import load_symbol_filters
from simulator.gateway import SimGateway
from utils.binance_parse import UserEvent
from utils.clock import SimulatedClock
from utils.domain import Candle, MarkPrice, PositionMode, Signal, SignalSide, SizingMode

START = 1_681_948_800_000  # 2023-04-20 00:00 UTC
MINUTE = 60_000
D = Decimal


def settings(strategy: str = "alpha", symbol: str = "BTCUSDT", **overrides: object) -> ExecutionSettings:
    values: dict[str, object] = dict(strategy=strategy, symbol=symbol, sizing_mode=SizingMode.FIXED_NOTIONAL,
                                     sizing_value=D("300"), leverage=5)
    values.update(overrides)
    return ExecutionSettings(**values)  # type: ignore[arg-type]


class Harness:
    """One 'process': core + applier + repository over an exchange (pass ``exchange`` to restart against it)."""

    def __init__(self, db_url: str, *, exchange: SimExchange | None = None, clock: SimulatedClock | None = None,
                 limits: RiskLimits | None = None, strategies: list[ExecutionSettings] | None = None,
                 position_mode: PositionMode = PositionMode.ONEWAY, fresh_account: bool = False,
                 policy: ExecutionPolicy | None = None, risk_state: dict[str, StateRecord] | None = None,
                 sim_config: SimConfig | None = None, start: bool = True) -> None:
        self.clock = clock or SimulatedClock(START)
        filters = load_symbol_filters()
        self.filters = {s: filters[s] for s in ("BTCUSDT", "ETHUSDT")}
        self.exchange = exchange or SimExchange(self.filters, clock=self.clock, initial_balance=D("10000"),
                                                config=sim_config or SimConfig())
        if position_mode is PositionMode.HEDGE and not self.exchange.dual_side_position:
            self.exchange.set_position_mode(True)
        self.gateway = SimGateway(self.exchange, self.clock)
        self.repository = Repository.open(db_url, self.clock)
        self.strategies = strategies or [settings()]
        scopes = [GLOBAL_SCOPE] + [strategy_scope(s.strategy) for s in self.strategies]
        self.risk = RiskEngine(limits or RiskLimits(),
                               state=risk_state if risk_state is not None else load_risk_state(self.repository, scopes))
        self.core = ExecutionCore(risk=self.risk, filters=self.filters, settings=self.strategies,
                                  position_mode=position_mode, policy=policy, seed=load_seed(self.repository))
        self.journal = RepositoryJournal(self.repository)
        self.notices: list[str] = []
        self.applier = SyncApplier(self.core, self.gateway, self.journal, now=self.clock.now_ms,
                                   user_events=self.gateway.take_user_events, fresh_account=fresh_account,
                                   on_notice=lambda notice: self.notices.append(notice.event))
        self.minute = (self.clock.now_ms() - START) // MINUTE + (1 if self.clock.now_ms() > START else 0)
        if start:
            self.applier.start()

    def close(self) -> None:
        self.repository.close()

    def set_time(self, now: int) -> None:
        self.clock.set(max(self.clock.now_ms(), now))

    def advance(self, ms: int) -> None:
        """Let ``ms`` of time pass without a candle (timers that fall due fire at their time)."""
        until = self.clock.now_ms() + ms
        self.applier.tick_until(until, set_time=self.set_time)
        self.set_time(until)
        self.applier.deliver_user_events()

    def candle(self, close: str, *, symbol: str = "BTCUSDT", high: str | None = None, low: str | None = None,
               open_: str | None = None, volume: str = "1000") -> Candle:
        """The next closed 1m candle: the exchange matches it, then the core sees it (like the sim shell)."""
        open_time = START + self.minute * MINUTE
        self.minute += 1
        price = D(close)
        candle = Candle(symbol=symbol, open_time=open_time, close_time=open_time + MINUTE - 1,
                        open=D(open_) if open_ else price, high=D(high) if high else price,
                        low=D(low) if low else price, close=price, volume=D(volume))
        self.applier.tick_until(candle.close_time - 1, set_time=self.set_time)
        self.set_time(candle.close_time)
        self.exchange.on_candle(candle)
        self.applier.deliver_user_events()
        self.applier.feed(CandleInput(candle))
        mark = self.exchange.mark_price(symbol)
        self.applier.feed(MarkPriceInput(MarkPrice(symbol, self.clock.now_ms(), mark, mark,
                                                   self.exchange.funding_rate(symbol),
                                                   self.exchange.next_funding_time(symbol))))
        return candle

    def signal(self, side: SignalSide, *, strategy: str = "alpha", symbol: str = "BTCUSDT") -> Signal:
        signal = Signal(strategy, symbol, side, D(1), "test", self.clock.now_ms())
        self.applier.feed(SignalInput(signal))
        return signal

    def deliver(self, event: UserEvent) -> None:
        self.applier.feed(UserEventInput(event, self.clock.now_ms()))

    def interrupt_stream(self, reason: str = "test") -> None:
        self.applier.feed(StreamInterrupted(self.clock.now_ms(), reason))

    def lose_user_events(self) -> int:
        """Drop the user-data events the exchange sent since the last delivery (a stream that missed them)."""
        return len(self.gateway.take_user_events())

    def exchange_orders(self, symbol: str = "BTCUSDT") -> set[int]:
        return {fill.order_id for fill in self.exchange.user_trades(symbol, limit=1000)}
