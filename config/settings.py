"""Runtime settings from the environment and ``.env``, assembled with symbols and API keys into one checked AppConfig.

``load_config()`` is the entry point: it reads every source, collects every problem (bad settings, bad
``symbols.toml`` entries, missing or unprotected API keys) and raises ONE :class:`ConfigError` naming each bad
field and its allowed values. Every setting is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from utils.domain import PositionMode
from utils.log import register_secret
from utils.secrets import (
    API_KEY_NAME,
    API_SECRET_NAME,
    ApiKeyFileError,
    ApiKeys,
    mask_secret,
    permission_problem,
    read_apikey_file,
)

if TYPE_CHECKING:
    from config.symbols import RiskConfig, SymbolConfig, SymbolsConfig

DEFAULT_ENV_FILE = Path(".env")
DEFAULT_APIKEY_FILE = Path(".apikey")
DEFAULT_SYMBOLS_FILE = Path("config/symbols.toml")
DOCS_HINT = "See docs/configuration.md for every setting, its default and its allowed values."
SETTINGS_SOURCE = "environment"


# --------------------------------------------------------------------------------------------------- enums


class Mode(StrEnum):
    """Where orders go: the built-in simulator, Binance's demo (testnet) exchange, or the real one."""

    SIM = "sim"
    TESTNET = "testnet"
    MAINNET = "mainnet"


class MarketData(StrEnum):
    """Where candles and mark prices come from: recorded files (sim only) or Binance's live streams."""

    REPLAY = "replay"
    LIVE = "live"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


@dataclass(frozen=True, slots=True)
class Endpoints:
    rest_base_url: str
    ws_market_url: str
    ws_private_url: str


MAINNET_ENDPOINTS = Endpoints(
    rest_base_url="https://fapi.binance.com",
    ws_market_url="wss://fstream.binance.com/market",
    ws_private_url="wss://fstream.binance.com/private",
)
TESTNET_ENDPOINTS = Endpoints(
    rest_base_url="https://demo-fapi.binance.com",
    ws_market_url="wss://demo-fstream.binance.com/market",
    ws_private_url="wss://demo-fstream.binance.com/private",
)
MAINNET_HOSTS = frozenset({"fapi.binance.com", "fstream.binance.com"})
TESTNET_HOSTS = frozenset(
    {"demo-fapi.binance.com", "demo-fstream.binance.com", "testnet.binancefuture.com", "fstream.binancefuture.com"}
)


# -------------------------------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One bad value: where it came from (``source``), which field (``field``, may be empty) and what is wrong."""

    source: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ConfigError(Exception):
    """Configuration that cannot be used; the message lists every problem, grouped by where it came from."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.problems)
        lines = [f"invalid configuration: {count} problem{'s' if count != 1 else ''}"]
        sources: dict[str, list[ConfigProblem]] = {}
        for problem in self.problems:
            sources.setdefault(problem.source, []).append(problem)
        for source, problems in sources.items():
            lines.append(f"  {source}:")
            lines.extend(f"    - {problem}" for problem in problems)
        lines.append(DOCS_HINT)
        return "\n".join(lines)


class FieldProblems(ValueError):
    """Raised by a validator that checks several fields at once; each entry is (field path, message).

    The field path is appended to the location of the model that raised it (``""`` means the model itself).
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{field}: {message}" if field else message for field, message in self.problems))


