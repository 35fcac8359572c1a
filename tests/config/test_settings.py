"""Settings: defaults, environment and .env sources, endpoints per mode, and one readable error per bad value."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from config import ConfigError, MarketData, Mode, Settings, load_config
from config.settings import MAINNET_ENDPOINTS, TESTNET_ENDPOINTS, LogLevel, setting_names
from tests.config.conftest import SHIPPED_SYMBOLS_FILE
from utils.domain import PositionMode


def load_error(env_file: Path | None = None, **kwargs) -> ConfigError:
    kwargs.setdefault("symbols_file", SHIPPED_SYMBOLS_FILE)
    with pytest.raises(ConfigError) as caught:
        load_config(env_file=env_file, **kwargs)
    return caught.value


def test_defaults() -> None:
    settings = Settings(_env_file=None)
    assert settings.mode is Mode.SIM
    assert settings.recv_window_ms == 5000
    assert settings.ws_max_backoff_sec == 60
    assert settings.db_url == "sqlite:///./database/trader.db"
    assert settings.log_level is LogLevel.INFO
    assert settings.log_dir == Path("logs")
    assert settings.position_mode is PositionMode.ONEWAY
    assert settings.symbols_file == Path("config/symbols.toml")
    assert settings.status_dir == Path("status")
    assert settings.heartbeat_interval_sec == 5
    assert settings.sim_data == ()
    assert settings.sim_speed == 0
    assert settings.sim_start_balance == Decimal(10000)
    assert settings.market_data is MarketData.REPLAY
    assert settings.binance_api_key is None and settings.binance_api_secret is None
    assert settings.apikey_file == Path(".apikey")
    # sim mode with replayed data needs no network at all
    assert (settings.rest_base_url, settings.ws_market_url, settings.ws_private_url) == (None, None, None)
    assert not settings.requires_api_keys


def test_environment_names_and_values_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("mode", "TESTNET")
    monkeypatch.setenv("Recv_Window_Ms", " 7000 ")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("position_mode", "hedge")
    settings = Settings(_env_file=None)
    assert settings.mode is Mode.TESTNET
    assert settings.recv_window_ms == 7000
    assert settings.log_level is LogLevel.DEBUG
    assert settings.position_mode is PositionMode.HEDGE


def test_dotenv_is_read_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch, write_file) -> None:
    env_file = write_file(".env", "RECV_WINDOW_MS=3000\nSIM_SPEED=60\nSTATUS_DIR=/tmp/status-here\nSIM_DATA=\n")
    monkeypatch.setenv("SIM_SPEED", "10")
    settings = Settings(_env_file=env_file)
    assert settings.recv_window_ms == 3000
    assert settings.sim_speed == 10
    assert settings.status_dir == Path("/tmp/status-here")
    assert settings.sim_data == ()  # empty means default


def test_sim_data_is_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_DATA", "data/a.csv, data/b.csv ,")
    assert Settings(_env_file=None).sim_data == (Path("data/a.csv"), Path("data/b.csv"))


def test_sim_start_balance_is_an_exact_decimal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_START_BALANCE", "1234.56")
    assert Settings(_env_file=None).sim_start_balance == Decimal("1234.56")


@pytest.mark.parametrize(
    ("mode", "endpoints"), [("mainnet", MAINNET_ENDPOINTS), ("testnet", TESTNET_ENDPOINTS)]
)
def test_urls_follow_the_mode(monkeypatch: pytest.MonkeyPatch, mode: str, endpoints) -> None:
    monkeypatch.setenv("MODE", mode)
    settings = Settings(_env_file=None)
    assert settings.rest_base_url == endpoints.rest_base_url
    assert settings.ws_market_url == endpoints.ws_market_url
    assert settings.ws_private_url == endpoints.ws_private_url
    assert settings.ws_market_url.endswith("/market") and settings.ws_private_url.endswith("/private")
    assert settings.market_data is MarketData.LIVE  # the default outside sim
    assert settings.requires_api_keys


def test_mainnet_and_testnet_urls_are_the_documented_ones() -> None:
    assert MAINNET_ENDPOINTS.rest_base_url == "https://fapi.binance.com"
    assert MAINNET_ENDPOINTS.ws_market_url == "wss://fstream.binance.com/market"
    assert MAINNET_ENDPOINTS.ws_private_url == "wss://fstream.binance.com/private"
    assert TESTNET_ENDPOINTS.rest_base_url == "https://demo-fapi.binance.com"
    assert TESTNET_ENDPOINTS.ws_market_url == "wss://demo-fstream.binance.com/market"
    assert TESTNET_ENDPOINTS.ws_private_url == "wss://demo-fstream.binance.com/private"


def test_url_overrides_win_and_lose_a_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE", "testnet")
    monkeypatch.setenv("REST_BASE_URL", "https://testnet.binancefuture.com/")
    monkeypatch.setenv("ws_market_url", "wss://fstream.binancefuture.com/market")
    settings = Settings(_env_file=None)
    assert settings.rest_base_url == "https://testnet.binancefuture.com"
    assert settings.ws_market_url == "wss://fstream.binancefuture.com/market"
    assert settings.ws_private_url == TESTNET_ENDPOINTS.ws_private_url


def test_the_key_permissions_are_read_on_binance_spot_host_only_for_mainnet_itself(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE", "mainnet")
    assert Settings(_env_file=None).sapi_base_url == "https://api.binance.com"
    monkeypatch.setenv("REST_BASE_URL", "http://127.0.0.1:8765")  # another exchange: not asked ...
    assert Settings(_env_file=None).sapi_base_url is None
    monkeypatch.setenv("SAPI_BASE_URL", "http://127.0.0.1:8765/")  # ... unless told where
    assert Settings(_env_file=None).sapi_base_url == "http://127.0.0.1:8765"
    monkeypatch.setenv("MODE", "testnet")
    monkeypatch.delenv("REST_BASE_URL")
    monkeypatch.delenv("SAPI_BASE_URL")
    assert Settings(_env_file=None).sapi_base_url is None  # the demo hosts have no /sapi
    monkeypatch.setenv("SAPI_BASE_URL", "https://api.binance.com")
    with pytest.raises(ValueError, match="SAPI_BASE_URL: points at mainnet"):
        Settings(_env_file=None)


def test_sim_may_point_at_a_local_simulator_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REST_BASE_URL", "http://127.0.0.1:8765")
    monkeypatch.setenv("WS_PRIVATE_URL", "ws://127.0.0.1:8765/private")
    settings = Settings(_env_file=None)
    assert settings.rest_base_url == "http://127.0.0.1:8765"
    assert settings.ws_private_url == "ws://127.0.0.1:8765/private"


def test_sim_with_live_market_data_reads_the_public_mainnet_market_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKET_DATA", "live")
    settings = Settings(_env_file=None)
    assert settings.ws_market_url == MAINNET_ENDPOINTS.ws_market_url
    assert settings.rest_base_url is None and settings.ws_private_url is None


def test_every_documented_setting_name_is_read() -> None:
    assert set(setting_names()) == {
        "MODE", "RECV_WINDOW_MS", "WS_MAX_BACKOFF_SEC", "WS_SILENCE_SEC", "REST_TIMEOUT_SEC",
        "EXCHANGE_INFO_REFRESH_SEC", "UNKNOWN_OUTCOME_WINDOW_SEC", "FOREIGN_ORDERS", "DB_URL", "LOG_LEVEL", "LOG_DIR",
        "LOG_FORMAT",
        "POSITION_MODE",
        "SYMBOLS_FILE", "STATUS_DIR", "HEARTBEAT_INTERVAL_SEC", "SIM_DATA", "SIM_SPEED", "SIM_START_BALANCE",
        "MARKET_DATA", "REST_BASE_URL", "WS_MARKET_URL", "WS_PRIVATE_URL", "SAPI_BASE_URL", "BINANCE_API_KEY",
        "BINANCE_API_SECRET",
        "APIKEY_FILE", "MAINNET_CONFIRM",
    }  # fmt: skip


def test_every_setting_is_in_env_example_and_the_docs() -> None:
    repo_root = SHIPPED_SYMBOLS_FILE.parents[1]
    example = (repo_root / ".env.example").read_text(encoding="utf-8")
    docs = (repo_root / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name in setting_names():
        assert f"\n{name}=" in example, name
        assert f"`{name}`" in docs, name


def test_env_example_loads_as_a_dotenv() -> None:
    repo_root = SHIPPED_SYMBOLS_FILE.parents[1]
    config = load_config(env_file=repo_root / ".env.example", symbols_file=SHIPPED_SYMBOLS_FILE)
    assert config.settings.mode is Mode.SIM


BAD_VALUES = [
    ("MODE", "live", "MODE: must be one of sim, testnet, mainnet (got 'live')"),
    ("RECV_WINDOW_MS", "0", "RECV_WINDOW_MS: must be between 1 and 60000 (got 0)"),
    ("RECV_WINDOW_MS", "60001", "RECV_WINDOW_MS: must be between 1 and 60000 (got 60001)"),
    ("RECV_WINDOW_MS", "5s", "RECV_WINDOW_MS: must be a whole number between 1 and 60000 (got '5s')"),
    ("RECV_WINDOW_MS", "5000.5", "RECV_WINDOW_MS: must be a whole number between 1 and 60000 (got '5000.5')"),
    ("WS_MAX_BACKOFF_SEC", "0", "WS_MAX_BACKOFF_SEC: must be greater than 0 and at most 3600 (got 0)"),
    ("WS_MAX_BACKOFF_SEC", "soon", "WS_MAX_BACKOFF_SEC: must be a number greater than 0 and at most 3600 (got 'soon')"),
    ("DB_URL", "trader.db", "DB_URL: must be a database URL such as sqlite:///./database/trader.db"),
    ("DB_URL", "mysql://bot@db/trader", "DB_URL: unsupported database mysql:// (got 'mysql://bot@db/trader'); the "
     "bot stores its state in SQLite or PostgreSQL: use sqlite:///./database/trader.db or postgresql+psycopg://"),
    ("DB_URL", "postgresql+psycopg2://bot@db/trader", "DB_URL: unsupported database postgresql+psycopg2://"),
    ("LOG_FORMAT", "xml", "LOG_FORMAT: must be one of text, json (got 'xml')"),
    ("LOG_LEVEL", "verbose", "LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (got 'verbose')"),
    ("POSITION_MODE", "BOTH", "POSITION_MODE: must be one of ONEWAY, HEDGE (got 'BOTH')"),
    ("HEARTBEAT_INTERVAL_SEC", "-1", "HEARTBEAT_INTERVAL_SEC: must be greater than 0 and at most 3600 (got -1)"),
    ("SIM_SPEED", "-2", "SIM_SPEED: must be at least 0 (got -2)"),
    ("SIM_SPEED", "fast", "SIM_SPEED: must be a number at least 0 (got 'fast')"),
    ("SIM_START_BALANCE", "0", "SIM_START_BALANCE: must be greater than 0 (got 0)"),
    ("SIM_START_BALANCE", "NaN", "SIM_START_BALANCE: must be a number greater than 0 (got 'NaN')"),
    ("MARKET_DATA", "stream", "MARKET_DATA: must be one of replay, live (got 'stream')"),
    ("REST_BASE_URL", "fapi.binance.com", "REST_BASE_URL: must be a URL starting with https:// or http://"),
    ("WS_MARKET_URL", "https://fstream.binance.com", "WS_MARKET_URL: must be a URL starting with wss:// or ws://"),
    ("WS_PRIVATE_URL", "fstream", "WS_PRIVATE_URL: must be a URL starting with wss:// or ws://"),
]


@pytest.mark.parametrize(("name", "value", "expected"), BAD_VALUES, ids=[f"{n}={v}" for n, v, _ in BAD_VALUES])
def test_each_bad_value_names_the_field_and_the_allowed_values(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    error = load_error()
    assert len(error.problems) == 1, str(error)
    assert expected in str(error)
    assert str(error).startswith("invalid configuration: 1 problem\n")


def test_several_bad_settings_and_symbols_come_in_one_error(write_file) -> None:
    env_file = write_file(".env", "MODE=live\nRECV_WINDOW_MS=70000\nLOG_LEVEL=loud\n")
    symbols_file = write_file(
        "symbols.toml",
        """
