"""Incremental indicators a strategy updates one value at a time, in bounded memory (floats, by design, only here).

Each has ``update(value) -> current value or None`` (None until it has seen enough values) and ``value``.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable


class ExponentialMovingAverage:
    """EMA with smoothing ``2 / (period + 1)`` (or the one given), seeded with the simple average of the first values.

    The first value is the average of the first ``period`` inputs; then ``value += smoothing * (input - value)``.
    """

    __slots__ = ("period", "smoothing", "value", "_seed_total", "_seed_count")

    def __init__(self, period: int, smoothing: float | None = None) -> None:
        if period < 1:
            raise ValueError(f"EMA period must be at least 1, got {period}")
        self.period = period
        self.smoothing = 2.0 / (period + 1) if smoothing is None else smoothing
        self.value: float | None = None
        self._seed_total = 0.0
        self._seed_count = 0

    def update(self, value: float) -> float | None:
        if self.value is not None:
            self.value += self.smoothing * (value - self.value)
            return self.value
        self._seed_total += value
        self._seed_count += 1
        if self._seed_count == self.period:
            self.value = self._seed_total / self.period
        return self.value


class RelativeStrengthIndex:
    """Wilder's RSI, 0 to 100: average gain and loss smoothed by ``1 / period``, seeded with simple averages.

    Ready after ``period + 1`` inputs (``period`` changes). With no loss it is 100, with no change at all 50.
    """

    __slots__ = ("period", "value", "_previous", "_average_gain", "_average_loss")

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError(f"RSI period must be at least 1, got {period}")
        self.period = period
        self.value: float | None = None
        self._previous: float | None = None
        self._average_gain = ExponentialMovingAverage(period, smoothing=1.0 / period)
        self._average_loss = ExponentialMovingAverage(period, smoothing=1.0 / period)

    def update(self, value: float) -> float | None:
        previous, self._previous = self._previous, value
        if previous is None:
            return None
        change = value - previous
        average_gain = self._average_gain.update(change if change > 0 else 0.0)
        average_loss = self._average_loss.update(-change if change < 0 else 0.0)
        if average_gain is None or average_loss is None:
            return None
        if average_loss == 0:
            self.value = 100.0 if average_gain > 0 else 50.0
        else:
            self.value = 100.0 - 100.0 / (1.0 + average_gain / average_loss)
        return self.value


class _RollingExtreme:
    """The extreme of the last ``window`` values, from a deque of candidates that can still become the extreme."""

    __slots__ = ("window", "_count", "_candidates")
    _replaces: Callable[[float, float], bool]

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError(f"rolling window must be at least 1, got {window}")
        self.window = window
        self._count = 0
        self._candidates: deque[tuple[int, float]] = deque()  # (input number, value), extreme first

    @property
    def value(self) -> float | None:
        """The extreme of the last ``window`` inputs, or None until ``window`` inputs were seen."""
        return self._candidates[0][1] if self._count >= self.window else None

    def update(self, value: float) -> float | None:
        while self._candidates and self._replaces(value, self._candidates[-1][1]):
            self._candidates.pop()
        self._candidates.append((self._count, value))
        self._count += 1
        if self._candidates[0][0] <= self._count - 1 - self.window:
            self._candidates.popleft()
        return self.value


class RollingMaximum(_RollingExtreme):
    """Highest of the last ``window`` values (amortised O(1) per update, at most ``window`` values kept)."""

    __slots__ = ()
    _replaces = staticmethod(operator.ge)


class RollingMinimum(_RollingExtreme):
    """Lowest of the last ``window`` values (amortised O(1) per update, at most ``window`` values kept)."""

    __slots__ = ()
    _replaces = staticmethod(operator.le)


class Crossover:
    """Watches the sign of ``a - b``: ``update`` gives +1 when it turns positive, -1 when negative, else 0.

    A zero difference keeps the last sign (touching is not crossing); the first sign seen is not a cross.
    """

    __slots__ = ("above",)

    def __init__(self) -> None:
        self.above: bool | None = None  # is a above b? None until a non-zero difference was seen

    def update(self, difference: float) -> int:
        if difference == 0:
            return 0
        previous, self.above = self.above, difference > 0
        if previous is None or previous == self.above:
            return 0
        return 1 if self.above else -1
