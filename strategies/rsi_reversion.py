"""RSI mean reversion: LONG as RSI leaves oversold upwards, SHORT as it leaves overbought downwards, FLAT at the mean.

Rules, checked on every closed candle once RSI has a previous value (entries before the exit):

* LONG when RSI crosses up through ``oversold`` (previous < oversold <= current);
* SHORT when RSI crosses down through ``overbought`` (previous > overbought >= current);
* FLAT when RSI has reverted to ``exit_level``: at or above it after a LONG, at or below it after a SHORT
  (``exit_level = 0`` turns the exit off: the position is then left to stops, take-profits and the next entry).

A signal is emitted only when it changes what the strategy last signalled. Entry strength is how deep the excursion
went: ``(oversold - lowest RSI below oversold) / oversold`` for LONG, ``(highest RSI above overbought - overbought) /
(100 - overbought)`` for SHORT; FLAT has strength 1.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from strategies.base import FULL_STRENGTH, Strategy, StrategyParams, to_strength
from strategies.indicators import RelativeStrengthIndex
from utils.domain import Candle, Signal, SignalSide


class RsiReversion(Strategy["RsiReversion.Params"]):
    name = "rsi_reversion"

    class Params(StrategyParams):
        period: int = Field(14, ge=2)
        oversold: float = Field(30, gt=0, lt=100)
        overbought: float = Field(70, gt=0, lt=100)
        exit_level: float = Field(50, ge=0, lt=100)  # 0: no exit signal

        @model_validator(mode="after")
        def _levels_in_order(self) -> Self:
            if self.oversold >= self.overbought:
                raise ValueError(f"oversold ({self.oversold:g}) must be below overbought ({self.overbought:g})")
            if self.exit_level and not self.oversold < self.exit_level < self.overbought:
                raise ValueError(
                    f"need oversold < exit_level < overbought, got {self.oversold:g}, {self.exit_level:g}, "
                    f"{self.overbought:g}"
                )
            return self

    def __init__(self, symbol: str, params: Params | None = None) -> None:
        super().__init__(symbol, params)
        self.rsi = RelativeStrengthIndex(self.params.period)
        self.previous_rsi: float | None = None
        self.lowest_oversold: float | None = None  # lowest RSI of the current stay below oversold
        self.highest_overbought: float | None = None  # highest RSI of the current stay above overbought
        self.position = SignalSide.FLAT  # what this strategy last signalled

    @property
    def warmup_candles(self) -> int:
        # RSI needs period + 1 closes; 6 x period more leave the seed averages < 0.3% of Wilder's averages.
        return 7 * self.params.period + 1

    def on_candle(self, candle: Candle) -> Signal | None:
        rsi = self.rsi.update(float(candle.close))
        if rsi is None:
            return None
        previous, self.previous_rsi = self.previous_rsi, rsi
        signal = None if previous is None else self._decide(candle, previous, rsi)
        if rsi < self.params.oversold:
            self.lowest_oversold = rsi if self.lowest_oversold is None else min(self.lowest_oversold, rsi)
        else:
            self.lowest_oversold = None
        if rsi > self.params.overbought:
            self.highest_overbought = rsi if self.highest_overbought is None else max(self.highest_overbought, rsi)
        else:
            self.highest_overbought = None
        if signal is not None:
            self.position = signal.side
        return signal

    def _decide(self, candle: Candle, previous: float, rsi: float) -> Signal | None:
        oversold, overbought, exit_level = self.params.oversold, self.params.overbought, self.params.exit_level
        label = f"rsi{self.params.period}={rsi:.2f}"
        if previous < oversold <= rsi:
            if self.position is SignalSide.LONG:
                return None
            lowest = previous if self.lowest_oversold is None else self.lowest_oversold
            reason = f"{label} crossed up through oversold {oversold:g} (low {lowest:.2f})"
            return self.signal(candle, SignalSide.LONG, reason, to_strength((oversold - lowest) / oversold))
        if previous > overbought >= rsi:
            if self.position is SignalSide.SHORT:
                return None
            highest = previous if self.highest_overbought is None else self.highest_overbought
            reason = f"{label} crossed down through overbought {overbought:g} (high {highest:.2f})"
            strength = to_strength((highest - overbought) / (100 - overbought))
            return self.signal(candle, SignalSide.SHORT, reason, strength)
        if not exit_level:
            return None
        if (self.position is SignalSide.LONG and rsi >= exit_level) or (
            self.position is SignalSide.SHORT and rsi <= exit_level
        ):
            reason = f"{label} reverted to exit level {exit_level:g} after {self.position.value}"
            return self.signal(candle, SignalSide.FLAT, reason, FULL_STRENGTH)
        return None
