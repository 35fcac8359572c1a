"""The strategy base class: params checked by type, signals stamped with the candle's close time, strength clamped."""

from __future__ import annotations

from decimal import Decimal

import pytest

from strategies.base import Strategy, StrategyParams, to_strength
from strategies.donchian_breakout import DonchianBreakout
from strategies.ema_crossover import EmaCrossover
from utils.domain import Candle, SignalSide

CANDLE = Candle("BTCUSDT", 1_681_948_800_000, 1_681_948_859_999, *(Decimal("28795.00"),) * 4, Decimal(1))


def test_missing_params_take_the_defaults_and_wrong_params_are_refused() -> None:
    assert EmaCrossover("BTCUSDT").params == EmaCrossover.Params(fast=12, slow=26)
    with pytest.raises(
        TypeError, match=r"ema_crossover needs EmaCrossover\.Params params, got DonchianBreakout\.Params"
    ):
        EmaCrossover("BTCUSDT", DonchianBreakout.Params())  # type: ignore[arg-type]


def test_params_reject_unknown_keys() -> None:
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        EmaCrossover.Params(fast=5, slower=30)  # type: ignore[call-arg]
    assert StrategyParams.model_config["extra"] == "forbid"


def test_a_signal_carries_the_candle_times_never_a_clock() -> None:
    signal = EmaCrossover("BTCUSDT").signal(CANDLE, SignalSide.FLAT, "because")
    assert (signal.strategy, signal.symbol, signal.side, signal.strength, signal.reason) == (
        "ema_crossover",
        "BTCUSDT",
        SignalSide.FLAT,
        Decimal(1),
        "because",
    )
    assert (signal.time, signal.candle_open_time) == (CANDLE.close_time, CANDLE.open_time)


@pytest.mark.parametrize(
    ("value", "strength"), [(-0.5, "0.0000"), (0.0, "0.0000"), (0.12345, "0.1235"), (7.0, "1.0000")]
)
def test_strength_is_a_decimal_in_zero_to_one(value: float, strength: str) -> None:
    assert to_strength(value) == Decimal(strength) and isinstance(to_strength(value), Decimal)


def test_a_strategy_must_define_the_api() -> None:
    class Incomplete(Strategy):
        name = "incomplete"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete("BTCUSDT")  # type: ignore[abstract]
    assert EmaCrossover("BTCUSDT").on_mark_price(object()) is None  # type: ignore[arg-type]
