"""Runtime settings from the environment and ``.env``: every setting, its type, default and allowed values.

Every setting is documented in ``docs/configuration.md``; ``config/loader.py`` reads them together with
``symbols.toml`` and the API keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from config.checks import number_in_range, one_of
from config.problems import FieldProblems, allowed_keys, show_value
from utils.domain import PositionMode
from utils.secrets import mask_database_url, mask_secret

DEFAULT_ENV_FILE = Path(".env")
DEFAULT_APIKEY_FILE = Path(".apikey")
DEFAULT_SYMBOLS_FILE = Path("config/symbols.toml")


class Mode(StrEnum):
    """Where orders go: the built-in simulator, Binance's demo (testnet) exchange, or the real one."""

    SIM = "sim"
    TESTNET = "testnet"
    MAINNET = "mainnet"


class MarketData(StrEnum):
    """Where candles and mark prices come from: recorded files (sim only) or Binance's live streams."""

    REPLAY = "replay"
    LIVE = "live"


class ForeignOrders(StrEnum):
    """What reconciliation does with open orders on our symbols that this bot did not place."""

    LEAVE = "leave"  # record them as external and leave them alone
    CANCEL = "cancel"  # cancel them


class LogFormat(StrEnum):
    """How the console log looks: compact lines for people, or JSON objects for log shippers (the file is JSON)."""

    TEXT = "text"
    JSON = "json"


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
#: Binance's spot host, where a key's permissions can be read (``/sapi/v1/account/apiRestrictions``).
MAINNET_SAPI_URL = "https://api.binance.com"
MAINNET_HOSTS = frozenset({"fapi.binance.com", "fstream.binance.com", "api.binance.com"})
TESTNET_HOSTS = frozenset(
    {"demo-fapi.binance.com", "demo-fstream.binance.com", "testnet.binancefuture.com", "fstream.binancefuture.com"}
)


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


#: URL schemes of the backends the bot supports (SQLite, and PostgreSQL through the installed psycopg 3 driver).
DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg")
_DATABASE_EXAMPLES = "sqlite:///./database/trader.db or postgresql+psycopg://user:password@host:5432/db"


def _check_database_url(value: Any) -> Any:
    text = value.strip() if isinstance(value, str) else None
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text) if text else None
    shown = show_value(mask_database_url(value) if isinstance(value, str) else value)
    if text is None or match is None:
        raise ValueError(f"must be a database URL such as {_DATABASE_EXAMPLES} (got {shown})")
    if match.group(1).lower() not in DATABASE_SCHEMES:
        raise ValueError(
            f"unsupported database {match.group(1)}:// (got {shown}); the bot stores its state in SQLite or "
            f"PostgreSQL: use {_DATABASE_EXAMPLES}"
        )
    return text


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


_MARKET_DATA_NAME = "MARKET_DATA"
#: The exact MAINNET_CONFIRM value without which MODE=mainnet refuses to start (real money).
MAINNET_CONFIRMATION = "I-UNDERSTAND-REAL-MONEY"
SECRET_FIELDS = frozenset({"binance_api_key", "binance_api_secret"})


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
    ws_silence_sec: Annotated[float, number_in_range("float", above=0, maximum=3600)] = 10.0
    rest_timeout_sec: Annotated[float, number_in_range("float", above=0, maximum=300)] = 10.0
    exchange_info_refresh_sec: Annotated[float, number_in_range("float", above=0, maximum=86400)] = 900.0
    unknown_outcome_window_sec: Annotated[int, number_in_range("int", minimum=30, maximum=3600)] = 30
    foreign_orders: Annotated[ForeignOrders, one_of(ForeignOrders, case="lower")] = ForeignOrders.LEAVE
    db_url: Annotated[str, BeforeValidator(_check_database_url)] = "sqlite:///./database/trader.db"
    log_level: Annotated[LogLevel, one_of(LogLevel, case="upper")] = LogLevel.INFO
    log_dir: Path = Path("logs")
    log_format: Annotated[LogFormat, one_of(LogFormat, case="lower")] = LogFormat.TEXT
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
    sapi_base_url_override: Annotated[str | None, BeforeValidator(_url_checker(("https", "http")))] = Field(
        default=None, validation_alias=AliasChoices("SAPI_BASE_URL", "sapi_base_url_override")
    )
    binance_api_key: Annotated[SecretStr | None, BeforeValidator(_empty_to_none)] = None
    binance_api_secret: Annotated[SecretStr | None, BeforeValidator(_empty_to_none)] = None
    apikey_file: Path = DEFAULT_APIKEY_FILE
    mainnet_confirm: Annotated[str | None, BeforeValidator(_empty_to_none)] = None

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
            ("SAPI_BASE_URL", self.sapi_base_url_override),
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
    def sapi_base_url(self) -> str | None:
        """Where the key's permissions are read (``GET /sapi/v1/account/apiRestrictions``): ``SAPI_BASE_URL`` if set;
        else Binance's spot host in mainnet with the default REST URL; else nowhere (the demo hosts have no such
        endpoint, and a REST override means another exchange: the simulator, a proxy)."""
        if self.sapi_base_url_override:
            return self.sapi_base_url_override
        if self.mode is Mode.MAINNET and not self.rest_base_url_override:
            return MAINNET_SAPI_URL
        return None

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
    def mainnet_confirmed(self) -> bool:
        """``MAINNET_CONFIRM`` carries the exact confirmation (``MODE=mainnet`` refuses to trade without it)."""
        return self.mainnet_confirm == MAINNET_CONFIRMATION

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
            "WS_SILENCE_SEC": self.ws_silence_sec,
            "REST_TIMEOUT_SEC": self.rest_timeout_sec,
            "EXCHANGE_INFO_REFRESH_SEC": self.exchange_info_refresh_sec,
            "UNKNOWN_OUTCOME_WINDOW_SEC": self.unknown_outcome_window_sec,
            "FOREIGN_ORDERS": self.foreign_orders.value,
            "DB_URL": mask_database_url(self.db_url),
            "LOG_LEVEL": self.log_level.value,
            "LOG_DIR": str(self.log_dir),
            "LOG_FORMAT": self.log_format.value,
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
            "MAINNET_CONFIRM": self.mainnet_confirm,
        }


def setting_names() -> list[str]:
    """Every environment name :class:`Settings` reads."""
    return [name.upper() for name in allowed_keys(Settings)]
