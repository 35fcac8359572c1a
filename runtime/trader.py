"""The sim-mode shell: wires the replay feed, simulated exchange, strategies, execution core, database, heartbeat.

Per minute of data, in this order (so the run is deterministic and nothing sees the future):
1. the core's timers that fall due before the minute's close fire (lookups, retries), each at its own time;
2. the clock moves to the candles' close; the simulated exchange matches resting orders against them
   (orders placed after candle t can only fill on candles after t);
3. the exchange's user-data events (fills of resting orders) go onto the bus (``order.update``, ...);
4. the candles (``market.kline``) and mark prices (``market.mark``) go onto the bus;
5. the shell waits until every consumer is idle: strategies signal (``signal.*``); the execution core's single
   consumer hands every input to the synchronous applier, which persists, sends to the in-process exchange and
   feeds its answers back; the exchange's user-data events go onto the bus and come back to the core.
A live shell differs in steps 2-3 (the exchange is remote; its events come over the user-data stream) and uses
the asynchronous applier.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from config import AppConfig
from database.journal import RepositoryJournal
from database.repository import Repository
from executor.commands import (
    CandleInput,
    Command,
    MarkPriceInput,
    OperatorChange,
    SignalInput,
    SubmitAlgoOrder,
    SubmitOrder,
    UserEventInput,
)
from executor.core import ExecutionPolicy
from executor.risk import GLOBAL_SCOPE, format_time
from marketdata.replay import ReplaySource, csv_source, merge_minutes, synthetic_source
from runtime.applier import SyncApplier
from runtime.assembly import add_core_sections, build_core, operator_changes, strategy_runner
from runtime.heartbeat import HEARTBEAT_FILE, Heartbeat
from runtime.setup import configure_exchange
from simulator.engine import SimConfig, SimExchange
from simulator.exchange_info import load_symbol_filters
from simulator.gateway import SimGateway
from simulator.state import StateError
from utils.binance_parse import AccountUpdate, AlgoUpdate, OrderUpdate, UserEvent
from utils.bus import Event, EventBus, consume
from utils.clock import SimulatedClock
from utils.domain import ZERO, Candle, MarkPrice, RoundTrip, Signal, TripStatus
from utils.filters import SymbolFilters

log = logging.getLogger("runtime.trader")

CANDLE_FLUSH_EVERY = 2_000
#: Wall-clock seconds between saves of the simulated account (and always at the end of a run).
ACCOUNT_SAVE_EVERY_SEC = 5.0
#: Wall-clock seconds between looks at the database for trading states an operator changed (`main.py risk clear`).
OPERATOR_POLL_SEC = 2.0
HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class StrategyResult:
    """One strategy's closed round trips in a run."""

    strategy: str
    trades: int
    wins: int
    net_pnl: Decimal  # realized PnL minus fees
    fees: Decimal


def strategy_results(trips: list[RoundTrip]) -> list[StrategyResult]:
    by_strategy: dict[str, list[RoundTrip]] = {}
    for trip in trips:
        by_strategy.setdefault(trip.strategy or "(external)", []).append(trip)
    return [StrategyResult(name, len(group), sum(1 for t in group if t.net_pnl > 0),
                           sum((t.net_pnl for t in group), ZERO), sum((t.commission for t in group), ZERO))
            for name, group in sorted(by_strategy.items())]