def show_value(value: object, limit: int = 60) -> str:
    """A short, quoted rendering of a bad input for an error message."""
    text = repr(value) if isinstance(value, str) else str(value)
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, list | tuple):
        text = "a list"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_location(location: Iterable[str | int], *, upper_first: bool = False) -> str:
    """``("symbols", 1, "leverage")`` -> ``symbols[1].leverage``; ``upper_first`` uppercases a leading setting name."""
    text = ""
    for index, part in enumerate(location):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part.upper() if upper_first and index == 0 else part
            text += f".{name}" if text else name
    return text


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            annotation = options[0] if len(options) == 1 else next(
                (arg for arg in options if typing.get_origin(arg) or _is_model(arg)), options[0]
            )
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_at(root: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class found by walking ``path`` (field names, list indexes, dict keys) down from ``root``."""
    annotation: Any = root
    for part in path:
        annotation = _unwrap(annotation)
        if _is_model(annotation):
            field_name = _field_for_key(annotation, part)
            if field_name is not None:
                annotation = annotation.model_fields[field_name].annotation
            else:
                annotation = _extra_value_type(annotation)
                if annotation is None:
                    return None
            continue
        origin = typing.get_origin(annotation)
        arguments = typing.get_args(annotation)
        if origin in (list, tuple, set, frozenset, Sequence) and isinstance(part, int) and arguments:
            annotation = arguments[0]
        elif origin in (dict, Mapping) and len(arguments) == 2:
            annotation = arguments[1]
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if _is_model(annotation) else None


def _extra_value_type(model: type[BaseModel]) -> Any:
    """The declared type of a model's extra values (``__pydantic_extra__: dict[str, X]``), else None."""
    if model.model_config.get("extra") != "allow":
        return None
    try:
        hints = typing.get_type_hints(model, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable hints just mean "no extra type"
        return None
    arguments = typing.get_args(hints.get("__pydantic_extra__"))
    return arguments[1] if len(arguments) == 2 else None


def allowed_keys(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts (the first alias when it has aliases, else the field name)."""
    keys = []
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            keys.append(str(alias.choices[0]))
        elif isinstance(alias, str):
            keys.append(alias)
        else:
            keys.append(name)
    return keys


def _field_for_key(model: type[BaseModel], key: str | int) -> str | None:
    if not isinstance(key, str):
        return None
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        names = {name}
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias)
        if key.lower() in {candidate.lower() for candidate in names}:
            return name
    return None


_TYPE_MESSAGES = {
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "decimal_parsing": "must be a number",
    "decimal_type": "must be a number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "path_type": "must be a file or folder path",
}


def problems_from_validation_error(
    error: ValidationError,
    *,
    source: str,
    root: type[BaseModel],
    prefix: Sequence[str | int] = (),
    upper_first: bool = False,
    hidden_fields: frozenset[str] = frozenset(),
) -> list[ConfigProblem]:
    """Translate pydantic's errors into one readable :class:`ConfigProblem` per bad field.

    ``hidden_fields`` (lower-case top-level names) never have their input shown: they hold secrets.
    """
    problems: list[ConfigProblem] = []
    for item in error.errors(include_url=False):
        location = tuple(prefix) + tuple(item["loc"])
        context = item.get("ctx") or {}
        cause = context.get("error")
        if isinstance(cause, FieldProblems):
            for suffix, message in cause.problems:
                path = location + tuple(part for part in suffix.split(".") if part) if suffix else location
                problems.append(ConfigProblem(source, render_location(path, upper_first=upper_first), message))
            continue
        field = render_location(location, upper_first=upper_first)
        hide_input = bool(item["loc"]) and str(item["loc"][0]).lower() in hidden_fields
        message = _describe(item, root, hide_input=hide_input, upper_keys=upper_first and len(item["loc"]) == 1)
        problems.append(ConfigProblem(source, field, message))
    return problems


def _describe(item: Mapping[str, Any], root: type[BaseModel], *, hide_input: bool, upper_keys: bool) -> str:
    kind = item["type"]
    context = item.get("ctx") or {}
    got = "" if hide_input else f" (got {show_value(item.get('input'))})"
    if kind in ("value_error", "assertion_error") and context.get("error") is not None:
        return str(context["error"])
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        location = item["loc"]
        model = _model_at(root, location[:-1])
        if model is None:
            return "unknown key"
        keys = [key.upper() for key in allowed_keys(model)] if upper_keys else allowed_keys(model)
        unknown = str(location[-1])
        close = difflib.get_close_matches(unknown.lower(), [key.lower() for key in keys], n=1, cutoff=0.6)
        hint = ""
        if close:
            hint = f" (did you mean {next(key for key in keys if key.lower() == close[0])}?)"
        what = "setting" if upper_keys else "key"
        return f"unknown {what}{hint}; allowed {what}s: {', '.join(keys)}"
    if kind == "too_short":
        minimum = context.get("min_length", 1)
        return f"must have at least {minimum} entr{'y' if minimum == 1 else 'ies'}"
    if kind == "literal_error":
        return f"must be one of {context.get('expected')}{got}"
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind] + got
    return f"{item['msg']}{got}"


# --------------------------------------------------------------------------------------- value validators


def _describe_range(minimum: Decimal | int | None, maximum: Decimal | int | None, above: Decimal | int | None) -> str:
    lower = f"greater than {above}" if above is not None else (f"at least {minimum}" if minimum is not None else "")
    if maximum is None:
        return lower
    if minimum is not None and above is None:
        return f"between {minimum} and {maximum}"
    return f"{lower} and at most {maximum}" if lower else f"at most {maximum}"


def number_in_range(
    kind: Literal["int", "decimal", "float"],
    *,
    minimum: int | str | None = None,
    maximum: int | str | None = None,
    above: int | str | None = None,
    optional: bool = False,
) -> BeforeValidator:
    """A validator that parses a whole number / Decimal / float and checks its range with a self-explaining message.

    ``minimum`` and ``maximum`` are inclusive, ``above`` is exclusive. Messages read
    ``must be between 1 and 125 (got 200)`` or ``must be a whole number between 1 and 60000 (got 'abc')``.
    ``optional`` lets ``None`` through (use it on ``X | None`` fields).
    """
    low = Decimal(str(minimum)) if minimum is not None else None
    high = Decimal(str(maximum)) if maximum is not None else None
    strictly_above = Decimal(str(above)) if above is not None else None
    range_text = _describe_range(minimum, maximum, above)
    noun = "a whole number" if kind == "int" else "a number"

    def parse(value: Any) -> Decimal | None:
        if isinstance(value, bool):
            return None
        try:
            if isinstance(value, str):
                text = value.strip()
                if kind == "int" and not re.fullmatch(r"[+-]?\d+", text):
                    return None
                number = Decimal(text)
            elif isinstance(value, Decimal | int):
                number = Decimal(value)
            elif isinstance(value, float):
                number = Decimal(str(value))
            else:
                return None
        except InvalidOperation:
            return None
        if not number.is_finite():
            return None
        if kind == "int" and number != number.to_integral_value():
            return None
        return number

    def validate(value: Any) -> Any:
        if value is None and optional:
            return None
        number = parse(value)
        if number is None:
            raise ValueError(f"must be {noun} {range_text} (got {show_value(value)})".replace("  ", " "))
        too_low = (low is not None and number < low) or (strictly_above is not None and number <= strictly_above)
        too_high = high is not None and number > high
        if too_low or too_high:
            raise ValueError(f"must be {range_text} (got {show_value(number)})")
        if kind == "int":
            return int(number)
        if kind == "float":
            return float(number)
        return number

    return BeforeValidator(validate)


def one_of(choices: type[StrEnum], *, case: Literal["lower", "upper", "exact"] = "exact") -> BeforeValidator:
    """A validator accepting one of an enum's values (case-folded as asked): ``must be one of a, b, c (got 'x')``."""
    values = [member.value for member in choices]

    def validate(value: Any) -> Any:
        if isinstance(value, choices):
            return value
        if isinstance(value, str):
            text = value.strip()
            text = text.lower() if case == "lower" else text.upper() if case == "upper" else text
            if text in values:
                return choices(text)
        raise ValueError(f"must be one of {', '.join(values)} (got {show_value(value)})")

    return BeforeValidator(validate)


def _empty_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _split_paths(value: Any) -> Any:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(Path(part.strip()) for part in value.split(",") if part.strip())
    return value


def mask_database_url(url: str) -> str:
    """Hide the password in a database URL: ``postgresql://bot:****@host/db``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1****@", url)


def _database_password(url: str) -> str | None:
    match = re.search(r"://[^:/@]*:([^@]*)@", url)
    return match.group(1) if match and match.group(1) else None


def _check_database_url(value: Any) -> Any:
    if isinstance(value, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value.strip()):
        return value.strip()
    shown = show_value(mask_database_url(value) if isinstance(value, str) else value)
    raise ValueError(
        "must be a database URL such as sqlite:///./database/trader.db or postgresql+psycopg://user@host/db "
        f"(got {shown})"
    )


def _url_checker(schemes: tuple[str, ...]) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            text = value.strip().rstrip("/")
            parts = urlsplit(text)
            if parts.scheme in schemes and parts.netloc:
                return text
        allowed = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"must be a URL starting with {allowed} (got {show_value(value)})")

    return validate


# ------------------------------------------------------------------------------------------------ settings

_MARKET_DATA_NAME = "MARKET_DATA"
_SECRET_FIELDS = frozenset({"binance_api_key", "binance_api_secret"})


class Settings(BaseSettings):
    """Every runtime setting, read from the environment (first) and ``.env`` (second); names are case-insensitive.

    Network endpoints follow ``MODE`` unless overridden: use the ``rest_base_url``, ``ws_market_url`` and
    ``ws_private_url`` properties, which are ``None`` where the mode needs no network.
    """

    model_config = SettingsConfigDict(
        env_file=DEFAULT_ENV_FILE,
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="forbid",
        env_ignore_empty=True,
        frozen=True,
        hide_input_in_errors=True,
    )

    mode: Annotated[Mode, one_of(Mode, case="lower")] = Mode.SIM
    recv_window_ms: Annotated[int, number_in_range("int", minimum=1, maximum=60000)] = 5000
    ws_max_backoff_sec: Annotated[float, number_in_range("float", above=0, maximum=3600)] = 60.0
    db_url: Annotated[str, BeforeValidator(_check_database_url)] = "sqlite:///./database/trader.db"
    log_level: Annotated[LogLevel, one_of(LogLevel, case="upper")] = LogLevel.INFO
    log_dir: Path = Path("logs")
    position_mode: Annotated[PositionMode, one_of(PositionMode, case="upper")] = PositionMode.ONEWAY
    symbols_file: Path = DEFAULT_SYMBOLS_FILE
    status_dir: Path = Path("status")
    heartbeat_interval_sec: Annotated[float, number_in_range("float", above=0, maximum=3600)] = 5.0
    sim_data: Annotated[tuple[Path, ...], NoDecode, BeforeValidator(_split_paths)] = ()
    sim_speed: Annotated[float, number_in_range("float", minimum=0)] = 0.0
    sim_start_balance: Annotated[Decimal, number_in_range("decimal", above=0)] = Decimal(10000)
    market_data: Annotated[MarketData, one_of(MarketData, case="lower")] = MarketData.REPLAY
    rest_base_url_override: Annotated[str | None, BeforeValidator(_url_checker(("https", "http")))] = Field(
        default=None, validation_alias=AliasChoices("REST_BASE_URL", "rest_base_url_override")
    )
    ws_market_url_override: Annotated[str | None, BeforeValidator(_url_checker(("wss", "ws")))] = Field(
        default=None, validation_alias=AliasChoices("WS_MARKET_URL", "ws_market_url_override")
    )
    ws_private_url_override: Annotated[str | None, BeforeValidator(_url_checker(("wss", "ws")))] = Field(
        default=None, validation_alias=AliasChoices("WS_PRIVATE_URL", "ws_private_url_override")
    )
    binance_api_key: Annotated[SecretStr | None, BeforeValidator(_empty_to_none)] = None
    binance_api_secret: Annotated[SecretStr | None, BeforeValidator(_empty_to_none)] = None
    apikey_file: Path = DEFAULT_APIKEY_FILE

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        problems: list[tuple[str, str]] = []
        if self.mode is not Mode.SIM:
            if "market_data" in self.model_fields_set and self.market_data is MarketData.REPLAY:
                problems.append(
                    (
                        _MARKET_DATA_NAME,
                        f"replay is only allowed with MODE=sim (got MODE={self.mode.value}); "
                        "use MARKET_DATA=live or leave it unset",
                    )
                )
            else:
                object.__setattr__(self, "market_data", MarketData.LIVE)
        for name, url in (
            ("REST_BASE_URL", self.rest_base_url_override),
            ("WS_MARKET_URL", self.ws_market_url_override),
            ("WS_PRIVATE_URL", self.ws_private_url_override),
        ):
            host = urlsplit(url).hostname if url else None
            if host is None:
                continue
            if self.mode is Mode.TESTNET and host in MAINNET_HOSTS:
                problems.append((name, f"points at mainnet ({host}) but MODE=testnet; unset it or use a testnet URL"))
            elif self.mode is Mode.MAINNET and host in TESTNET_HOSTS:
                problems.append(
                    (name, f"points at the testnet ({host}) but MODE=mainnet; unset it or use MODE=testnet")
                )
            elif self.mode is Mode.SIM and name != "WS_MARKET_URL" and host in MAINNET_HOSTS | TESTNET_HOSTS:
                problems.append(
                    (name, f"points at Binance ({host}) but MODE=sim never sends orders to Binance; unset it")
                )
        if problems:
            raise FieldProblems(problems)
        return self

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (mask_database_url(value) if name == "db_url" and isinstance(value, str) else value)

    # -- endpoints -----------------------------------------------------------------------------------------

    @property
    def endpoints(self) -> Endpoints | None:
        """Binance's default endpoints for this mode (``None`` in sim mode)."""
        return {Mode.MAINNET: MAINNET_ENDPOINTS, Mode.TESTNET: TESTNET_ENDPOINTS}.get(self.mode)

    @property
    def rest_base_url(self) -> str | None:
        """REST base URL: ``REST_BASE_URL`` if set, else the mode's default; ``None`` in sim mode."""
        if self.rest_base_url_override:
            return self.rest_base_url_override
        return self.endpoints.rest_base_url if self.endpoints else None

    @property
    def ws_market_url(self) -> str | None:
        """Market-data WebSocket route (``.../market``): override, else the mode's default.

        In sim mode it is ``None`` for replayed data and mainnet's public market route for ``MARKET_DATA=live``
        (public data needs no API key and sends no orders).
        """
        if self.ws_market_url_override:
            return self.ws_market_url_override
        if self.endpoints:
            return self.endpoints.ws_market_url
        return MAINNET_ENDPOINTS.ws_market_url if self.market_data is MarketData.LIVE else None

    @property
    def ws_private_url(self) -> str | None:
        """User-data WebSocket route (``.../private``): override, else the mode's default; ``None`` in sim mode."""
        if self.ws_private_url_override:
            return self.ws_private_url_override
        return self.endpoints.ws_private_url if self.endpoints else None

    @property
    def requires_api_keys(self) -> bool:
        return self.mode is not Mode.SIM

    # -- display -------------------------------------------------------------------------------------------

    def masked(self) -> dict[str, Any]:
        """Every setting by its environment name, as JSON-friendly values, with secrets masked."""
        return {
            "MODE": self.mode.value,
            "RECV_WINDOW_MS": self.recv_window_ms,
            "WS_MAX_BACKOFF_SEC": self.ws_max_backoff_sec,
            "DB_URL": mask_database_url(self.db_url),
            "LOG_LEVEL": self.log_level.value,
            "LOG_DIR": str(self.log_dir),
            "POSITION_MODE": self.position_mode.value,
            "SYMBOLS_FILE": str(self.symbols_file),
            "STATUS_DIR": str(self.status_dir),
            "HEARTBEAT_INTERVAL_SEC": self.heartbeat_interval_sec,
            "SIM_DATA": [str(path) for path in self.sim_data],
            "SIM_SPEED": self.sim_speed,
            "SIM_START_BALANCE": str(self.sim_start_balance),
            "MARKET_DATA": self.market_data.value,
            "REST_BASE_URL": self.rest_base_url,
            "WS_MARKET_URL": self.ws_market_url,
            "WS_PRIVATE_URL": self.ws_private_url,
            "BINANCE_API_KEY": mask_secret(self.binance_api_key, show_last=4),
            "BINANCE_API_SECRET": mask_secret(self.binance_api_secret),
            "APIKEY_FILE": str(self.apikey_file),
        }


def setting_names() -> list[str]:
    """Every environment name :class:`Settings` reads."""
    return [name.upper() for name in allowed_keys(Settings)]


# ------------------------------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class AppConfig:
    """Everything the bot needs to start: settings, symbols with their strategies, risk limits, and API keys."""

    settings: Settings
    symbols_config: SymbolsConfig
    api_keys: ApiKeys | None

    @property
    def symbols(self) -> tuple[SymbolConfig, ...]:
        return tuple(self.symbols_config.symbols)

    @property
    def risk(self) -> RiskConfig:
        return self.symbols_config.risk

    def masked_summary(self) -> dict[str, Any]:
        """A JSON-friendly view for printing at start-up and for status files: secrets appear only as ``****``."""
        keys = None
        if self.api_keys is not None:
            keys = {
                API_KEY_NAME: mask_secret(self.api_keys.api_key, show_last=4),
                API_SECRET_NAME: mask_secret(self.api_keys.api_secret),
                "source": self.api_keys.source,
            }
        return {
            "settings": self.settings.masked(),
            "api_keys": keys,
            "symbols": [symbol.model_dump(mode="json") for symbol in self.symbols_config.symbols],
            "risk": {
                "defaults": self.risk.defaults.model_dump(mode="json"),
                "strategies": {
                    name: self.risk.limits_for(name).model_dump(mode="json")
                    for name in sorted(self.symbols_config.strategy_names())
                },
            },
        }


def _settings_source(env_file: Path | None) -> str:
    if env_file is not None and env_file.is_file():
        return f"{SETTINGS_SOURCE} and {env_file}"
    return SETTINGS_SOURCE


def _read_dotenv(env_file: Path | None) -> dict[str, str]:
    """The ``.env`` file's values by upper-case name (empty when there is no file)."""
    if env_file is None or not env_file.is_file():
        return {}
    from dotenv import dotenv_values  # python-dotenv ships with pydantic-settings

    return {name.upper(): value for name, value in dotenv_values(env_file).items() if value is not None}


def _raw_setting(name: str, env_file: Path | None) -> str | None:
    """A setting's raw text (environment first, then ``.env``), for use when the settings as a whole are invalid."""
    for key, value in os.environ.items():
        if key.upper() == name and value.strip():
            return value.strip()
    value = _read_dotenv(env_file).get(name)
    return value.strip() if value and value.strip() else None


def _dotenv_permission_problems(env_file: Path | None) -> list[ConfigProblem]:
    """A ``.env`` that holds API keys must be as private as ``.apikey``."""
    values = _read_dotenv(env_file)
    if env_file is None or not (values.get(API_KEY_NAME) or values.get(API_SECRET_NAME)):
        return []
    problem = permission_problem(env_file)
    return [ConfigProblem(str(env_file), "", problem)] if problem else []


def _load_api_keys(
    mode: Mode, environment_key: SecretStr | None, environment_secret: SecretStr | None, apikey_file: Path
) -> tuple[ApiKeys | None, list[ConfigProblem]]:
    """Keys from the environment where set, else from ``apikey_file``; only testnet and mainnet require them."""
    if environment_key is not None and environment_secret is not None:
        return ApiKeys(environment_key, environment_secret, SETTINGS_SOURCE), []
    if mode is Mode.SIM:
        return None, []
    source = str(apikey_file)
    need = f"required when MODE={mode.value}"
    if not apikey_file.is_file():
        given = ((API_KEY_NAME, environment_key), (API_SECRET_NAME, environment_secret))
        missing = [name for name, value in given if value is None]
        return None, [
            ConfigProblem(
                source,
                ", ".join(missing),
                f"{need}: set {' and '.join(missing)} in the environment or create {apikey_file} with "
                f"{API_KEY_NAME}=... and {API_SECRET_NAME}=... lines, then chmod 600 {apikey_file}",
            )
        ]
    try:
        file_values = read_apikey_file(apikey_file)
    except ApiKeyFileError as error:
        return None, [ConfigProblem(source, "", problem) for problem in error.problems]
    for value in file_values.values():
        register_secret(value)
    api_key = environment_key or file_values.get(API_KEY_NAME)
    api_secret = environment_secret or file_values.get(API_SECRET_NAME)
    problems = [
        ConfigProblem(source, name, f"{need}; set it in the environment or in {apikey_file}")
        for name, value in ((API_KEY_NAME, api_key), (API_SECRET_NAME, api_secret))
        if value is None
    ]
    if problems or api_key is None or api_secret is None:
        return None, problems
    origin = source if environment_key is None and environment_secret is None else f"{SETTINGS_SOURCE} and {source}"
    return ApiKeys(api_key, api_secret, origin), []


def load_config(
    env_file: Path | str | None = DEFAULT_ENV_FILE,
    symbols_file: Path | str | None = None,
    apikey_file: Path | str | None = None,
) -> AppConfig:
    """Read and check every configuration source; raise ONE :class:`ConfigError` listing every problem found.

    ``env_file``: the ``.env`` to read (``None``: environment only). ``symbols_file`` / ``apikey_file`` override
    ``SYMBOLS_FILE`` / ``APIKEY_FILE``. Relative paths are relative to the working directory (the repo root).
    On success the API key and secret (and a database password) are registered with the log redaction filter.
    """
    from config.symbols import read_symbols_file  # here, not at the top: config.symbols uses this module's helpers

    env_path = Path(env_file) if env_file is not None else None
    problems: list[ConfigProblem] = []

    settings: Settings | None = None
    try:
        settings = Settings(_env_file=env_path)  # type: ignore[call-arg] - pydantic-settings' own keyword
    except ValidationError as error:
        problems.extend(
            problems_from_validation_error(
                error, source=_settings_source(env_path), root=Settings, upper_first=True, hidden_fields=_SECRET_FIELDS
            )
        )
    # ConfigError is raised outside this except block, so it never chains pydantic's error (which shows inputs).

    if settings is not None:
        mode: Mode | None = settings.mode
        symbols_path = Path(symbols_file) if symbols_file is not None else settings.symbols_file
        apikey_path = Path(apikey_file) if apikey_file is not None else settings.apikey_file
        register_secret(settings.binance_api_key)
        register_secret(settings.binance_api_secret)
        register_secret(_database_password(settings.db_url))
    else:
        raw_mode = (_raw_setting("MODE", env_path) or Mode.SIM.value).lower()
        mode = Mode(raw_mode) if raw_mode in {member.value for member in Mode} else None
        symbols_path = Path(symbols_file or _raw_setting("SYMBOLS_FILE", env_path) or DEFAULT_SYMBOLS_FILE)
        apikey_path = Path(apikey_file or _raw_setting("APIKEY_FILE", env_path) or DEFAULT_APIKEY_FILE)

    symbols_config, symbol_problems = read_symbols_file(symbols_path)
    problems.extend(symbol_problems)

    api_keys: ApiKeys | None = None
    if mode is not None:
        environment_key = settings.binance_api_key if settings is not None else None
        environment_secret = settings.binance_api_secret if settings is not None else None
        if settings is None:
            raw_key, raw_secret = _raw_setting(API_KEY_NAME, env_path), _raw_setting(API_SECRET_NAME, env_path)
            environment_key = SecretStr(raw_key) if raw_key else None
            environment_secret = SecretStr(raw_secret) if raw_secret else None
            register_secret(environment_key)
            register_secret(environment_secret)
        api_keys, key_problems = _load_api_keys(mode, environment_key, environment_secret, apikey_path)
        problems.extend(key_problems)
    problems.extend(_dotenv_permission_problems(env_path))

    if settings is not None:
        for path in settings.sim_data:
            if not path.is_file():
                problems.append(ConfigProblem(_settings_source(env_path), "SIM_DATA", f"no such file: {path}"))

    if problems:
        raise ConfigError(problems)
    assert settings is not None and symbols_config is not None
    if api_keys is not None:
        register_secret(api_keys.api_key)
        register_secret(api_keys.api_secret)
    return AppConfig(settings=settings, symbols_config=symbols_config, api_keys=api_keys)
