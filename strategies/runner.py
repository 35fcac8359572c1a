"""Runs strategy instances per (strategy, symbol) in isolation: one that raises is disabled, the others keep going.

The runner feeds each closed candle to the strategies of its symbol, in order (an in-progress candle, a repeat or an
older candle is dropped, so a reconnect that replays the last kline cannot count it twice), and collects their
signals. A strategy that raises, or returns something that is not a valid signal of its own, is logged (logger
``strategies.runner``, with ``strategy`` and ``symbol`` fields and the traceback) and disabled for that symbol only;
``disabled`` says which and why, for the heartbeat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from strategies.base import Strategy
from utils.domain import Candle, MarkPrice, Signal, SignalSide

logger = logging.getLogger("strategies.runner")


@dataclass(frozen=True, slots=True)
class DisabledStrategy:
    """A strategy switched off for one symbol: ``reason`` is the exception, ``time`` the data time it failed at."""

    strategy: str
    symbol: str
    reason: str
    time: int


@dataclass(slots=True)
class _Slot:
    strategy: Strategy[Any]
    last_open_time: int | None = None
    disabled: DisabledStrategy | None = None


class StrategyRunner:
    """Holds one strategy instance per (strategy name, symbol) and feeds them market data."""

    def __init__(self, strategies: Iterable[Strategy[Any]] = ()) -> None:
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._slots_by_symbol: dict[str, list[_Slot]] = {}
        for strategy in strategies:
            self.add(strategy)

    def add(self, strategy: Strategy[Any]) -> None:
        """Run ``strategy`` too; each (strategy name, symbol) pair can be added once."""
        key = (strategy.name, strategy.symbol)
        if key in self._slots:
            raise ValueError(f"strategy {strategy.name!r} already runs for {strategy.symbol}")
        slot = _Slot(strategy)
        self._slots[key] = slot
        self._slots_by_symbol.setdefault(strategy.symbol, []).append(slot)

    @property
    def strategies(self) -> tuple[Strategy[Any], ...]:
        """Every strategy instance, enabled or not, in the order added."""
        return tuple(slot.strategy for slot in self._slots.values())

    @property
    def disabled(self) -> tuple[DisabledStrategy, ...]:
        """The strategies switched off after a failure, and why."""
        return tuple(slot.disabled for slot in self._slots.values() if slot.disabled is not None)

    def status(self) -> dict[str, list[dict[str, str | int]]]:
        """For the heartbeat: which strategies run on which symbol, and which were disabled, when and why."""
        return {
            "running": [{"strategy": slot.strategy.name, "symbol": slot.strategy.symbol}
                        for slot in self._slots.values() if slot.disabled is None],
            "disabled": [{"strategy": slot.disabled.strategy, "symbol": slot.disabled.symbol,
                          "reason": slot.disabled.reason, "since_time": slot.disabled.time}
                         for slot in self._slots.values() if slot.disabled is not None],
        }

    def is_enabled(self, strategy_name: str, symbol: str) -> bool:
        slot = self._slots.get((strategy_name, symbol))
        return slot is not None and slot.disabled is None

    def warmup_candles(self, symbol: str) -> int:
        """How many history candles ``symbol`` needs: the largest need among its enabled strategies."""
        slots = self._slots_by_symbol.get(symbol, ())
        return max((slot.strategy.warmup_candles for slot in slots if slot.disabled is None), default=0)

    def warm_up(self, strategy: Strategy[Any], candles: Iterable[Candle]) -> int:
        """Feed history candles to one added strategy, discarding its signals; return how many it took."""
        slot = self._slots.get((strategy.name, strategy.symbol))
        if slot is None or slot.strategy is not strategy:
            raise ValueError(f"add {strategy!r} to the runner before warming it up")
        fed = 0
        for candle in candles:
            if candle.symbol != strategy.symbol:
                raise ValueError(f"warm-up candle for {candle.symbol} given to {strategy.name} on {strategy.symbol}")
            if slot.disabled is not None:
                break
            if self._accepts(slot, candle):
                self._call(slot, strategy.on_candle, candle, candle.close_time)
                fed += 1
        return fed

    def on_candle(self, candle: Candle) -> list[Signal]:
        """Feed a closed candle to every enabled strategy of its symbol; return their signals in the order added."""
        if not candle.closed:
            return []
        signals = []
        for slot in self._slots_by_symbol.get(candle.symbol, ()):
            if slot.disabled is None and self._accepts(slot, candle):
                signal = self._call(slot, slot.strategy.on_candle, candle, candle.close_time)
                if signal is not None:
                    signals.append(signal)
        return signals

    def on_mark_price(self, mark: MarkPrice) -> list[Signal]:
        """Feed a mark-price update to every enabled strategy of its symbol; return their signals."""
        signals = []
        for slot in self._slots_by_symbol.get(mark.symbol, ()):
            if slot.disabled is None:
                signal = self._call(slot, slot.strategy.on_mark_price, mark, mark.event_time)
                if signal is not None:
                    signals.append(signal)
        return signals

    @staticmethod
    def _accepts(slot: _Slot, candle: Candle) -> bool:
        if slot.last_open_time is not None and candle.open_time <= slot.last_open_time:
            logger.warning(
                "dropped a candle that is not newer than the last one fed",
                extra={
                    "strategy": slot.strategy.name,
                    "symbol": candle.symbol,
                    "open_time": candle.open_time,
                    "last_open_time": slot.last_open_time,
                },
            )
            return False
        slot.last_open_time = candle.open_time
        return True

    @staticmethod
    def _call[Data](slot: _Slot, method: Callable[[Data], Signal | None], data: Data, time: int) -> Signal | None:
        strategy = slot.strategy
        try:
            signal = method(data)
            if signal is not None:
                check_signal(strategy, signal)
            return signal
        except Exception as error:
            slot.disabled = DisabledStrategy(strategy.name, strategy.symbol, f"{type(error).__name__}: {error}", time)
            logger.exception(
                "strategy %s raised and is disabled for %s; the other strategies keep running",
                strategy.name,
                strategy.symbol,
                extra={"strategy": strategy.name, "symbol": strategy.symbol, "data_time": time},
            )
            return None


def check_signal(strategy: Strategy[Any], signal: object) -> None:
    """Raise unless ``signal`` is a well-formed signal of this strategy for its symbol."""
    if not isinstance(signal, Signal):
        raise TypeError(f"{strategy.name} returned {type(signal).__name__}, not a Signal or None")
    if signal.strategy != strategy.name or signal.symbol != strategy.symbol:
        raise ValueError(f"signal for {signal.strategy}/{signal.symbol} came from {strategy.name}/{strategy.symbol}")
    if not isinstance(signal.side, SignalSide):
        raise TypeError(f"signal side {signal.side!r} is not a SignalSide")
    if not isinstance(signal.strength, Decimal) or not Decimal(0) <= signal.strength <= Decimal(1):
        raise ValueError(f"signal strength {signal.strength!r} is not a Decimal in [0, 1]")