@dataclass
class RunSummary:
    """What a run did, for the closing printout (and for tests)."""

    data: str
    minutes: int
    candles: int
    signals: int
    orders_sent: int
    fills: int
    closed_trades: int
    realized_pnl: Decimal
    fees: Decimal
    funding: Decimal
    wallet_balance: Decimal
    equity: Decimal
    start_balance: Decimal
    open_positions: list[dict[str, str]]
    open_orders: int
    trading_states: dict[str, str]
    stopped_early: bool
    disabled_strategies: list[str] = field(default_factory=list)
    already_sent: int = 0  # orders the core found already stored (the same data replayed) and did not send
    per_strategy: list[StrategyResult] = field(default_factory=list)

    def render(self) -> str:
        lines = [
            "Run summary",
            f"  data            {self.data}",
            f"  minutes         {self.minutes} ({self.candles} candles)",
            f"  signals         {self.signals}",
            f"  orders sent     {self.orders_sent}"
            + (f"   ({self.already_sent} already in the database from an earlier run on the same data: not sent "
               "again)" if self.already_sent else ""),
            f"  fills           {self.fills}   closed trades: {self.closed_trades}",
            f"  realized PnL    {self.realized_pnl:.4f} USDT",
            f"  fees            {self.fees:.4f} USDT",
            f"  funding         {self.funding:.4f} USDT",
            f"  wallet balance  {self.wallet_balance:.4f} USDT (started with {self.start_balance:.4f})",
            f"  equity          {self.equity:.4f} USDT",
            f"  open orders     {self.open_orders}",
        ]
        if self.per_strategy:
            lines.append("  per strategy    trades  win rate   net PnL USDT   fees USDT")
            for result in self.per_strategy:
                rate = f"{result.wins / result.trades:7.1%}" if result.trades else "      -"
                lines.append(f"    {result.strategy:<18} {result.trades:>6}  {rate}  {result.net_pnl:>13.4f}"
                             f"  {result.fees:>10.4f}")
        if self.open_positions:
            lines.append("  open positions")
            for position in self.open_positions:
                lines.append("    " + ", ".join(f"{k}={v}" for k, v in position.items()))
        else:
            lines.append("  open positions  none")
        lines.append("  trading state   " + ", ".join(f"{k}: {v}" for k, v in self.trading_states.items()))
        blocked = [scope for scope, state in self.trading_states.items() if state != "ACTIVE"]
        if blocked:
            lines.append("                  halts are kept across runs; see why with `uv run main.py risk`, clear "
                         "with `uv run main.py risk clear <scope>`")
        if self.disabled_strategies:
            lines.append("  disabled        " + "; ".join(self.disabled_strategies))
        if self.stopped_early:
            lines.append("  (stopped before the end of the data)")
        return "\n".join(lines)


