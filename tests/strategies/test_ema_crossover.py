"""EMA crossover: its signals are exactly the crossings of independently computed EMAs, on real candles."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest

from strategies.ema_crossover import EmaCrossover
from strategies.registry import StrategyError, load_strategy
from tests.strategies.independent import ema_series
from utils.domain import Candle, SignalSide

REPO_ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"([0-9.e+-]+)"


def expected_crossings(candles: list[Candle], fast: int, slow: int) -> list[tuple[int, SignalSide, float, float]]:
    """(candle open time, side, fast EMA, slow EMA) wherever the sign of fast - slow flips between non-zero readings."""
    closes = [float(candle.close) for candle in candles]
    readings = [
        (candle, fast_value, slow_value)
        for candle, fast_value, slow_value in zip(candles, ema_series(closes, fast), ema_series(closes, slow), strict=False)
        if fast_value is not None and slow_value is not None and fast_value != slow_value
    ]
    return [
        (candle.open_time, SignalSide.LONG if fast_value > slow_value else SignalSide.SHORT, fast_value, slow_value)
        for (_, previous_fast, previous_slow), (candle, fast_value, slow_value) in pairwise(readings)
        if (previous_fast > previous_slow) != (fast_value > slow_value)
    ]


@pytest.mark.parametrize(("fast", "slow"), [(12, 26), (5, 50), (1, 2)])
def test_signals_are_the_independent_crossings(btc_candles: list[Candle], fast: int, slow: int) -> None:
    strategy = EmaCrossover("BTCUSDT", EmaCrossover.Params(fast=fast, slow=slow))
    signals = [signal for signal in map(strategy.on_candle, btc_candles) if signal is not None]
    expected = expected_crossings(btc_candles, fast, slow)
    assert len(expected) > 50
    assert [(signal.candle_open_time, signal.side) for signal in signals] == [row[:2] for row in expected]
    by_open_time = {candle.open_time: candle for candle in btc_candles}
    for signal, (open_time, side, fast_value, slow_value) in zip(signals, expected, strict=False):
        assert signal.time == by_open_time[open_time].close_time
        assert (signal.strategy, signal.symbol, signal.strength) == ("ema_crossover", "BTCUSDT", 1)
        direction = "above" if side is SignalSide.LONG else "below"
        match = re.fullmatch(rf"ema{fast}={NUMBER} crossed {direction} ema{slow}={NUMBER}", signal.reason)
        assert match, signal.reason
        assert float(match[1]) == pytest.approx(fast_value, rel=1e-7)
        assert float(match[2]) == pytest.approx(slow_value, rel=1e-7)
    sides = [signal.side for signal in signals]
    assert all(first is not second for first, second in pairwise(sides))  # only on a change


def test_warmup_is_derived_from_slow() -> None:
    assert EmaCrossover("BTCUSDT").warmup_candles == 4 * 26
    assert EmaCrossover("BTCUSDT", EmaCrossover.Params(fast=3, slow=10)).warmup_candles == 40


@pytest.mark.parametrize(
    ("params", "field", "problem"),
    [
        ({"fast": 26, "slow": 12}, "params", "fast (26) must be less than slow (12)"),
        ({"fast": 30}, "params", "fast (30) must be less than slow (26)"),
        ({"fast": 0}, "fast", "greater than or equal to 1"),
        ({"slow": "26"}, "slow", "valid integer"),
        ({"fast": 12.5}, "fast", "valid integer"),
        ({"fats": 12}, "fats", "unknown param"),
    ],
)
def test_bad_params_are_refused_with_the_facts(params: dict, field: str, problem: str) -> None:
    with pytest.raises(StrategyError) as raised:
        load_strategy("ema_crossover", "ETHUSDT", params)
    message = str(raised.value)
    assert "'ema_crossover'" in message and "ETHUSDT" in message
    assert f"{field}: " in message and problem in message
    assert "fast (integer >= 1, default 12), slow (integer >= 2, default 26)" in message


def test_the_file_stays_a_short_example() -> None:
    source = (REPO_ROOT / "strategies" / "ema_crossover.py").read_text(encoding="utf-8")
    assert len(source.splitlines()) < 45  # with long_only (issue 12)


def test_docs_show_the_file_as_it_is() -> None:
    source = (REPO_ROOT / "strategies" / "ema_crossover.py").read_text(encoding="utf-8")
    docs = (REPO_ROOT / "docs" / "strategies.md").read_text(encoding="utf-8")
    assert f"```python\n{source}```" in docs


@pytest.mark.parametrize(("fast", "slow"), [(10, 20), (50, 200)])
def test_long_only_flips_between_long_and_flat_on_the_independent_emas(btc_candles: list[Candle], fast: int,
                                                                        slow: int) -> None:
    strategy = EmaCrossover("BTCUSDT", EmaCrossover.Params(fast=fast, slow=slow, long_only=True))
    signals = [signal for signal in map(strategy.on_candle, btc_candles) if signal is not None]
    closes = [float(candle.close) for candle in btc_candles]
    long, expected = False, []
    for candle, fast_value, slow_value in zip(btc_candles, ema_series(closes, fast), ema_series(closes, slow),
                                              strict=False):
        if fast_value is None or slow_value is None or fast_value == slow_value:
            continue
        if (fast_value > slow_value) != long:  # flat and fast above slow, or long and fast below slow
            long = fast_value > slow_value
            expected.append((candle.open_time, SignalSide.LONG if long else SignalSide.FLAT))
    assert len(expected) > 20 and expected[0][1] is SignalSide.LONG  # the first is a LONG, without a cross
    assert [(signal.candle_open_time, signal.side) for signal in signals] == expected
