"""Strategies are found by scanning a folder; adding or removing one is adding or deleting its file."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategies.donchian_breakout import DonchianBreakout
from strategies.ema_crossover import EmaCrossover
from strategies.registry import StrategyError, describe_params, discover_strategies, load_strategy
from strategies.rsi_reversion import RsiReversion

PROBE_STRATEGY = '''
"""A strategy that exists only for the discovery test."""

from pydantic import Field

from strategies.base import Strategy, StrategyParams


class {class_name}(Strategy):
    name = "{name}"

    class Params(StrategyParams):
        lookback: int = Field(3, ge=1)

    @property
    def warmup_candles(self) -> int:
        return self.params.lookback

    def on_candle(self, candle):
        return None
'''


def write_strategy(directory: Path, file_stem: str, name: str, class_name: str = "Probe") -> Path:
    path = directory / f"{file_stem}.py"
    path.write_text(PROBE_STRATEGY.format(name=name, class_name=class_name), encoding="utf-8")
    return path


def test_the_project_folder_holds_the_three_strategies() -> None:
    assert discover_strategies() == {
        "donchian_breakout": DonchianBreakout,
        "ema_crossover": EmaCrossover,
        "rsi_reversion": RsiReversion,
    }


def test_loading_validates_params_and_fills_defaults() -> None:
    strategy = load_strategy("ema_crossover", "BTCUSDT", {"fast": 5})
    assert isinstance(strategy, EmaCrossover) and strategy.symbol == "BTCUSDT"
    assert strategy.params == EmaCrossover.Params(fast=5, slow=26)
    assert load_strategy("donchian_breakout", "ETHUSDT").params == DonchianBreakout.Params()
    with pytest.raises(Exception, match="frozen"):
        strategy.params.fast = 7  # validated once, then fixed


def test_an_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(StrategyError) as raised:
        load_strategy("ema_cross", "BTCUSDT", {})
    assert str(raised.value) == (
        "unknown strategy 'ema_cross' for BTCUSDT; "
        "available strategies: donchian_breakout, ema_crossover, rsi_reversion"
    )


def test_params_must_be_a_table() -> None:
    with pytest.raises(StrategyError, match=r"strategy 'rsi_reversion' for BTCUSDT: params must be a table"):
        load_strategy("rsi_reversion", "BTCUSDT", [14])  # type: ignore[arg-type]


def test_dropping_a_file_in_a_folder_adds_a_strategy_and_deleting_it_removes_it(tmp_path: Path) -> None:
    probe = write_strategy(tmp_path, "probe_momentum", "probe_momentum")
    write_strategy(tmp_path, "_private_helper", "private_probe", "PrivateProbe")
    (tmp_path / "indicators.py").write_text("VALUE = 1\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a module\n", encoding="utf-8")

    found = discover_strategies(tmp_path)
    assert list(found) == ["probe_momentum"]
    strategy = load_strategy("probe_momentum", "LTCUSDT", {"lookback": 9}, package=tmp_path)
    assert (strategy.name, strategy.symbol, strategy.warmup_candles) == ("probe_momentum", "LTCUSDT", 9)
    with pytest.raises(StrategyError, match=r"lookback: Input should be greater than or equal to 1 \(got 0\)"):
        load_strategy("probe_momentum", "LTCUSDT", {"lookback": 0}, package=tmp_path)

    probe.unlink()
    assert discover_strategies(tmp_path) == {}
    with pytest.raises(StrategyError, match="available strategies: none"):
        load_strategy("probe_momentum", "LTCUSDT", {}, package=tmp_path)


def test_an_importable_package_can_be_scanned_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "extra_strategies_for_test"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    write_strategy(package, "probe_breakout", "probe_breakout")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = discover_strategies("extra_strategies_for_test")
    assert list(found) == ["probe_breakout"]
    assert found["probe_breakout"].__module__ == "extra_strategies_for_test.probe_breakout"


def test_a_name_used_twice_is_refused(tmp_path: Path) -> None:
    write_strategy(tmp_path, "first", "same_name")
    write_strategy(tmp_path, "second", "same_name")
    with pytest.raises(StrategyError, match=r"'same_name' is used by both .*first\.py and .*second\.py"):
        discover_strategies(tmp_path)


def test_one_strategy_per_file(tmp_path: Path) -> None:
    path = write_strategy(tmp_path, "crowded", "crowded_one", "CrowdedOne")
    path.write_text(
        path.read_text(encoding="utf-8") + PROBE_STRATEGY.format(name="crowded_two", class_name="CrowdedTwo"),
        encoding="utf-8",
    )
    with pytest.raises(StrategyError, match=r"crowded\.py defines 2 strategies \(CrowdedOne, CrowdedTwo\)"):
        discover_strategies(tmp_path)


def test_a_broken_module_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n", encoding="utf-8")
    with pytest.raises(StrategyError, match=r"broken\.py failed to import: ModuleNotFoundError"):
        discover_strategies(tmp_path)


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="strategy folder not found"):
        discover_strategies(tmp_path / "nowhere")


def test_params_are_described_with_types_limits_and_defaults() -> None:
    assert describe_params(RsiReversion) == (
        "period (integer >= 2, default 14), oversold (number > 0 and < 100, default 30), "
        "overbought (number > 0 and < 100, default 70), exit_level (number >= 0 and < 100, default 50)"
    )



def test_a_constructor_that_raises_is_one_clear_error(tmp_path: Path) -> None:
    path = write_strategy(tmp_path, "fragile", "fragile_probe", "FragileProbe")
    path.write_text(path.read_text(encoding="utf-8") + '''
    def __init__(self, symbol, params):
        super().__init__(symbol, params)
        raise RuntimeError("needs an order book feed")
''', encoding="utf-8")
    with pytest.raises(StrategyError) as raised:
        load_strategy("fragile_probe", "BTCUSDT", package=tmp_path)
    message = str(raised.value)
    assert message.startswith("strategy 'fragile_probe' for BTCUSDT failed to start: RuntimeError: needs an order "
                              "book feed (its constructor raised; fix ")
    assert str(path) in message and message.endswith("or take it out of symbols.toml)")