class SimTrader:
    """One sim-mode run: build, warm up, replay, shut down cleanly, summarise."""

    def __init__(self, config: AppConfig, *, source: ReplaySource | None = None, days: float = 2.0,
                 speed: float | None = None, sim_config: SimConfig | None = None,
                 heartbeat_path: Path | None = None, policy: ExecutionPolicy | None = None,
                 fresh_account: bool = False) -> None:
        self.config = config
        settings = config.settings
        self.symbols = [symbol.symbol for symbol in config.symbols]
        all_filters = load_symbol_filters()
        missing = [s for s in self.symbols if s not in all_filters]
        if missing:
            raise ValueError(f"the simulator's exchangeInfo has no {', '.join(missing)} (it has "
                             f"{', '.join(sorted(all_filters))})")
        self.filters: dict[str, SymbolFilters] = {s: all_filters[s] for s in self.symbols}
        self.clock = SimulatedClock(0)
        self.bus = EventBus()  # a replay can wait for consumers, so no channel is lossy
        self.repository = Repository.open(settings.db_url, self.clock)
        self.exchange, self.account_note = self._open_account(sim_config or SimConfig(), fresh_account)
        self.start_balance = self.exchange.account().wallet_balance
        account = self.exchange.account()
        self._account_at_start = _AccountTotals(self.clock.now_ms(), account.realized_pnl, account.fees_paid,
                                                account.funding_total)
        self.gateway = SimGateway(self.exchange)
        self.runner = strategy_runner(config)
        parts = build_core(config, self.repository, self.filters, policy=policy)
        self._risk_scopes = parts.risk_scopes
        self.risk = parts.risk
        self.position_mode = settings.position_mode
        self.core = parts.core
        self.journal = RepositoryJournal(self.repository)
        self._user_events: list[UserEvent] = []
        self.applier = SyncApplier(
            self.core, self.gateway, self.journal, now=self.clock.now_ms, user_events=self.gateway.take_user_events,
            on_user_events=self._user_events.extend, on_command=self._on_command,
            fresh_account=self.account_is_new,  # reconciliation knows a new account holds nothing of the old one
        )
        speed = settings.sim_speed if speed is None else speed
        if source is None:
            if settings.sim_data:
                source = csv_source(list(settings.sim_data), speed=speed, symbols=self.symbols)
            else:
                warmup = max(self.runner.warmup_candles(s) for s in self.symbols)
                source = synthetic_source(self.symbols, days=days, warmup=warmup, speed=speed, **self._continuation())
        self.source = source
        self._check_data_after_account()
        unknown = sorted(set(source.streams) - set(self.symbols))
        if unknown:
            raise ValueError(f"data for {', '.join(unknown)}, which {settings.symbols_file} does not configure")
        #: Configured symbols the data does not cover: their strategies get no candles and never trade this run.
        self.symbols_without_data = [s for s in self.symbols if s not in source.streams]
        self.symbols = [s for s in self.symbols if s in source.streams]
        self.heartbeat = Heartbeat(heartbeat_path or settings.status_dir / HEARTBEAT_FILE,
                                   settings.heartbeat_interval_sec)
        self._pending_candles: list[Candle] = []
        self._warming = False
        self._account_saved_wall = 0.0  # the first minute saves the account, then every ACCOUNT_SAVE_EVERY_SEC
        self._operator_checked_wall = time.monotonic()
        self._last_snapshot_hour = -1
        self.warmup_sources: dict[str, str] = {}
        self._minutes = 0
        self._last_message_wall: float | None = None
        self._feed_state = "starting"
        self._process_state = "running"
        self._database_error: str | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._setup_heartbeat()

    # ============================================================================================ set-up
    def _open_account(self, sim_config: SimConfig, fresh: bool) -> tuple[SimExchange, str]:
        """The simulated account an earlier run saved in this database, or a new one whose ids start above every
        id the database holds (so nothing of an old account can collide with it)."""
        saved = None if fresh else self.repository.load_sim_account()
        if saved is not None:
            document, saved_at = saved
            self.clock.set(saved_at)
            try:
                exchange = SimExchange.restore(json.loads(document), clock=self.clock)
            except (ValueError, StateError) as error:
                raise ValueError(f"the simulated account saved in the database cannot be restored ({error}); "
                                 "start a new one with --fresh-account") from error
            highest_order, highest_trade = self.repository.highest_exchange_ids()
            exchange.move_ids_above(order_id=highest_order, trade_id=highest_trade)
            self.account_is_new = False
            positions = [p for p in exchange.positions() if p.amount]
            note = (f"continuing the simulated account saved at {format_time(saved_at)} (wallet "
                    f"{exchange.account().wallet_balance:.2f} USDT, {len(positions)} open position(s), "
                    f"{len(exchange.open_orders())} open order(s)); --fresh-account starts a new one")
            return exchange, note
        highest_order, highest_trade = self.repository.highest_exchange_ids()
        exchange = SimExchange(self.filters, clock=self.clock, config=sim_config,
                               initial_balance=self.config.settings.sim_start_balance,
                               first_order_id=highest_order + 1, first_trade_id=highest_trade + 1,
                               first_algo_id=highest_order + 1)
        self.account_is_new = True
        note = "a new simulated account" + (" (--fresh-account: the database's earlier orders and positions are "
                                            "closed in the books)" if fresh else "")
        return exchange, note

    def _continuation(self) -> dict[str, Any]:
        """Synthetic data for a continued account goes on after it, from its last prices."""
        if self.account_is_new:
            return {}
        prices = {s: self.exchange.last_price(s) for s in self.symbols if self.exchange.last_price(s)}
        return {"after_ms": self.clock.now_ms(), "start_prices": prices}

    def _check_data_after_account(self) -> None:
        if self.account_is_new:
            return
        account_time = self.clock.now_ms()
        for symbol, stream in self.source.streams.items():
            iterator = iter(stream)
            head = next(iterator, None)
            if head is None:
                continue
            self.source.streams[symbol] = _prepend(head, iterator)
            if head.close_time <= account_time:
                raise ValueError(
                    f"the data for {symbol} starts at {format_time(head.open_time)}, but the simulated account in "
                    f"this database is already at {format_time(account_time)}: replay data after it, or start a new "
                    "account with --fresh-account")

    def take_operator_changes(self) -> int:
        """Trading states an operator changed in the database while the bot runs, handed to the core.

        Called between minutes, when every consumer is idle: the core's own changes are already stored then, so a
        stored record that differs from the core's can only have been written by someone else.
        """
        self._operator_checked_wall = time.monotonic()
        changed = operator_changes(self.repository, self.risk, self._risk_scopes)
        for record in changed:
            self.applier.feed(OperatorChange(record, self.clock.now_ms()))
        return len(changed)

    def save_account(self) -> None:
        """Store the simulated exchange's state (between minutes, when every consumer is idle)."""
        self.repository.save_sim_account(json.dumps(self.exchange.snapshot()), self.clock.now_ms())
        self._account_saved_wall = time.monotonic()

    def _configure_exchange(self) -> None:
        configure_exchange(self.exchange, self.config.symbols, self.position_mode)

    def _reconcile_at_start(self) -> None:
        """Bring the books and the database in line with the (fresh, in-process) simulated exchange.

        The simulated exchange lives only as long as the process, so orders an earlier sim run left open are
        gone: they are marked EXPIRED, and positions the exchange does not hold are closed in the books.
        """
        self.applier.start()
        self.gateway.take_user_events()

    def _warm_up(self) -> list[list[Candle]]:
        """Strategies get the candles they asked for: from the database first, then the feed's first candles.

        Database candles go straight to the strategies. The feed's are returned, by minute, to be replayed through
        the whole bot with the strategies' signals dropped: the account may hold positions and stops (a continued
        simulated account), and those must trade, and be booked, while the strategies warm up.
        """
        needed = {symbol: self.runner.warmup_candles(symbol) for symbol in self.symbols}
        from_database: dict[str, list[Candle]] = {}
        streams = self.source.streams
        for symbol, count in needed.items():
            iterator = iter(streams[symbol])
            head = next(iterator, None)  # the replay's first candle: the database must end right before it
            if head is None:
                continue
            streams[symbol] = _prepend(head, iterator)
            if self.source.synthetic:
                continue  # made-up prices warm up from the generator only
            stored = self.repository.load_candles(symbol, count, before_open_time=head.open_time)
            contiguous = bool(stored) and stored[-1].open_time == head.open_time - 60_000 and len(stored) == count
            if contiguous:
                from_database[symbol] = stored
        remaining = {symbol: count for symbol, count in needed.items() if symbol not in from_database}
        from_feed = self.source.take_warmup(remaining)
        for symbol in self.symbols:
            for strategy in self.runner.strategies:
                if strategy.symbol == symbol and symbol in from_database:
                    self.runner.warm_up(strategy, from_database[symbol])
            self.warmup_sources[symbol] = "database" if symbol in from_database else "feed"
            log.info("strategies warming up", extra={
                "symbol": symbol, "candles": len(from_database.get(symbol) or from_feed.get(symbol, [])),
                "source": self.warmup_sources[symbol]})
        return [list(group) for group in merge_minutes(from_feed.values())]

    # ============================================================================================ running
    async def run(self) -> RunSummary:
        stopped_early = False
        consumers = [
            (self.bus.subscribe(("market.kline", "market.mark"), name="strategies"), self._on_market_for_strategies),
            (self.bus.subscribe(("market.*", "signal.*", "order.update", "algo.update", "account.update"),
                                name="execution-core"), self._on_core_input),
            (self.bus.subscribe("market.kline", name="recorder"), self._on_candle_for_recorder),
        ]
        self._tasks = [asyncio.create_task(consume(sub, handler), name=f"consume:{sub.name}")
                       for sub, handler in consumers]
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="heartbeat"))
        log.info("sim run starting", extra={"data": self.source.description, "symbols": self.symbols,
                                             "position_mode": self.position_mode.value})
        try:
            warmup = self._warm_up()
            first = warmup[0][0].open_time if warmup else self._first_open_time()
            if first is not None:  # the account starts where the data does (a new one's clock is still at 0)
                self._set_time(first - 1)
            self._configure_exchange()
            self._reconcile_at_start()
            self._warming = True
            for group in warmup:  # the whole bot watches the account; the strategies' signals are dropped
                await self._process_minute(group)
            self._warming = False
            self._feed_state = "replaying"
            async for group in self.source.minutes():
                await self._process_minute(group)
                if self._stopping.is_set():
                    stopped_early = True
                    break
            self._feed_state = "finished"
        except asyncio.CancelledError:
            stopped_early = True
            self._feed_state = "interrupted"
        finally:
            await self._shutdown()
        return self.summary(stopped_early)

    def blocked_scopes(self) -> list[str]:
        """Scopes that start this run REDUCING or HALTED (restored from the database), with reason and remedy."""
        lines = []
        for scope, record in sorted(self.risk.states().items()):
            if record.state.value != "ACTIVE":
                remedy = "" if "risk clear" in record.reason else f" (clear it: uv run main.py risk clear {scope})"
                lines.append(f"{scope} is {record.state.value}: {record.reason}{remedy}")
        return lines

    def stop(self) -> None:
        """Ask the run to stop after the current minute (Ctrl-C)."""
        self._stopping.set()

    async def _process_minute(self, group: list[Candle]) -> None:
        close = max(candle.close_time for candle in group)
        self.applier.tick_until(close - 1, set_time=self._set_time)  # every consumer is idle here
        self.clock.set(max(self.clock.now_ms(), close))
        for candle in group:
            self.exchange.on_candle(candle)
        await self._publish_user_events()
        for candle in group:
            await self.bus.publish("market.kline", candle)
            await self.bus.publish("market.mark", MarkPrice(
                symbol=candle.symbol, event_time=self.clock.now_ms(),
                mark_price=self.exchange.mark_price(candle.symbol),
                index_price=self.exchange.mark_price(candle.symbol),
                funding_rate=self.exchange.funding_rate(candle.symbol),
                next_funding_time=self.exchange.next_funding_time(candle.symbol)))
        if not self._warming:
            self._minutes += 1
        self._last_message_wall = time.monotonic()
        await self._quiesce()
        if time.monotonic() - self._account_saved_wall >= ACCOUNT_SAVE_EVERY_SEC:
            self.save_account()
        if time.monotonic() - self._operator_checked_wall >= OPERATOR_POLL_SEC:
            self.take_operator_changes()
        if close // HOUR_MS != self._last_snapshot_hour:
            self._record_account_snapshot()

    def _first_open_time(self) -> int | None:
        heads = []
        for symbol, stream in self.source.streams.items():
            iterator = iter(stream)
            head = next(iterator, None)
            if head is not None:
                self.source.streams[symbol] = _prepend(head, iterator)
                heads.append(head.open_time)
        return min(heads, default=None)

    def _set_time(self, now: int) -> None:
        self.clock.set(max(self.clock.now_ms(), now))

    async def _publish_user_events(self) -> int:
        """The exchange's user-data events onto the bus, as a user-data stream delivers them."""
        self._user_events.extend(self.gateway.take_user_events())
        events, self._user_events[:] = list(self._user_events), []
        for event in events:
            if isinstance(event, OrderUpdate):
                channel = "order.update"
            elif isinstance(event, AlgoUpdate):
                channel = "algo.update"
            elif isinstance(event, AccountUpdate):
                channel = "account.update"
            else:
                continue
            await self.bus.publish(channel, event)
        return len(events)

    async def _quiesce(self) -> None:
        """Wait until every consumer is idle and the exchange has no unpublished events."""
        while True:
            await self.bus.drain()
            if await self._publish_user_events() == 0 and all(
                    stats["depth"] == 0 for stats in self.bus.stats().values()):
                await self.bus.drain()
                if not self._user_events and self.gateway.pending_events == 0:
                    return

    # ------------------------------------------------------------------------------------------ consumers
    async def _on_market_for_strategies(self, event: Event) -> None:
        if event.channel == "market.kline":
            signals = self.runner.on_candle(event.payload)
        else:
            signals = self.runner.on_mark_price(event.payload)
        if self._warming:
            return  # warm-up: the candles build the strategies' state; what they would signal is not traded
        for signal in signals:
            await self.bus.publish(f"signal.{signal.strategy}", signal)

    async def _on_core_input(self, event: Event) -> None:
        """The execution core's single consumer: every input goes through here, one at a time."""
        payload = event.payload
        if event.channel == "market.kline":
            self.applier.feed(CandleInput(payload))
        elif event.channel == "market.mark":
            self.applier.feed(MarkPriceInput(payload))
        elif isinstance(payload, Signal):
            self.applier.feed(SignalInput(payload))
        else:
            self.applier.feed(UserEventInput(payload, self.clock.now_ms()))
        await self._publish_user_events()

    def _on_command(self, command: Command) -> None:
        """Publish what the core did, for any other consumer (notifications, audits)."""
        if isinstance(command, (SubmitOrder, SubmitAlgoOrder)):
            self.bus.publish_nowait("order.request", command.intent)

    async def _on_candle_for_recorder(self, event: Event) -> None:
        self._pending_candles.append(event.payload)
        if len(self._pending_candles) >= CANDLE_FLUSH_EVERY:
            self._flush_candles()

    def _record_candles(self, candles: list[Candle]) -> None:
        if self.source.synthetic:
            return  # made-up prices are not market data: never stored as candles, never a warm-up for real data
        try:
            self.repository.record_candles(candles)
            self._database_error = None
        except Exception as exc:
            self._database_error = f"{type(exc).__name__}: {exc}"
            raise

    def _flush_candles(self) -> None:
        if self._pending_candles:
            batch, self._pending_candles = self._pending_candles, []
            self._record_candles(batch)

    # ------------------------------------------------------------------------------------------ shutdown
    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._quiesce(), timeout=30)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._flush_candles()
        self.save_account()
        self._record_account_snapshot()
        self._process_state = "stopped"
        try:
            self.heartbeat.write()
        except OSError as error:  # STATUS_DIR went away or became read-only during the run: say so, keep the summary
            log.error("the final heartbeat could not be written", extra={"error": str(error)})
        log.info("sim run finished", extra={"minutes": self._minutes, "feed": self._feed_state})

    def _record_account_snapshot(self) -> None:
        """The account's balance, once per hour of market time and at the end (the account_snapshots table)."""
        now = self.clock.now_ms()
        self._last_snapshot_hour = now // HOUR_MS
        account = self.exchange.account()
        self.repository.record_account_snapshot(now, wallet_balance=account.wallet_balance,
                                                available_balance=account.available_balance,
                                                equity=account.equity, unrealized_pnl=account.unrealized_pnl)

    def close(self) -> None:
        self.repository.close()

    # ------------------------------------------------------------------------------------------ heartbeat
    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                self.heartbeat.write()
            except Exception:
                log.exception("heartbeat write failed")
            await asyncio.sleep(self.heartbeat.interval_sec)

    def _setup_heartbeat(self) -> None:
        hb = self.heartbeat
        hb.section("process", lambda: {"state": self._process_state})
        hb.section("mode", lambda: {"mode": "sim", "position_mode": self.position_mode.value,
                                    "data": self.source.description, "synthetic": self.source.synthetic})
        hb.section("feed", self._feed_status)
        hb.section("user_stream", lambda: {"state": "in-process (simulated exchange)",
                                           "pending_events": self.gateway.pending_events + len(self._user_events)})
        hb.section("database", self._database_status)
        hb.section("bus", self.bus.stats)
        add_core_sections(hb, self.core, self.risk, self.runner)

    def _feed_status(self) -> dict[str, Any]:
        age = None if self._last_message_wall is None else round(time.monotonic() - self._last_message_wall, 3)
        return {"state": self._feed_state, "source": "replay", "minutes": self._minutes,
                "candles": self.source.candles_emitted, "last_candle_open_time": self.source.last_open_time,
                "last_message_age_sec": age, "speed": self.source.speed or "max"}

    def _database_status(self) -> dict[str, Any]:
        url = self.repository.engine.url.render_as_string(hide_password=True)
        return {"url": url, "backend": self.repository.engine.dialect.name,
                "state": "error" if self._database_error else "ok", "error": self._database_error,
                "pending_candles": len(self._pending_candles)}

    # ------------------------------------------------------------------------------------------- summary
    def summary(self, stopped_early: bool) -> RunSummary:
        account = self.exchange.account()
        before = self._account_at_start
        closed = [t for t in self.repository.round_trips(status=TripStatus.CLOSED)
                  if t.close_time is not None and t.close_time > before.time]
        positions = [
            {"symbol": p.symbol, "side": p.position_side.value, "amount": str(p.amount),
             "entry_price": str(p.entry_price), "unrealized_pnl": f"{p.unrealized_pnl:.4f}"}
            for p in self.exchange.positions() if p.amount
        ]
        states = {scope: record.state.value for scope, record in sorted(self.risk.states().items())}
        return RunSummary(
            data=self.source.description, minutes=self._minutes, candles=self.source.candles_emitted,
            signals=self.core.stats.signals, orders_sent=self.core.stats.sent,
            fills=self.core.stats.fills, closed_trades=self.core.stats.closed_trades,
            realized_pnl=account.realized_pnl - before.realized_pnl, fees=account.fees_paid - before.fees_paid,
            funding=account.funding_total - before.funding_total,
            wallet_balance=account.wallet_balance, equity=account.equity, start_balance=self.start_balance,
            open_positions=positions, open_orders=len(self.exchange.open_orders()),
            trading_states=states or {GLOBAL_SCOPE: "ACTIVE"}, stopped_early=stopped_early,
            disabled_strategies=[f"{d.strategy} on {d.symbol}: {d.reason}" for d in self.runner.disabled],
            already_sent=self.core.stats.duplicates_skipped, per_strategy=strategy_results(closed),
        )


@dataclass(frozen=True, slots=True)
class _AccountTotals:
    time: int
    realized_pnl: Decimal
    fees_paid: Decimal
    funding_total: Decimal


def _prepend(head: Candle, rest):
    yield head
    yield from rest

