"""Reads and checks ``symbols.toml``: the symbols to trade, their leverage, margin type and strategies, and risk limits.

The file format is documented in ``config/symbols.toml`` itself and in ``docs/configuration.md``. Numbers with a
decimal point are read exactly (as ``Decimal``), never as floats. Unknown keys are errors, so a typo cannot
silently fall back to a default.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from config.checks import number_in_range, one_of
from config.problems import ConfigError, ConfigProblem, FieldProblems, problems_from_validation_error, show_value
from utils.domain import MarginType, SizingMode

_SYMBOL_PATTERN = re.compile(r"[A-Z0-9]{2,30}")
_STRATEGY_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")


class EntryOrderType(StrEnum):
    """How a strategy's entries are sent (exits are always MARKET)."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"


def _check_symbol(value: Any) -> Any:
    if isinstance(value, str) and _SYMBOL_PATTERN.fullmatch(value):
        return value
    hint = f"; did you mean {value.strip().upper()!r}?" if isinstance(value, str) and value.strip() else ""
    raise ValueError(
        f"must be an upper-case Binance symbol of letters and digits, such as BTCUSDT (got {show_value(value)}){hint}"
    )


def _check_strategy_name(value: Any) -> Any:
    if isinstance(value, str) and _STRATEGY_NAME_PATTERN.fullmatch(value):
        return value
    raise ValueError(
        "must be a strategy name of lower-case letters, digits and underscores starting with a letter, "
        f"such as ema_crossover (got {show_value(value)})"
    )


_PARAMETER_KINDS = "a number, a string, true/false, or a list of those"


def _check_parameter(value: Any) -> Any:
    """Strategy parameters are scalars (or lists of scalars); each strategy checks their meaning when it loads."""

    def scalar(item: Any) -> Any:
        if isinstance(item, bool | int | Decimal | str):
            return item
        if isinstance(item, float):
            return Decimal(str(item))
        raise ValueError(f"must be {_PARAMETER_KINDS} (got {show_value(item)})")

    if isinstance(value, list):
        return [scalar(item) for item in value]
    return scalar(value)


ParameterScalar = bool | int | Decimal | str
ParameterValue = Annotated[ParameterScalar | list[ParameterScalar], BeforeValidator(_check_parameter)]
Percent = Annotated[Decimal | None, number_in_range("decimal", above=0, maximum=100, optional=True)]


class _StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Sizing(_StrictModel):
    """``{mode = "fixed_notional", value = 100}`` (100 USDT notional) or ``{mode = "equity_fraction", value = 0.1}``.

    With ``equity_fraction`` the margin is ``equity x value`` and the notional ``margin x leverage``.
    """

    mode: Annotated[SizingMode, one_of(SizingMode, case="lower")]
    value: Annotated[Decimal, number_in_range("decimal", above=0)]

    @model_validator(mode="after")
    def _check_fraction(self) -> Sizing:
        if self.mode is SizingMode.EQUITY_FRACTION and self.value > 1:
            raise FieldProblems(
                [("value", f"must be greater than 0 and at most 1 when mode is equity_fraction (got {self.value})")]
            )
        return self


class StrategyConfig(_StrictModel):
    """One strategy on one symbol: its name, its parameters, how it sizes and sends entries, optional stop/take-profit.

    The fields map onto ``executor.planner.ExecutionSettings`` (with the symbol's leverage).
    """

    name: Annotated[str, BeforeValidator(_check_strategy_name)]
    params: dict[str, ParameterValue] = Field(default_factory=dict)
    sizing: Sizing
    stop_loss_pct: Percent = None  # percent of the entry price: 1.5 means 1.5 %
    take_profit_pct: Percent = None
    entry_order_type: Annotated[EntryOrderType, one_of(EntryOrderType, case="upper")] = EntryOrderType.MARKET
    limit_offset_bps: Annotated[Decimal, number_in_range("decimal", minimum=0, maximum=1000)] = Decimal(0)


