"""Donchian breakout: its signals are exactly those the rules give on Decimal channels taken from slices."""

from __future__ import annotations

import pytest

from strategies.donchian_breakout import DonchianBreakout
from strategies.registry import StrategyError, load_strategy
from tests.strategies.independent import previous_highest, previous_lowest
from utils.domain import Candle, SignalSide


def expected_signals(candles: list[Candle], period: int, exit_period: int) -> list[tuple[int, SignalSide, str]]:
    """(candle open time, side, channel value as text) by the documented rules, in exact Decimal arithmetic."""
    highs, lows = [candle.high for candle in candles], [candle.low for candle in candles]
    entry_high, entry_low = previous_highest(highs, period), previous_lowest(lows, period)
    exit_high = previous_highest(highs, exit_period) if exit_period else [None] * len(candles)
    exit_low = previous_lowest(lows, exit_period) if exit_period else [None] * len(candles)
    position, signals = SignalSide.FLAT, []
    for index, candle in enumerate(candles):
        if entry_high[index] is None:
            continue
        if candle.close > entry_high[index]:
            wanted, level = SignalSide.LONG, entry_high[index]
        elif candle.close < entry_low[index]:
            wanted, level = SignalSide.SHORT, entry_low[index]
        elif position is SignalSide.LONG and exit_low[index] is not None and candle.close < exit_low[index]:
            wanted, level = SignalSide.FLAT, exit_low[index]
        elif position is SignalSide.SHORT and exit_high[index] is not None and candle.close > exit_high[index]:
            wanted, level = SignalSide.FLAT, exit_high[index]
        else:
            continue
        if wanted is not position:
            position = wanted
            signals.append((candle.open_time, wanted, f"{float(level):.10g}"))
    return signals


@pytest.mark.parametrize(("period", "exit_period"), [(20, 10), (55, 20), (20, 0), (2, 1)])
def test_signals_follow_the_independent_channels(btc_candles: list[Candle], period: int, exit_period: int) -> None:
    strategy = DonchianBreakout("BTCUSDT", DonchianBreakout.Params(period=period, exit_period=exit_period))
    signals = [signal for signal in map(strategy.on_candle, btc_candles) if signal is not None]
    expected = expected_signals(btc_candles, period, exit_period)
    assert len(expected) > 20
    assert (SignalSide.FLAT in {side for _, side, _ in expected}) == (exit_period > 0)
    assert [(signal.candle_open_time, signal.side) for signal in signals] == [row[:2] for row in expected]
    by_open_time = {candle.open_time: candle for candle in btc_candles}
    for signal, (open_time, side, level) in zip(signals, expected, strict=False):
        channel = exit_period if side is SignalSide.FLAT else period
        assert signal.reason.startswith(f"close={by_open_time[open_time].close} ")
        assert signal.reason.endswith(f" the {channel}-candle {'high' if 'above' in signal.reason else 'low'} {level}")
        assert signal.strength == 1 and signal.time == by_open_time[open_time].close_time


def test_warmup_is_the_entry_period() -> None:
    assert DonchianBreakout("BTCUSDT").warmup_candles == 20
    assert DonchianBreakout("BTCUSDT", DonchianBreakout.Params(period=55, exit_period=0)).warmup_candles == 55


@pytest.mark.parametrize(
    ("params", "field", "problem"),
    [
        ({"exit_period": 20}, "params", "exit_period (20) must be less than period (20)"),
        ({"period": 5}, "params", "exit_period (10) must be less than period (5)"),
        ({"period": 0}, "period", "greater than or equal to 1"),
        ({"exit_period": 2.5}, "exit_period", "valid integer"),
        ({"exit_period": -1}, "exit_period", "greater than or equal to 0"),
        ({"lookback": 20}, "lookback", "unknown param"),
    ],
)
def test_bad_params_are_refused_with_the_facts(params: dict, field: str, problem: str) -> None:
    with pytest.raises(StrategyError) as raised:
        load_strategy("donchian_breakout", "BTCUSDT", params)
    message = str(raised.value)
    assert "'donchian_breakout'" in message and "BTCUSDT" in message
    assert f"{field}: " in message and problem in message
    assert "period (integer >= 1, default 20), exit_period (integer >= 0, default 10)" in message
