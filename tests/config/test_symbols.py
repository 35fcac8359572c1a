"""symbols.toml: the shipped file, every field's checks, cross-checks, and how problems are reported."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from config import ConfigError, EntryOrderType, SizingMode, load_symbols
from config.symbols import parse_symbols, read_symbols_file
from tests.config.conftest import MINIMAL_SYMBOLS_TOML, SHIPPED_SYMBOLS_FILE
from utils.domain import MarginType

STRATEGY = """
[[symbols.strategies]]
name = "ema_crossover"
sizing = { mode = "fixed_notional", value = 100 }
"""


def symbol_entry(symbol: str = "BTCUSDT", extra: str = "", strategies: str = STRATEGY) -> str:
    return f'[[symbols]]\nsymbol = "{symbol}"\nleverage = 5\nmargin_type = "ISOLATED"\n{extra}\n{strategies}\n'


def problems_of(write_file, text: str) -> list[str]:
    path = write_file("symbols.toml", text)
    config, problems = read_symbols_file(path)
    assert config is None, "expected the file to be refused"
    return [str(problem) for problem in problems]


def test_the_shipped_file_loads_with_three_symbols_and_three_strategies_each() -> None:
    config = load_symbols(SHIPPED_SYMBOLS_FILE)
    assert [entry.symbol for entry in config.symbols] == ["BTCUSDT", "ETHUSDT", "LTCUSDT"]
    for entry in config.symbols:
        assert 1 <= entry.leverage <= 125
        assert entry.margin_type in (MarginType.ISOLATED, MarginType.CROSSED)
        by_name = {strategy.name: strategy for strategy in entry.strategies}
        assert set(by_name) == {"ema_crossover", "rsi_reversion", "donchian_breakout"}
        assert by_name["ema_crossover"].params == {"fast": 12, "slow": 26}
        assert by_name["rsi_reversion"].params == {"period": 14, "oversold": 30, "overbought": 70}
        assert by_name["donchian_breakout"].params == {"period": 20}
        for strategy in entry.strategies:
            assert strategy.sizing.mode is SizingMode.FIXED_NOTIONAL
            assert Decimal(50) <= strategy.sizing.value <= Decimal(200)
            assert strategy.entry_order_type is EntryOrderType.MARKET
    risk = config.risk
    assert risk.defaults.model_dump() == {
        "daily_loss_limit_usdt": Decimal(25),
        "max_new_positions_per_day": 20,
        "max_symbol_exposure_usdt": Decimal(600),
        "order_ttl_sec": 60,
        "max_consecutive_losses": 8,
        "funding_blackout_minutes": 5,
        "consecutive_losses_cooldown_minutes": 360,
    }
    assert risk.limits_for("rsi_reversion").daily_loss_limit_usdt == Decimal(15)
    assert risk.limits_for("rsi_reversion").order_ttl_sec == 60  # not overridden: the default
    assert risk.limits_for("ema_crossover") == risk.defaults


def test_the_shipped_params_satisfy_the_strategies_themselves() -> None:
    from strategies import registry

    for entry in load_symbols(SHIPPED_SYMBOLS_FILE).symbols:
        for strategy in entry.strategies:
            registry.load_strategy(strategy.name, entry.symbol, strategy.params)


def test_decimals_are_read_exactly_and_params_keep_their_types(write_file) -> None:
    path = write_file(
        "symbols.toml",
        symbol_entry(
            strategies="""
