"""Second, deliberately different indicator implementations for the tests: full-window formulas, not recursions.

The strategies update their indicators one value at a time; here every value is computed from the whole input
window at once (an EMA as an explicit weighted sum of the inputs, RSI as gain share of total movement, rolling
extremes as ``max`` over a slice of Decimals), so an error in either implementation shows up as a mismatch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise

# Input weights below this are dropped from the weighted sums: far below the 1e-9 relative tolerance of the tests.
NEGLIGIBLE_WEIGHT = 1e-17


def exponential_average_series(values: Sequence[float], period: int, smoothing: float) -> list[float | None]:
    """Each EMA value as ``(1 - a)^m * seed + sum over the m later inputs of a * (1 - a)^age * input``.

    ``seed`` is the plain mean of the first ``period`` inputs and ``m`` the number of inputs after them.
    """
    decay = 1.0 - smoothing
    horizon = math.ceil(math.log(NEGLIGIBLE_WEIGHT) / math.log(decay)) if decay > 0 else 1
    weights_by_age = [smoothing * decay**age for age in range(horizon)]
    seed = math.fsum(values[:period]) / period
    series: list[float | None] = [None] * (period - 1)
    for index in range(period - 1, len(values)):
        later_inputs = index - (period - 1)
        first = max(period, index + 1 - horizon)
        newest_first = values[first : index + 1][::-1]
        weighted = math.sumprod(weights_by_age[: len(newest_first)], newest_first)
        seed_weight = decay**later_inputs if later_inputs < horizon else 0.0
        series.append(seed_weight * seed + weighted)
    return series


def ema_series(values: Sequence[float], period: int) -> list[float | None]:
    return exponential_average_series(values, period, 2.0 / (period + 1))


def rsi_series(closes: Sequence[float], period: int) -> list[float | None]:
    """Wilder's RSI as 100 x average gain / (average gain + average loss), both Wilder-smoothed (a = 1 / period)."""
    changes = [current - previous for previous, current in pairwise(closes)]
    gains = exponential_average_series([max(change, 0.0) for change in changes], period, 1.0 / period)
    losses = exponential_average_series([max(-change, 0.0) for change in changes], period, 1.0 / period)
    series: list[float | None] = [None]  # the first close has no change
    for gain, loss in zip(gains, losses, strict=False):
        if gain is None or loss is None:
            series.append(None)
        elif gain + loss == 0:
            series.append(50.0)
        else:
            series.append(100.0 * gain / (gain + loss))
    return series


def previous_highest(values: Sequence[Decimal], window: int) -> list[Decimal | None]:
    """At each index, the largest of the ``window`` values strictly before it (None while fewer exist)."""
    return [max(values[index - window : index]) if index >= window else None for index in range(len(values))]


def previous_lowest(values: Sequence[Decimal], window: int) -> list[Decimal | None]:
    """At each index, the smallest of the ``window`` values strictly before it (None while fewer exist)."""
    return [min(values[index - window : index]) if index >= window else None for index in range(len(values))]


def relative_difference(first: float, second: float) -> float:
    return abs(first - second) / max(abs(first), abs(second), 1e-300)
