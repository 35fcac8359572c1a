"""RSI reversion: its signals are exactly those the rules give on independently computed RSI, on real candles."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from strategies.registry import StrategyError, load_strategy
from strategies.rsi_reversion import RsiReversion
from tests.strategies.independent import rsi_series
from utils.domain import Candle, SignalSide


def expected_signals(
    candles: list[Candle], period: int, oversold: float, overbought: float, exit_level: float
) -> list[tuple[int, SignalSide, float, float | None]]:
    """(candle open time, side, RSI, excursion extreme or None) by the documented rules, over the whole RSI series."""
    rsi = rsi_series([float(candle.close) for candle in candles], period)
    position, signals = SignalSide.FLAT, []
    for index in range(1, len(candles)):
        previous, current = rsi[index - 1], rsi[index]
        if previous is None or current is None:
            continue
        wanted, extreme = None, None
        if previous < oversold <= current:
            wanted = SignalSide.LONG
            run = []  # the stay below oversold that just ended, read backwards
            for earlier in reversed(rsi[:index]):
                if earlier is None or earlier >= oversold:
                    break
                run.append(earlier)
            extreme = min(run)
        elif previous > overbought >= current:
            wanted = SignalSide.SHORT
            run = []
            for earlier in reversed(rsi[:index]):
                if earlier is None or earlier <= overbought:
                    break
                run.append(earlier)
            extreme = max(run)
        elif exit_level != 0 and (
            (position is SignalSide.LONG and current >= exit_level)
            or (position is SignalSide.SHORT and current <= exit_level)
        ):
            wanted = SignalSide.FLAT
        if wanted is not None and wanted is not position:
            position = wanted
            signals.append((candles[index].open_time, wanted, current, extreme))
    return signals


@pytest.mark.parametrize(
    ("period", "oversold", "overbought", "exit_level"),
    [(14, 30.0, 70.0, 50.0), (7, 20.0, 80.0, 45.0), (14, 30.0, 70.0, 0.0)],
)
def test_signals_follow_the_independent_rsi(
    btc_candles: list[Candle], period: int, oversold: float, overbought: float, exit_level: float
) -> None:
    params = RsiReversion.Params(period=period, oversold=oversold, overbought=overbought, exit_level=exit_level)
    strategy = RsiReversion("BTCUSDT", params)
    signals = [signal for signal in map(strategy.on_candle, btc_candles) if signal is not None]
    expected = expected_signals(btc_candles, period, oversold, overbought, exit_level)
    assert len(expected) > 20
    assert {side for _, side, _, _ in expected} == (
        {SignalSide.LONG, SignalSide.SHORT} | ({SignalSide.FLAT} if exit_level else set())
    )
    assert [(signal.candle_open_time, signal.side) for signal in signals] == [row[:2] for row in expected]
    for signal, (_, side, rsi, extreme) in zip(signals, expected, strict=False):
        assert float(re.match(rf"rsi{period}=([0-9.]+) ", signal.reason)[1]) == pytest.approx(rsi, abs=0.006)
        if side is SignalSide.FLAT:
            assert signal.strength == 1 and f"exit level {exit_level:g}" in signal.reason
            continue
        if side is SignalSide.LONG:
            depth = (oversold - extreme) / oversold
        else:
            depth = (extreme - overbought) / (100 - overbought)
        assert 0 <= signal.strength <= 1
        assert float(signal.strength) == pytest.approx(min(depth, 1.0), abs=1e-4)
        assert f"{extreme:.2f}" in signal.reason


def test_warmup_is_derived_from_period() -> None:
    assert RsiReversion("BTCUSDT").warmup_candles == 7 * 14 + 1
    assert RsiReversion("BTCUSDT", RsiReversion.Params(period=5)).warmup_candles == 36


@pytest.mark.parametrize(
    ("params", "field", "problem"),
    [
        ({"oversold": 60}, "params", "need oversold < exit_level < overbought, got 60, 50, 70"),
        ({"oversold": 80, "exit_level": 0}, "params", "oversold (80) must be below overbought (70)"),
        ({"exit_level": None}, "exit_level", "valid number"),
        ({"overbought": 100}, "overbought", "less than 100"),
        ({"period": 1}, "period", "greater than or equal to 2"),
        ({"exit_level": "50"}, "exit_level", "valid number"),
        ({"exit": 50}, "exit", "unknown param"),
    ],
)
def test_bad_params_are_refused_with_the_facts(params: dict, field: str, problem: str) -> None:
    with pytest.raises(StrategyError) as raised:
        load_strategy("rsi_reversion", "LTCUSDT", params)
    message = str(raised.value)
    assert "'rsi_reversion'" in message and "LTCUSDT" in message
    assert f"{field}: " in message and problem in message
    assert "exit_level (number >= 0 and < 100, default 50)" in message


def test_levels_from_the_config_file_are_numbers() -> None:
    # config/symbols.py reads TOML numbers with a decimal point as Decimal, plain ones as int.
    params = {"oversold": Decimal("25.5"), "overbought": 75, "exit_level": 0}
    strategy = load_strategy("rsi_reversion", "BTCUSDT", params)
    assert strategy.params == RsiReversion.Params(oversold=25.5, overbought=75.0, exit_level=0.0)
    assert isinstance(strategy.params.overbought, float)
