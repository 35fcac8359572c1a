"""The strategy API: a strategy turns closed candles, in order, into signals, keeping its own indicator state.

A strategy never places orders, never knows whether it runs live, in sim or in a backtest, and reads no clock:
a signal's time is the close time of the candle that caused it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from utils.domain import Candle, MarkPrice, Signal, SignalSide

FULL_STRENGTH = Decimal(1)
STRENGTH_STEP = Decimal("0.0001")


class StrategyParams(BaseModel):
    """Base of every strategy's ``Params``: typed fields with defaults, no unknown keys, frozen once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)


class Strategy[P: StrategyParams](ABC):
    """Subclass it with ``name``, a nested ``Params``, ``warmup_candles`` and ``on_candle``; one file per strategy.

    Name the params type when subclassing (``class EmaCrossover(Strategy["EmaCrossover.Params"])``) so that
    ``self.params.fast`` is typed.
    """

    name: ClassVar[str]
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    params: P

    def __init__(self, symbol: str, params: P | None = None) -> None:
        chosen: StrategyParams = self.Params() if params is None else params
        if not isinstance(chosen, self.Params):
            raise TypeError(f"{self.name} needs {self.Params.__qualname__} params, got {type(chosen).__qualname__}")
        self.symbol = symbol
        self.params = chosen  # type: ignore[assignment]  # Params is P for every concrete strategy

    @property
    @abstractmethod
    def warmup_candles(self) -> int:
        """How many closed candles to feed (see ``StrategyRunner.warm_up``) before live candles can signal."""

    @abstractmethod
    def on_candle(self, candle: Candle) -> Signal | None:
        """Take the next closed candle; return a signal only when the wanted position changes, else None."""

    def on_mark_price(self, mark: MarkPrice) -> Signal | None:
        """Take a mark-price update; most strategies ignore it."""
        return None

    def signal(self, candle: Candle, side: SignalSide, reason: str, strength: Decimal = FULL_STRENGTH) -> Signal:
        """A signal from this strategy, stamped with the candle's close time."""
        return Signal(self.name, self.symbol, side, strength, reason, candle.close_time, candle.open_time)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.symbol!r}, {self.params!r})"


def to_strength(value: float) -> Decimal:
    """A signal strength: ``value`` clamped to [0, 1], as a Decimal with four places."""
    return Decimal(min(max(value, 0.0), 1.0)).quantize(STRENGTH_STEP)