[[symbols.strategies]]
name = "custom_one"
params = { ratio = 0.1, period = 14, label = "x", enabled = true, levels = [0.1, 2] }
sizing = { mode = "equity_fraction", value = 0.05 }
stop_loss_pct = 0.3
entry_order_type = "limit"
limit_offset_bps = 2.5
"""
        ),
    )
    strategy = load_symbols(path).symbols[0].strategies[0]
    assert strategy.params == {"ratio": Decimal("0.1"), "period": 14, "label": "x", "enabled": True, "levels": [Decimal("0.1"), 2]}
    assert type(strategy.params["period"]) is int and type(strategy.params["enabled"]) is bool
    assert strategy.sizing.value == Decimal("0.05")
    assert strategy.stop_loss_pct == Decimal("0.3")
    assert strategy.entry_order_type is EntryOrderType.LIMIT
    assert strategy.limit_offset_bps == Decimal("2.5")


def test_margin_type_is_case_insensitive(write_file) -> None:
    path = write_file("symbols.toml", symbol_entry().replace('"ISOLATED"', '"crossed"'))
    assert load_symbols(path).symbols[0].margin_type is MarginType.CROSSED


def test_bad_leverage_names_the_entry_and_the_range(write_file) -> None:
    text = symbol_entry("BTCUSDT") + symbol_entry("ETHUSDT").replace("leverage = 5", "leverage = 200")
    assert problems_of(write_file, text) == ["symbols[1].leverage: must be between 1 and 125 (got 200)"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", "must be between 1 and 125 (got 0)"),
        ("2.5", "must be a whole number between 1 and 125 (got 2.5)"),
        ('"five"', "must be a whole number between 1 and 125 (got 'five')"),
    ],
)
def test_leverage_must_be_a_whole_number_in_range(write_file, value: str, expected: str) -> None:
    text = symbol_entry().replace("leverage = 5", f"leverage = {value}")
    assert problems_of(write_file, text) == [f"symbols[0].leverage: {expected}"]


def test_an_unknown_key_is_an_error_with_a_suggestion(write_file) -> None:
    text = symbol_entry(extra="leveage = 3")
    assert problems_of(write_file, text) == [
        "symbols[0].leveage: unknown key (did you mean leverage?); allowed keys: symbol, leverage, margin_type, strategies"
    ]


def test_an_unknown_key_deep_inside_is_named_by_its_path(write_file) -> None:
    text = symbol_entry(strategies=STRATEGY.replace("value = 100", "valu = 100"))
    assert problems_of(write_file, text) == [
        "symbols[0].strategies[0].sizing.value: is required",
        "symbols[0].strategies[0].sizing.valu: unknown key (did you mean value?); allowed keys: mode, value",
    ]


def test_bad_margin_type_lists_the_allowed_values(write_file) -> None:
    text = symbol_entry().replace('"ISOLATED"', '"CROSS"')
    assert problems_of(write_file, text) == ["symbols[0].margin_type: must be one of CROSSED, ISOLATED (got 'CROSS')"]


def test_a_lower_case_symbol_is_refused_with_a_suggestion(write_file) -> None:
    (problem,) = problems_of(write_file, symbol_entry("btcusdt"))
    assert problem.startswith("symbols[0].symbol: must be an upper-case Binance symbol")
    assert "did you mean 'BTCUSDT'?" in problem


def test_required_fields_are_named(write_file) -> None:
    text = '[[symbols]]\nsymbol = "BTCUSDT"\n'
    assert problems_of(write_file, text) == [
        "symbols[0].leverage: is required",
        "symbols[0].margin_type: is required",
        "symbols[0].strategies: is required",
    ]


def test_at_least_one_symbol_and_one_strategy(write_file) -> None:
    assert problems_of(write_file, "symbols = []\n") == ["symbols: must have at least 1 entry"]
    text = '[[symbols]]\nsymbol = "BTCUSDT"\nleverage = 5\nmargin_type = "ISOLATED"\nstrategies = []\n'
    assert problems_of(write_file, text) == ["symbols[0].strategies: must have at least 1 entry"]


@pytest.mark.parametrize(
    ("sizing", "expected"),
    [
        ('{ mode = "percent", value = 1 }', "sizing.mode: must be one of fixed_notional, equity_fraction (got 'percent')"),
        ('{ mode = "fixed_notional", value = 0 }', "sizing.value: must be greater than 0 (got 0)"),
        ('{ mode = "equity_fraction", value = 1.5 }', "sizing.value: must be greater than 0 and at most 1 when mode is equity_fraction (got 1.5)"),
    ],
)
def test_sizing_checks(write_file, sizing: str, expected: str) -> None:
    text = symbol_entry(strategies=STRATEGY.replace('{ mode = "fixed_notional", value = 100 }', sizing))
    assert problems_of(write_file, text) == [f"symbols[0].strategies[0].{expected}"]


@pytest.mark.parametrize("field", ["stop_loss_pct", "take_profit_pct"])
@pytest.mark.parametrize("value", ["0", "-1", "101"])
def test_stop_and_take_profit_percent_ranges(write_file, field: str, value: str) -> None:
    text = symbol_entry(strategies=STRATEGY + f"{field} = {value}\n")
    assert problems_of(write_file, text) == [
        f"symbols[0].strategies[0].{field}: must be greater than 0 and at most 100 (got {value})"
    ]


def test_params_must_be_scalars_or_lists(write_file) -> None:
    text = symbol_entry(strategies=STRATEGY + "params = { nested = { a = 1 } }\n")
    assert problems_of(write_file, text) == [
        "symbols[0].strategies[0].params.nested: must be a number, a string, true/false, or a list of those (got a table)"
    ]


def test_a_bad_strategy_name_is_refused(write_file) -> None:
    text = symbol_entry(strategies=STRATEGY.replace('"ema_crossover"', '"EMA Crossover"'))
    (problem,) = problems_of(write_file, text)
    assert problem.startswith("symbols[0].strategies[0].name: must be a strategy name of lower-case letters")


def test_duplicate_symbols_and_strategies_are_refused(write_file) -> None:
    text = symbol_entry(strategies=STRATEGY + STRATEGY) + symbol_entry()
    problems = problems_of(write_file, text)
    assert any(problem.startswith("symbols[0].strategies[1].name: ema_crossover already runs on BTCUSDT") for problem in problems)
    text = symbol_entry() + symbol_entry()
    assert problems_of(write_file, text) == [
        "symbols[1].symbol: BTCUSDT is listed twice (also symbols[0]); put all its strategies in one entry"
    ]


def test_risk_defaults_and_per_strategy_overrides(write_file) -> None:
    path = write_file(
        "symbols.toml",
        MINIMAL_SYMBOLS_TOML
        + """
