"""The incremental indicators equal full-window computations on real BTCUSDT candles, to 1e-9 relative."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies.indicators import (
    Crossover,
    ExponentialMovingAverage,
    RelativeStrengthIndex,
    RollingMaximum,
    RollingMinimum,
)
from tests.strategies.independent import (
    ema_series,
    previous_highest,
    previous_lowest,
    relative_difference,
    rsi_series,
)
from utils.domain import Candle

TOLERANCE = 1e-9


def assert_series_match(incremental: list[float | None], expected: list[float | None]) -> None:
    assert len(incremental) == len(expected)
    assert [value is None for value in incremental] == [value is None for value in expected]
    worst = max(
        (relative_difference(got, want), index)
        for index, (got, want) in enumerate(zip(incremental, expected, strict=False))
        if got is not None and want is not None
    )
    assert worst[0] <= TOLERANCE, f"relative difference {worst[0]:.3g} at candle {worst[1]}"


@pytest.mark.parametrize("period", [1, 12, 26, 100])
def test_ema_matches_weighted_sum_formula(btc_candles: list[Candle], period: int) -> None:
    closes = [float(candle.close) for candle in btc_candles]
    average = ExponentialMovingAverage(period)
    incremental = [average.update(close) for close in closes]
    assert incremental[period - 1] == pytest.approx(sum(closes[:period]) / period, rel=1e-12)  # seeded with the SMA
    assert_series_match(incremental, ema_series(closes, period))


@pytest.mark.parametrize("period", [2, 7, 14, 30])
def test_rsi_matches_gain_share_formula(btc_candles: list[Candle], period: int) -> None:
    closes = [float(candle.close) for candle in btc_candles]
    index = RelativeStrengthIndex(period)
    incremental = [index.update(close) for close in closes]
    assert incremental[period - 1] is None and incremental[period] is not None  # period changes need period + 1
    assert all(0.0 <= value <= 100.0 for value in incremental if value is not None)
    assert_series_match(incremental, rsi_series(closes, period))


def test_rsi_edge_values() -> None:
    rising = RelativeStrengthIndex(3)
    assert [rising.update(value) for value in (1.0, 2.0, 3.0, 4.0)] == [None, None, None, 100.0]
    falling = RelativeStrengthIndex(3)
    assert [falling.update(value) for value in (4.0, 3.0, 2.0, 1.0)][-1] == 0.0
    unchanged = RelativeStrengthIndex(3)
    assert [unchanged.update(5.0) for _ in range(4)][-1] == 50.0


@pytest.mark.parametrize("window", [1, 10, 20, 55])
def test_rolling_extremes_match_slices(btc_candles: list[Candle], window: int) -> None:
    highs = [candle.high for candle in btc_candles]
    lows = [candle.low for candle in btc_candles]
    maximum, minimum = RollingMaximum(window), RollingMinimum(window)
    before_high, before_low = [], []
    for high, low in zip(highs, lows, strict=False):
        before_high.append(maximum.value)  # the channel of the values before this one, as Donchian reads it
        before_low.append(minimum.value)
        maximum.update(float(high))
        minimum.update(float(low))
    assert before_high == [None if value is None else float(value) for value in previous_highest(highs, window)]
    assert before_low == [None if value is None else float(value) for value in previous_lowest(lows, window)]
    assert len(maximum._candidates) <= window and len(minimum._candidates) <= window  # bounded memory


@given(st.lists(st.integers(-5, 5), min_size=1, max_size=60), st.integers(1, 8))
def test_rolling_extremes_on_any_sequence(values: list[int], window: int) -> None:
    maximum, minimum = RollingMaximum(window), RollingMinimum(window)
    for index, value in enumerate(values):
        got_max, got_min = maximum.update(value), minimum.update(value)
        recent = values[max(0, index + 1 - window) : index + 1]
        if index + 1 < window:
            assert got_max is None and got_min is None
        else:
            assert (got_max, got_min) == (max(recent), min(recent))


def test_crossover_reports_only_sign_changes() -> None:
    crossover = Crossover()
    differences = [-1.0, -2.0, 0.0, -1.0, 3.0, 0.0, 2.0, -0.5, 0.0, 0.5]
    assert [crossover.update(difference) for difference in differences] == [0, 0, 0, 0, 1, 0, 0, -1, 0, 1]
    first_positive = Crossover()
    assert first_positive.update(1.0) == 0  # the first sign seen is not a cross


@pytest.mark.parametrize("indicator", [ExponentialMovingAverage, RelativeStrengthIndex, RollingMaximum, RollingMinimum])
def test_periods_below_one_are_rejected(indicator: type) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        indicator(0)