class SymbolConfig(_StrictModel):
    """One traded symbol: leverage and margin type to set on the exchange, and the strategies that run on it."""

    symbol: Annotated[str, BeforeValidator(_check_symbol)]
    leverage: Annotated[int, number_in_range("int", minimum=1, maximum=125)]
    margin_type: Annotated[MarginType, one_of(MarginType, case="upper")]
    strategies: Annotated[list[StrategyConfig], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_unique_strategies(self) -> SymbolConfig:
        seen: dict[str, int] = {}
        problems = []
        for index, strategy in enumerate(self.strategies):
            if strategy.name in seen:
                problems.append(
                    (
                        f"strategies[{index}].name",
                        f"{strategy.name} already runs on {self.symbol} (strategies[{seen[strategy.name]}]); "
                        "each strategy runs at most once per symbol",
                    )
                )
            seen.setdefault(strategy.name, index)
        if problems:
            raise FieldProblems(problems)
        return self


_PositiveUsdt = Annotated[Decimal | None, number_in_range("decimal", above=0, optional=True)]
_NonNegativeUsdt = Annotated[Decimal | None, number_in_range("decimal", minimum=0, optional=True)]
_PositionCount = Annotated[int | None, number_in_range("int", minimum=0, maximum=10000, optional=True)]
_LossCount = Annotated[int | None, number_in_range("int", minimum=1, maximum=10000, optional=True)]
_TtlSeconds = Annotated[int | None, number_in_range("int", minimum=1, maximum=86400, optional=True)]
_BlackoutMinutes = Annotated[int | None, number_in_range("int", minimum=0, maximum=240, optional=True)]
_CooldownMinutes = Annotated[int | None, number_in_range("int", minimum=1, maximum=10080, optional=True)]


class RiskLimitsConfig(_StrictModel):
    """Risk limits, field for field those of ``executor.risk.RiskLimits``; ``None`` (key left out) means unset.

    In ``[risk]`` an unset limit turns that guard off; in a ``[risk.<strategy>]`` table it keeps the default.
    """

    daily_loss_limit_usdt: _PositiveUsdt = None
    max_new_positions_per_day: _PositionCount = None
    max_symbol_exposure_usdt: _NonNegativeUsdt = None
    order_ttl_sec: _TtlSeconds = None
    max_consecutive_losses: _LossCount = None
    funding_blackout_minutes: _BlackoutMinutes = None
    consecutive_losses_cooldown_minutes: _CooldownMinutes = None


_RISK_LIMIT_KEYS = tuple(RiskLimitsConfig.model_fields)


class _NotATable:
    """Stands in for a scalar under ``[risk]`` whose key is not a limit, so its error can name the key."""

    def __init__(self, key: str) -> None:
        self.key = key


def _check_override_table(value: Any) -> Any:
    if isinstance(value, _NotATable):
        close = difflib.get_close_matches(value.key, _RISK_LIMIT_KEYS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(
            f"unknown key{hint}; allowed keys: {', '.join(_RISK_LIMIT_KEYS)}, "
            "or a [risk.<strategy>] table of overrides"
        )
    return value


class RiskConfig(RiskLimitsConfig):
    """The ``[risk]`` table: limits for every strategy, and ``[risk.<strategy>]`` tables overriding some of them.

    Example: ``[risk]`` ``daily_loss_limit_usdt = 25`` then ``[risk.rsi_reversion]`` ``daily_loss_limit_usdt = 15``.
    """

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)
    __pydantic_extra__: dict[str, Annotated[RiskLimitsConfig, BeforeValidator(_check_override_table)]] = Field(
        init=False
    )

    @model_validator(mode="before")
    @classmethod
    def _mark_unknown_scalars(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        return {
            key: _NotATable(key) if key not in _RISK_LIMIT_KEYS and not isinstance(value, Mapping) else value
            for key, value in data.items()
        }

    @property
    def defaults(self) -> RiskLimitsConfig:
        """The ``[risk]`` limits without any strategy's overrides."""
        return RiskLimitsConfig(**{name: getattr(self, name) for name in _RISK_LIMIT_KEYS})

    @property
    def overrides(self) -> dict[str, RiskLimitsConfig]:
        """Each ``[risk.<strategy>]`` table, by strategy name."""
        return dict(self.__pydantic_extra__ or {})

    def limits_for(self, strategy: str) -> RiskLimitsConfig:
        """The ``[risk]`` limits with ``strategy``'s overrides applied (what the risk engine should use for it)."""
        limits = {name: getattr(self, name) for name in _RISK_LIMIT_KEYS}
        override = self.overrides.get(strategy)
        if override is not None:
            limits.update(override.model_dump(exclude_none=True))
        return RiskLimitsConfig(**limits)


class SymbolsConfig(_StrictModel):
    """The whole ``symbols.toml``: ``[[symbols]]`` entries and the ``[risk]`` table."""

    symbols: Annotated[list[SymbolConfig], Field(min_length=1)]
    risk: RiskConfig = Field(default_factory=RiskConfig)

    @model_validator(mode="after")
    def _check_consistency(self) -> SymbolsConfig:
        problems: list[tuple[str, str]] = []
        first_index: dict[str, int] = {}
        for index, entry in enumerate(self.symbols):
            if entry.symbol in first_index:
                problems.append(
                    (
                        f"symbols[{index}].symbol",
                        f"{entry.symbol} is listed twice (also symbols[{first_index[entry.symbol]}]); "
                        "put all its strategies in one entry",
                    )
                )
            first_index.setdefault(entry.symbol, index)
        in_use = self.strategy_names()
        for name in self.risk.overrides:
            if name not in in_use:
                problems.append(
                    (
                        f"risk.{name}",
                        f"no symbol runs a strategy named {name!r} (strategies in use: {', '.join(sorted(in_use))})",
                    )
                )
        for symbol_index, entry in enumerate(self.symbols):
            for strategy_index, strategy in enumerate(entry.strategies):
                limit = self.risk.limits_for(strategy.name).max_symbol_exposure_usdt
                fixed = strategy.sizing.mode is SizingMode.FIXED_NOTIONAL
                if fixed and limit is not None and strategy.sizing.value > limit:
                    problems.append(
                        (
                            f"symbols[{symbol_index}].strategies[{strategy_index}].sizing.value",
                            f"{strategy.sizing.value} USDT is above max_symbol_exposure_usdt ({limit}) for "
                            f"{strategy.name}, so no entry could pass the risk check",
                        )
                    )
        if problems:
            raise FieldProblems(problems)
        return self

    def strategy_names(self) -> set[str]:
        """Every strategy name used on at least one symbol."""
        return {strategy.name for entry in self.symbols for strategy in entry.strategies}

    def symbol(self, symbol: str) -> SymbolConfig:
        """The entry for ``symbol``; ``KeyError`` when it is not configured."""
        for entry in self.symbols:
            if entry.symbol == symbol:
                return entry
        raise KeyError(symbol)


def parse_symbols(
    data: Mapping[str, Any], *, source: str = "symbols.toml"
) -> tuple[SymbolsConfig | None, list[ConfigProblem]]:
    """Validate already-parsed TOML; returns the config, or ``None`` and one problem per bad field."""
    try:
        return SymbolsConfig.model_validate(data), []
    except ValidationError as error:
        problems = problems_from_validation_error(error, source=source, root=SymbolsConfig)
    return None, problems


def read_symbols_file(path: Path) -> tuple[SymbolsConfig | None, list[ConfigProblem]]:
    """Read and validate a ``symbols.toml``; returns the config, or ``None`` and every problem found."""
    source = str(path)
    if not path.is_file():
        return None, [ConfigProblem(source, "SYMBOLS_FILE", f"no such file: {path}; set SYMBOLS_FILE or create it")]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        return None, [ConfigProblem(source, "", f"not valid TOML: {error}")]
    except (OSError, UnicodeDecodeError) as error:
        return None, [ConfigProblem(source, "", f"cannot be read: {type(error).__name__}: {error}")]
    return parse_symbols(data, source=source)


def load_symbols(path: Path | str) -> SymbolsConfig:
    """Read and validate a ``symbols.toml`` on its own; raises :class:`ConfigError` listing every problem."""
    config, problems = read_symbols_file(Path(path))
    if problems or config is None:
        raise ConfigError(problems)
    return config
