"""The backtest shell: recorded bars through the strategies, the execution core and the simulated exchange.

The same strategy classes, risk engine, ``ExecutionCore`` and ``SimExchange`` as sim and live mode, driven
synchronously by the simulated clock: no event loop, no bus, no database while it runs (the core's persist
commands collect in a ``MemoryJournal``; the reports are written once at the end).

Per minute, in the order sim mode uses (``runtime/trader.py``): the core's timers due before the minute's close
fire; the clock moves to the close; the exchange matches the minute's candles; its user-data events go to the
core; then each candle and its mark price go to the core; then the strategies' signals.

**Wake bars.** Every strategy sees every bar. The exchange and the core, though, only take the bars on which
something can happen to them (``every_bar=False``, the default): a bar with a signal; a bar whose low or high
reaches a resting order's price, a conditional order's trigger or a liquidation level (``SimExchange.reach_levels``);
the price at which a strategy's unrealized loss would reach its daily loss limit; the bars either side of a funding
time; the first bar of each UTC day; the bar at which an order's TTL, a consecutive-loss cool-down or one of the
core's timers falls due; a symbol's first bar. When one symbol wakes, every symbol holding a position or an order
wakes with it, so that nothing reads a stale price. On any other bar the exchange and the core would only store
the price, and the next wake bar stores a newer one. ``every_bar=True`` feeds them every bar: the reference the
differential test (``tests/backtest/test_wake_bars.py``) compares the wake-bar run with, to the last decimal.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from backtest.data import BarSeries, DataError, FundingRates
from config.symbols import SymbolsConfig
from executor.commands import CandleInput, MarkPriceInput, SignalInput
from executor.core import ExecutionCore, ExecutionPolicy
from executor.risk import MS_PER_DAY, Guard, RiskEngine, strategy_scope
from runtime.applier import MemoryJournal, SyncApplier
from runtime.setup import configure_exchange, execution_settings_for, risk_limits_for
from simulator.engine import SimConfig, SimExchange
from simulator.exchange_info import load_symbol_filters
from simulator.gateway import SimGateway
from strategies.base import Strategy
from strategies.registry import DEFAULT_PACKAGE, load_strategy
from strategies.runner import DisabledStrategy, check_signal
from utils.clock import SimulatedClock
from utils.domain import MarkPrice, OrderPurpose, PositionMode, Signal, TradingState

log = logging.getLogger("backtest.engine")

#: Thresholds are compared in floats: a bar wakes when it comes within this relative distance of one (so float
#: rounding can only wake a bar too many, never one too few).
MARGIN = 1e-9
HOUR_MS = 3_600_000
PROGRESS_EVERY = 1 << 14
_INF = math.inf


class BacktestCandle:
    """What a strategy sees of a bar in a backtest: a ``Candle``'s fields, the prices as floats.

    Strategies turn prices into floats for their indicators anyway; building a Decimal ``Candle`` for every bar
    would cost more than the strategy itself. The exchange and the core get exact Decimal candles.
    """

    __slots__ = ("symbol", "open_time", "close_time", "open", "high", "low", "close", "volume")
    interval = "1m"
    closed = True

    def __init__(self, symbol: str, open_time: int, close_time: int, open_: float, high: float, low: float,
                 close: float, volume: float) -> None:
        self.symbol = symbol
        self.open_time = open_time
        self.close_time = close_time
        self.open = open_
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume

    def __repr__(self) -> str:
        return (f"BacktestCandle({self.symbol!r}, {self.open_time}, close={self.close}, high={self.high}, "
                f"low={self.low})")


@dataclass
class _Slot:
    strategy: Strategy[Any]
    disabled: DisabledStrategy | None = None


@dataclass
class MinuteCosts:
    """Where the time of the exchange and the core goes: minutes with signals (the order path) and without, in
    CPU seconds of this process (on a shared machine, wall time would count other processes' turns too)."""

    signal_minutes: int = 0
    signal_seconds: float = 0.0
    quiet_minutes: int = 0
    quiet_seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        def per(seconds: float, count: int) -> float:
            return round(seconds / count * 1e6, 1) if count else 0.0

        return {"signal_minutes": self.signal_minutes, "signal_seconds": round(self.signal_seconds, 6),
                "us_per_signal_minute": per(self.signal_seconds, self.signal_minutes),
                "quiet_wake_minutes": self.quiet_minutes, "quiet_seconds": round(self.quiet_seconds, 6),
                "us_per_quiet_minute": per(self.quiet_seconds, self.quiet_minutes)}


@dataclass
class BacktestResult:
    """What a run did: the core's persist commands (every signal, order, fill, funding payment, round trip), the
    final account, and how long it took."""

    journal: MemoryJournal
    exchange: SimExchange
    core: ExecutionCore
    series: list[BarSeries]
    start_balance: Decimal
    bars: int
    wake_bars: int
    signals: int
    seconds: float  # first bar to last (strategies, exchange, core)
    load_seconds: float = 0.0  # reading the data files (the caller fills it in)
    disabled: list[DisabledStrategy] = field(default_factory=list)
    funding_missing: int = 0  # funding times the funding file had no rate for (the default rate was used)
    every_bar: bool = False
    config_strategies: list[tuple[str, str]] = field(default_factory=list)  # (strategy, symbol), as configured
    costs: MinuteCosts = field(default_factory=MinuteCosts)


class Backtest:
    """One backtest run over one or more symbols' bars (see the module docstring)."""

    def __init__(self, config: SymbolsConfig, series: Sequence[BarSeries], *,
                 funding: Mapping[str, FundingRates] | None = None, sim_config: SimConfig | None = None,
                 position_mode: PositionMode = PositionMode.ONEWAY, start_balance: Decimal = Decimal("10000"),
                 every_bar: bool = False, package: str = DEFAULT_PACKAGE,
                 progress: Callable[[int], None] | None = None, typed_events: bool = True) -> None:
        if not series:
            raise DataError("no data: give at least one kline file")
        by_symbol = {s.symbol: s for s in series}
        if len(by_symbol) != len(series):
            raise DataError("two data files for the same symbol: give one file per symbol")
        configured = {symbol.symbol: symbol for symbol in config.symbols}
        missing = [s for s in by_symbol if s not in configured]
        if missing:
            raise DataError(f"data for {', '.join(missing)}, which the configuration does not list (it has "
                            f"{', '.join(configured)}): add a [[symbols]] entry or drop the file")
        config = config.model_copy(update={"symbols": [configured[s] for s in by_symbol]})
        filters = load_symbol_filters()
        unknown = [s for s in by_symbol if s not in filters]
        if unknown:
            raise DataError(f"the simulator's exchangeInfo has no {', '.join(unknown)} (it has "
                            f"{', '.join(sorted(filters))})")
        self.config = config
        self.series = list(series)
        self.symbols = [s.symbol for s in self.series]
        self.funding = dict(funding or {})
        self.every_bar = every_bar
        self.progress = progress
        self.start_balance = start_balance
        self.clock = SimulatedClock(0)
        self.exchange = SimExchange({s: filters[s] for s in self.symbols}, clock=self.clock,
                                    config=sim_config or SimConfig(), initial_balance=start_balance)
        if typed_events:  # the exchange's user-data events as parsed types, not wire dicts parsed again
            self.exchange.deliver_typed_events()
        self.gateway = SimGateway(self.exchange)
        defaults, overrides = risk_limits_for(config)
        self.risk = RiskEngine(defaults, overrides)
        self.position_mode = position_mode
        self.core = ExecutionCore(
            risk=self.risk, filters={s: filters[s] for s in self.symbols},
            settings=execution_settings_for(config),
            position_mode=position_mode, policy=ExecutionPolicy(reconcile_every_ms=None),
            leverage={symbol.symbol: symbol.leverage for symbol in config.symbols})
        self.journal = MemoryJournal()
        self.applier = SyncApplier(self.core, self.gateway, self.journal, now=self.clock.now_ms,
                                   user_events=self.gateway.take_user_events, fresh_account=True,
                                   on_notice=lambda notice: None)
        self.slots: list[list[_Slot]] = []
        for symbol in config.symbols:
            self.slots.append([_Slot(load_strategy(s.name, symbol.symbol, s.params, package=package))
                               for s in symbol.strategies])
        self.warmup = [max(slot.strategy.warmup_candles for slot in slots) for slots in self.slots]
        self._funding_applied: dict[str, int] = {}
        self.funding_missing = 0
        n = len(self.symbols)
        self._falling = [-_INF] * n  # a bar wakes its symbol when its low <= this ...
        self._rising = [_INF] * n  # ... or its high >= this
        self._always = [False] * n
        self._busy = [False] * n  # holds a position or an order: wakes whenever any symbol wakes
        self._exposed = [False] * n  # holds a position: wakes either side of each funding time
        self._timed = _INF  # every symbol wakes on its first bar closing at or after this
        self.wake_bars = 0
        self.signals = 0
        self.costs = MinuteCosts()

    # ================================================================================================ run
    def run(self) -> BacktestResult:
        started = time.perf_counter()
        first = min(int(s.open_time[0]) for s in self.series if len(s))
        self.clock.set(first - 1)
        configure_exchange(self.exchange, self.config.symbols, self.position_mode)
        self.applier.start()
        self.gateway.take_user_events()
        calendar = [self._static_wakes(s) for s in self.series]
        if len(self.series) == 1:
            bars = self._run_one(*calendar[0])
        else:
            bars = self._run_many(calendar)
        seconds = time.perf_counter() - started
        disabled = [slot.disabled for slots in self.slots for slot in slots if slot.disabled is not None]
        return BacktestResult(self.journal, self.exchange, self.core, self.series, self.start_balance, bars,
                              self.wake_bars, self.signals, seconds, disabled=disabled,
                              funding_missing=self.funding_missing, every_bar=self.every_bar,
                              config_strategies=[(s.name, symbol.symbol) for symbol in self.config.symbols
                                                 for s in symbol.strategies], costs=self.costs)

    def _static_wakes(self, series: BarSeries) -> tuple[bytearray, bytearray]:
        """Bars that wake by the calendar: (always: the first bar, each UTC day's first bar, and, when a funding
        blackout is configured, the bars either side of each funding time; while holding a position: the bars
        either side of each funding time)."""
        n = len(series)
        always, funding = bytearray(n), bytearray(n)
        if n == 0:
            return always, funding
        always[0] = 1
        start, end = int(series.open_time[0]), int(series.close_time[-1])
        interval = self.exchange.config.funding_interval_hours.get(
            series.symbol, self.exchange.config.default_funding_interval_hours) * HOUR_MS
        funding_times = np.arange((start // interval + 1) * interval, end + interval, interval, dtype=np.int64)
        day_starts = np.arange((start // MS_PER_DAY + 1) * MS_PER_DAY, end + 1, MS_PER_DAY, dtype=np.int64)
        for index in np.searchsorted(series.open_time, day_starts, "left").tolist():
            if index < n:
                always[index] = 1
        # The exchange settles funding on the first bar at or after the funding time, at the mark (the close) of
        # the bar before; the core's funding blackout watches the next funding time change on the same bar.
        after = np.searchsorted(series.open_time, funding_times, "left")
        blackout = any(self.risk.limits_for(slot.strategy.name).funding_blackout_minutes
                       for slots in self.slots for slot in slots)
        flags = always if blackout else funding
        for index in np.concatenate([after, after - 1]).tolist():
            if 0 <= index < n:
                flags[index] = 1
        return always, funding

    # ------------------------------------------------------------------------------------- the bar loops
    def _strategies(self, slots: list[_Slot], candle: BacktestCandle) -> list[Signal] | None:
        signals = None
        for slot in slots:
            if slot.disabled is not None:
                continue
            try:
                signal = slot.strategy.on_candle(candle)  # type: ignore[arg-type]  # a Candle in all but Decimal
                if signal is None:
                    continue
                check_signal(slot.strategy, signal)
            except Exception as error:
                self._disable(slot, error, candle.close_time)
                continue
            if signals is None:
                signals = [signal]
            else:
                signals.append(signal)
        return signals

    def _disable(self, slot: _Slot, error: Exception, time: int) -> None:
        strategy = slot.strategy
        slot.disabled = DisabledStrategy(strategy.name, strategy.symbol, f"{type(error).__name__}: {error}", time)
        log.error("strategy %s raised and is disabled for %s: %s", strategy.name, strategy.symbol, slot.disabled.reason)

    def _run_one(self, forced: bytearray, funding: bytearray) -> int:
        """One symbol: every bar is its own minute."""
        series = self.series[0]
        symbol, slots, warmup = series.symbol, self.slots[0], self.warmup[0]
        every_bar = self.every_bar
        n = len(series)
        only = slots[0] if len(slots) == 1 else None  # the common case, without the loop over slots
        falling, rising, timed, always = self._falling[0], self._rising[0], self._timed, self._always[0]
        exposed = self._exposed[0]
        for chunk in range(0, n, PROGRESS_EVERY):
            stop = min(n, chunk + PROGRESS_EVERY)
            ot = series.open_time[chunk:stop].tolist()
            ct = series.close_time[chunk:stop].tolist()
            op = series.open[chunk:stop].tolist()
            hi = series.high[chunk:stop].tolist()
            lo = series.low[chunk:stop].tolist()
            cl = series.close[chunk:stop].tolist()
            vo = series.volume[chunk:stop].tolist()
            for k in range(stop - chunk):
                candle = BacktestCandle(symbol, ot[k], ct[k], op[k], hi[k], lo[k], cl[k], vo[k])
                signals: list[Signal] | None = None
                if only is None:
                    signals = self._strategies(slots, candle)
                elif only.disabled is None:
                    try:
                        signal = only.strategy.on_candle(candle)  # type: ignore[arg-type]
                        if signal is not None:
                            check_signal(only.strategy, signal)
                            signals = [signal]
                    except Exception as error:
                        self._disable(only, error, ct[k])
                i = chunk + k
                if signals is not None and i < warmup:
                    signals = None  # warm-up: the strategies build their state; what they signal is not traded
                if (signals is not None or lo[k] <= falling or hi[k] >= rising or forced[i] or ct[k] >= timed
                        or (exposed and funding[i]) or always or every_bar):
                    self._minute([(0, i)], signals or [])
                    falling, rising, timed, always = self._falling[0], self._rising[0], self._timed, self._always[0]
                    exposed = self._exposed[0]
            if self.progress is not None:
                self.progress(stop - chunk)
        return n

    def _run_many(self, calendar: list[tuple[bytearray, bytearray]]) -> int:
        """Several symbols, merged by open time (a minute's bars are taken together, in the order of the files)."""
        times = np.concatenate([s.open_time for s in self.series])
        which = np.concatenate([np.full(len(s), k, dtype=np.int64) for k, s in enumerate(self.series)])
        index = np.concatenate([np.arange(len(s), dtype=np.int64) for s in self.series])
        order = np.lexsort((which, times))
        times, which, index = times[order].tolist(), which[order].tolist(), index[order].tolist()
        columns = [(s.symbol, s.close_time.tolist(), s.open.tolist(), s.high.tolist(), s.low.tolist(),
                    s.close.tolist(), s.volume.tolist()) for s in self.series]
        total = len(times)
        every_bar = self.every_bar
        minute = None
        bars: list[tuple[int, int]] = []  # this minute's bars
        waking: list[int] = []  # of those, the ones that wake
        signals: list[Signal] = []
        for position in range(total):
            t, k, i = times[position], which[position], index[position]
            if t != minute:
                if waking:
                    self._wake_minute(bars, waking, signals)
                    waking, signals = [], []
                bars = []
                minute = t
            symbol, ct, op, hi, lo, cl, vo = columns[k]
            candle = BacktestCandle(symbol, t, ct[i], op[i], hi[i], lo[i], cl[i], vo[i])
            found = self._strategies(self.slots[k], candle)
            if found is not None and i < self.warmup[k]:
                found = None
            bars.append((k, i))
            if found is not None:
                signals.extend(found)
            forced, funding = calendar[k]
            if (every_bar or found is not None or lo[i] <= self._falling[k] or hi[i] >= self._rising[k]
                    or forced[i] or ct[i] >= self._timed or self._always[k] or (self._exposed[k] and funding[i])):
                waking.append(len(bars) - 1)
            if self.progress is not None and position % PROGRESS_EVERY == PROGRESS_EVERY - 1:
                self.progress(PROGRESS_EVERY)
        if waking:
            self._wake_minute(bars, waking, signals)
        if self.progress is not None:
            self.progress(total % PROGRESS_EVERY)
        return total

    def _wake_minute(self, bars: list[tuple[int, int]], waking: list[int], signals: list[Signal]) -> None:
        """A minute in which some symbols wake: they, and every symbol holding a position or an order, go in."""
        chosen = set(waking)
        for position, (k, _) in enumerate(bars):
            if self._busy[k]:
                chosen.add(position)
        self._minute([bars[position] for position in sorted(chosen)], signals)

    # ------------------------------------------------------------------------------------------ a minute
    def _minute(self, bars: list[tuple[int, int]], signals: list[Signal]) -> None:
        """One minute through the exchange and the core, in sim mode's order (timed: see ``MinuteCosts``)."""
        started = time.process_time()
        self._through(bars, signals)
        cost = self.costs
        if signals:
            cost.signal_minutes += 1
            cost.signal_seconds += time.process_time() - started
        else:
            cost.quiet_minutes += 1
            cost.quiet_seconds += time.process_time() - started

    def _through(self, bars: list[tuple[int, int]], signals: list[Signal]) -> None:
        self.wake_bars += len(bars)
        candles = [self.series[k].candle(i) for k, i in bars]
        close = max(candle.close_time for candle in candles)
        self.applier.tick_until(close - 1, set_time=self._set_time)
        self._set_time(close)
        exchange = self.exchange
        for candle in candles:
            exchange.on_candle(candle)
            self._apply_funding_rate(candle.symbol)
        self.applier.deliver_user_events()
        now = self.clock.now_ms()
        for candle in candles:
            symbol = candle.symbol
            mark = exchange.mark_price(symbol)
            self.applier.feed(CandleInput(candle))
            self.applier.feed(MarkPriceInput(MarkPrice(symbol, now, mark, mark, exchange.funding_rate(symbol),
                                                       exchange.next_funding_time(symbol))))
        for signal in signals:
            self.signals += 1
            self.applier.feed(SignalInput(signal))
        self._update_levels()

    def _set_time(self, now: int) -> None:
        self.clock.set(max(self.clock.now_ms(), now))

    def _apply_funding_rate(self, symbol: str) -> None:
        """The funding file's rate for the exchange's next funding time of ``symbol`` (once per funding time)."""
        rates = self.funding.get(symbol)
        if rates is None:
            return
        due = self.exchange.next_funding_time(symbol)
        if self._funding_applied.get(symbol) == due:
            return
        self._funding_applied[symbol] = due
        rate = rates.rate_at(due)
        if rate is None:
            self.funding_missing += 1
            rate = self.exchange.config.default_funding_rate
        self.exchange.set_funding_rate(symbol, rate)

    # ----------------------------------------------------------------------------------- the wake levels
    def _update_levels(self) -> None:
        """After a minute went in: the prices and times at which the next bars must wake."""
        if self.every_bar:
            return
        exchange, core = self.exchange, self.core
        positions = {key[0] for key, holding in core.holdings.items() if holding.amount}
        for k, symbol in enumerate(self.symbols):
            falling, rising, always = exchange.reach_levels(symbol)
            self._falling[k] = -_INF if falling is None else float(falling) * (1 + MARGIN)
            self._rising[k] = _INF if rising is None else float(rising) * (1 - MARGIN)
            self._always[k] = always
            self._exposed[k] = symbol in positions
            self._busy[k] = falling is not None or rising is not None or always or symbol in positions
        self._loss_limit_levels()
        due = _INF
        wakeup = core.next_wakeup()
        if wakeup is not None:
            due = wakeup + 1  # tick_until(close - 1) fires it: the first bar with close - 1 >= due
        ttl = self.risk.limits_for(None).order_ttl_sec
        if ttl is not None:
            for tracked in core.open_orders():
                if (not tracked.is_algo and tracked.intent.purpose is OrderPurpose.ENTRY
                        and not tracked.cancel_requested and tracked.status is not None):
                    due = min(due, tracked.create_time + ttl * 1000)
        for scope, record in self.risk.states().items():
            if record.state is TradingState.HALTED and record.guard is Guard.CONSECUTIVE_LOSSES:
                cooldown = self.risk.limits_for(scope.removeprefix("strategy:")).consecutive_losses_cooldown_minutes
                if cooldown:
                    due = min(due, record.since_ms + cooldown * 60_000)
        self._timed = due

    def _loss_limit_levels(self) -> None:
        """Each strategy under a daily loss limit: the price at which its unrealized loss would reach the limit.

        The limit counts the realized PnL of the day plus the unrealized PnL of every position the strategy holds,
        at mark. With one position that is one price of one symbol. With several, the core checks the sum after
        each symbol's mark (and after each closing fill) while the others' marks are a minute old, so the sum
        depends on every bar of every symbol: those symbols then wake on every bar.
        """
        core = self.core
        held: dict[str, list[tuple[str, Decimal]]] = {}
        for (symbol, _side), holding in core.holdings.items():
            if holding.amount and holding.owner:
                held.setdefault(holding.owner, []).append((symbol, holding.amount))
        for strategy, positions in held.items():
            limit = self.risk.limits_for(strategy).daily_loss_limit_usdt
            record = self.risk.state(strategy_scope(strategy))
            if limit is None or record.state is not TradingState.ACTIVE:
                continue
            symbol, amount = positions[0]
            k = self.symbols.index(symbol)
            mark = core.mark_price.get(symbol) or core.last_price.get(symbol)
            slack = limit + record.realized_pnl_today + core.unrealized_pnl(strategy)
            if len(positions) > 1 or mark is None or slack <= 0:
                for symbol, _ in positions:
                    self._always[self.symbols.index(symbol)] = True
                continue
            level = float(mark - slack / amount)  # where amount x (price - mark) uses up the slack
            if amount > 0:
                self._falling[k] = max(self._falling[k], level * (1 + MARGIN))
            else:
                self._rising[k] = min(self._rising[k], level * (1 - MARGIN))
