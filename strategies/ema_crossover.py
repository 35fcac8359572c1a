"""EMA crossover: LONG when the fast EMA of closes crosses above the slow one, SHORT (long_only: FLAT) below."""

from pydantic import Field, model_validator

from strategies.base import Strategy, StrategyParams
from strategies.indicators import Crossover, ExponentialMovingAverage
from utils.domain import Candle, Signal, SignalSide


class EmaCrossover(Strategy["EmaCrossover.Params"]):
    name = "ema_crossover"

    class Params(StrategyParams):
        fast: int = Field(12, ge=1)
        slow: int = Field(26, ge=2)
        long_only: bool = False  # never short: FLAT instead

        @model_validator(mode="after")
        def _fast_below_slow(self) -> "EmaCrossover.Params":
            if self.fast >= self.slow:
                raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")
            return self

    def __init__(self, symbol: str, params: Params | None = None) -> None:
        super().__init__(symbol, params)
        self.fast, self.slow = ExponentialMovingAverage(self.params.fast), ExponentialMovingAverage(self.params.slow)
        self.crossover, self.long = Crossover(), False  # long: long_only's last signal was LONG

    @property
    def warmup_candles(self) -> int:
        return 4 * self.params.slow  # after the SMA seed, 3 x slow candles leave it < 0.3% of the slow EMA

    def on_candle(self, candle: Candle) -> Signal | None:
        fast, slow = self.fast.update(float(candle.close)), self.slow.update(float(candle.close))
        if fast is None or slow is None:
            return None
        crossed = (fast != slow and (fast > slow) != self.long) if self.params.long_only else (  # flat & above,
            self.crossover.update(fast - slow))  # or long & below; else a cross of the sign of fast - slow
        if not crossed:
            return None
        self.long, direction = fast > slow, "above" if fast > slow else "below"
        side = SignalSide.LONG if self.long else SignalSide.FLAT if self.params.long_only else SignalSide.SHORT
        reason = f"ema{self.params.fast}={fast:.8g} crossed {direction} ema{self.params.slow}={slow:.8g}"
        return self.signal(candle, side, reason)