[[symbols]]
symbol = "BTCUSDT"
leverage = 5
margin_type = "ISOLATED"
[[symbols.strategies]]
name = "ema_crossover"
sizing = { mode = "fixed_notional", value = 100 }

[[symbols]]
symbol = "ETHUSDT"
leverage = 200
margin_type = "CROSS"
[[symbols.strategies]]
name = "ema_crossover"
sizing = { mode = "fixed_notional", value = 100 }
""",
    )
    error = load_error(env_file, symbols_file=symbols_file)
    text = str(error)
    assert text.startswith("invalid configuration: 5 problems")
    for expected in (
        "MODE: must be one of sim, testnet, mainnet (got 'live')",
        "RECV_WINDOW_MS: must be between 1 and 60000 (got 70000)",
        "LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (got 'loud')",
        "symbols[1].leverage: must be between 1 and 125 (got 200)",
        "symbols[1].margin_type: must be one of CROSSED, ISOLATED (got 'CROSS')",
    ):
        assert expected in text
    assert f"environment and {env_file}:" in text
    assert f"{symbols_file}:" in text
    assert "docs/configuration.md" in text


def test_the_error_is_not_a_pydantic_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE", "live")
    error = load_error()
    assert error.__cause__ is None and error.__context__ is None
    assert "pydantic" not in str(error) and "validation error" not in str(error).lower()
    assert "Input should be" not in str(error)


def test_an_unknown_setting_in_dotenv_is_named_with_a_suggestion(write_file) -> None:
    env_file = write_file(".env", "RECV_WINDOWS_MS=3000\n")
    error = load_error(env_file)
    assert "RECV_WINDOWS_MS: unknown setting (did you mean RECV_WINDOW_MS?)" in str(error)
    assert "allowed settings: MODE, RECV_WINDOW_MS" in str(error)


def test_replay_market_data_is_refused_outside_sim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE", "mainnet")
    monkeypatch.setenv("MARKET_DATA", "replay")
    error = load_error(apikey_file=Path("missing.apikey"))
    assert "MARKET_DATA: replay is only allowed with MODE=sim (got MODE=mainnet)" in str(error)


@pytest.mark.parametrize(
    ("mode", "name", "url", "expected"),
    [
        ("testnet", "REST_BASE_URL", "https://fapi.binance.com", "points at mainnet (fapi.binance.com) but MODE=testnet"),
        ("mainnet", "WS_PRIVATE_URL", "wss://demo-fstream.binance.com/private", "points at the testnet"),
        ("sim", "REST_BASE_URL", "https://fapi.binance.com", "points at Binance (fapi.binance.com) but MODE=sim never"),
    ],
)
def test_an_override_of_the_wrong_network_is_refused(
    monkeypatch: pytest.MonkeyPatch, mode: str, name: str, url: str, expected: str
) -> None:
    monkeypatch.setenv("MODE", mode)
    monkeypatch.setenv(name, url)
    error = load_error(apikey_file=Path("missing.apikey"))
    assert f"{name}: {expected}" in str(error)


def test_missing_sim_data_files_are_named(monkeypatch: pytest.MonkeyPatch, write_file) -> None:
    present = write_file("BTCUSDT-1m-2024-01-01.csv", "")
    monkeypatch.setenv("SIM_DATA", f"{present},nowhere.csv")
    error = load_error()
    assert "SIM_DATA: no such file: nowhere.csv" in str(error)
    assert len(error.problems) == 1


def test_a_sim_data_folder_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIM_DATA", str(tmp_path))
    assert f"SIM_DATA: {tmp_path} is a folder: name the kline files in it" in str(load_error())


def test_database_password_is_masked_in_repr_and_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_URL", "postgresql+psycopg://bot:hunter2-long-password@db:5432/trader")
    config = load_config(env_file=None, symbols_file=SHIPPED_SYMBOLS_FILE)
    assert config.settings.db_url.endswith("@db:5432/trader")  # the real value is still there for the engine
    assert "hunter2" not in repr(config.settings) and "hunter2" not in repr(config)
    assert config.masked_summary()["settings"]["DB_URL"] == "postgresql+psycopg://bot:****@db:5432/trader"


def test_a_bad_database_url_does_not_echo_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_URL", "not a url://user:secret-password@host")
    assert "secret-password" not in str(load_error())
    monkeypatch.setenv("DB_URL", "mysql://user:secret-password@host/db")
    message = str(load_error())
    assert "secret-password" not in message and "mysql://user:****@host/db" in message


def test_mainnet_is_confirmed_only_by_the_exact_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE", "mainnet")
    assert not Settings(_env_file=None).mainnet_confirmed
    for almost in ("yes", "i-understand-real-money", " I-UNDERSTAND-REAL-MONEY!"):
        monkeypatch.setenv("MAINNET_CONFIRM", almost)
        assert not Settings(_env_file=None).mainnet_confirmed
    monkeypatch.setenv("MAINNET_CONFIRM", "I-UNDERSTAND-REAL-MONEY")
    assert Settings(_env_file=None).mainnet_confirmed
