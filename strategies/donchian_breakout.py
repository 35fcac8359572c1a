"""Donchian breakout: LONG when a close breaks the previous N-candle high, SHORT the low, FLAT on the exit channel.

Rules, checked on every closed candle once ``period`` candles came before it (entries before the exit):

* LONG when the close is above the highest high of the previous ``period`` candles;
* SHORT when the close is below the lowest low of the previous ``period`` candles;
* FLAT after a LONG when the close is below the lowest low of the previous ``exit_period`` candles, after a SHORT
  when it is above their highest high (``exit_period = 0`` turns the exit off).

A signal is emitted only when it changes what the strategy last signalled; a breakout is all-or-nothing, so the
strength is always 1.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from strategies.base import Strategy, StrategyParams
from strategies.indicators import RollingMaximum, RollingMinimum
from utils.domain import Candle, Signal, SignalSide


class DonchianBreakout(Strategy["DonchianBreakout.Params"]):
    name = "donchian_breakout"

    class Params(StrategyParams):
        period: int = Field(20, ge=1)
        exit_period: int = Field(10, ge=0)  # 0: no exit channel

        @model_validator(mode="after")
        def _exit_inside_entry(self) -> Self:
            if self.exit_period >= self.period:
                raise ValueError(f"exit_period ({self.exit_period}) must be less than period ({self.period})")
            return self

    def __init__(self, symbol: str, params: Params | None = None) -> None:
        super().__init__(symbol, params)
        period, exit_period = self.params.period, self.params.exit_period
        self.entry_high, self.entry_low = RollingMaximum(period), RollingMinimum(period)
        self.exit_high = RollingMaximum(exit_period) if exit_period else None
        self.exit_low = RollingMinimum(exit_period) if exit_period else None
        self.position = SignalSide.FLAT  # what this strategy last signalled

    @property
    def warmup_candles(self) -> int:
        return self.params.period

    def on_candle(self, candle: Candle) -> Signal | None:
        decision = self._decide(candle)  # against the channels of the candles before this one
        for channel, value in (
            (self.entry_high, candle.high),
            (self.entry_low, candle.low),
            (self.exit_high, candle.high),
            (self.exit_low, candle.low),
        ):
            if channel is not None:
                channel.update(float(value))
        if decision is None or decision[0] is self.position:
            return None
        self.position = decision[0]
        return self.signal(candle, *decision)

    def _decide(self, candle: Candle) -> tuple[SignalSide, str] | None:
        entry_high, entry_low = self.entry_high.value, self.entry_low.value
        if entry_high is None or entry_low is None:
            return None
        close, period, exit_period = float(candle.close), self.params.period, self.params.exit_period
        if close > entry_high:
            return SignalSide.LONG, f"close={candle.close} broke above the {period}-candle high {entry_high:.10g}"
        if close < entry_low:
            return SignalSide.SHORT, f"close={candle.close} broke below the {period}-candle low {entry_low:.10g}"
        exit_high = self.exit_high.value if self.exit_high is not None else None
        exit_low = self.exit_low.value if self.exit_low is not None else None
        if self.position is SignalSide.LONG and exit_low is not None and close < exit_low:
            return SignalSide.FLAT, f"close={candle.close} fell below the {exit_period}-candle low {exit_low:.10g}"
        if self.position is SignalSide.SHORT and exit_high is not None and close > exit_high:
            return SignalSide.FLAT, f"close={candle.close} rose above the {exit_period}-candle high {exit_high:.10g}"
        return None