[risk]
daily_loss_limit_usdt = "100"
max_new_positions_per_day = 10
max_symbol_exposure_usdt = 5000
order_ttl_sec = 30
max_consecutive_losses = 5
funding_blackout_minutes = 0

[risk.ema_crossover]
daily_loss_limit_usdt = 20.5
order_ttl_sec = 10
""",
    )
    risk = load_symbols(path).risk
    assert risk.daily_loss_limit_usdt == Decimal(100)
    assert risk.overrides["ema_crossover"].daily_loss_limit_usdt == Decimal("20.5")
    limits = risk.limits_for("ema_crossover")
    assert (limits.daily_loss_limit_usdt, limits.order_ttl_sec, limits.max_consecutive_losses) == (Decimal("20.5"), 10, 5)
    assert risk.limits_for("unknown_strategy") == risk.defaults


def test_a_left_out_risk_limit_is_unset(write_file) -> None:
    """An unset limit turns that guard off in executor/risk.py (documented in docs/risk.md)."""
    risk = load_symbols(write_file("symbols.toml", MINIMAL_SYMBOLS_TOML)).risk
    assert risk.defaults.model_dump() == dict.fromkeys(risk.defaults.model_dump())


def test_risk_problems_are_named(write_file) -> None:
    text = (
        MINIMAL_SYMBOLS_TOML
        + """
[risk]
daily_loss_limit_usdt = -1
order_ttl = 5
funding_blackout_minutes = 300

[risk.rsi_reversion]
max_consecutive_losses = 0
"""
    )
    problems = problems_of(write_file, text)
    assert problems == [
        "risk.daily_loss_limit_usdt: must be greater than 0 (got -1)",
        "risk.funding_blackout_minutes: must be between 0 and 240 (got 300)",
        "risk.order_ttl: unknown key (did you mean order_ttl_sec?); allowed keys: daily_loss_limit_usdt, "
        "max_new_positions_per_day, max_symbol_exposure_usdt, order_ttl_sec, max_consecutive_losses, "
        "funding_blackout_minutes, consecutive_losses_cooldown_minutes, or a [risk.<strategy>] table of overrides",
        "risk.rsi_reversion.max_consecutive_losses: must be between 1 and 10000 (got 0)",
    ]


def test_an_unknown_key_in_a_strategy_override_is_named(write_file) -> None:
    text = MINIMAL_SYMBOLS_TOML + "\n[risk.ema_crossover]\norder_ttl_secs = 5\n"
    (problem,) = problems_of(write_file, text)
    assert problem.startswith("risk.ema_crossover.order_ttl_secs: unknown key (did you mean order_ttl_sec?)")


def test_an_override_for_a_strategy_nobody_runs_is_refused(write_file) -> None:
    text = MINIMAL_SYMBOLS_TOML + "\n[risk.ema_crossvoer]\norder_ttl_sec = 5\n"
    assert problems_of(write_file, text) == [
        "risk.ema_crossvoer: no symbol runs a strategy named 'ema_crossvoer' (strategies in use: ema_crossover)"
    ]


def test_a_fixed_notional_above_the_exposure_limit_is_refused(write_file) -> None:
    text = MINIMAL_SYMBOLS_TOML + "\n[risk]\nmax_symbol_exposure_usdt = 150\n"
    assert problems_of(write_file, text) == [
        "symbols[0].strategies[0].sizing.value: 200 USDT is above max_symbol_exposure_usdt (150) for ema_crossover, "
        "so no entry could pass the risk check"
    ]


def test_a_toml_syntax_error_names_the_line(write_file) -> None:
    (problem,) = problems_of(write_file, '[[symbols]]\nsymbol = "BTCUSDT\n')
    assert problem.startswith("not valid TOML:") and "line 2" in problem


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    config, problems = read_symbols_file(tmp_path / "nowhere.toml")
    assert config is None
    assert [str(problem) for problem in problems] == [
        f"SYMBOLS_FILE: no such file: {tmp_path / 'nowhere.toml'}; set SYMBOLS_FILE or create it"
    ]


def test_load_symbols_raises_one_config_error(write_file) -> None:
    path = write_file("symbols.toml", symbol_entry().replace("leverage = 5", "leverage = 0").replace('"ISOLATED"', '"X"'))
    with pytest.raises(ConfigError) as caught:
        load_symbols(path)
    assert len(caught.value.problems) == 2
    assert str(caught.value).startswith("invalid configuration: 2 problems")


def test_parse_symbols_accepts_already_parsed_data() -> None:
    config, problems = parse_symbols(
        {"symbols": [{"symbol": "BTCUSDT", "leverage": 3, "margin_type": "CROSSED",
                      "strategies": [{"name": "ema_crossover", "sizing": {"mode": "fixed_notional", "value": "100"}}]}]}
    )  # fmt: skip
    assert problems == [] and config is not None
    assert config.symbol("BTCUSDT").leverage == 3
    with pytest.raises(KeyError):
        config.symbol("ETHUSDT")
