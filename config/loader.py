"""Reads every configuration source (settings, ``symbols.toml``, API keys) into one checked AppConfig.

``load_config()`` is the entry point: it collects every problem (bad settings, bad ``symbols.toml`` entries,
missing or unprotected API keys) and raises ONE :class:`ConfigError` naming each bad field and its allowed values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values  # python-dotenv ships with pydantic-settings
from pydantic import SecretStr, ValidationError

from config.problems import ConfigError, ConfigProblem, problems_from_validation_error
from config.settings import (
    DEFAULT_APIKEY_FILE,
    DEFAULT_ENV_FILE,
    DEFAULT_SYMBOLS_FILE,
    SECRET_FIELDS,
    Mode,
    Settings,
)
from config.symbols import RiskConfig, SymbolConfig, SymbolsConfig, read_symbols_file
from utils.log import register_secret
from utils.secrets import (
    API_KEY_NAME,
    API_SECRET_NAME,
    ApiKeyFileError,
    ApiKeys,
    database_password,
    mask_secret,
    permission_problem,
    read_apikey_file,
)

SETTINGS_SOURCE = "environment"


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
    return {name.upper(): value for name, value in dotenv_values(env_file).items() if value is not None}


def _raw_setting(name: str, env_file: Path | None) -> str | None:
    """A setting's raw text (environment first, then ``.env``), for use when the settings as a whole are invalid."""
    for key, value in os.environ.items():
        if key.upper() == name and value.strip():
            return value.strip()
    from_file = _read_dotenv(env_file).get(name)
    return from_file.strip() if from_file and from_file.strip() else None


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
    env_path = Path(env_file) if env_file is not None else None
    problems: list[ConfigProblem] = []

    settings: Settings | None = None
    try:
        settings = Settings(_env_file=env_path)  # _env_file: pydantic-settings' own keyword
    except ValidationError as error:
        problems.extend(
            problems_from_validation_error(
                error, source=_settings_source(env_path), root=Settings, upper_first=True, hidden_fields=SECRET_FIELDS
            )
        )
    # ConfigError is raised outside this except block, so it never chains pydantic's error (which shows inputs).

    if settings is not None:
        mode: Mode | None = settings.mode
        symbols_path = Path(symbols_file) if symbols_file is not None else settings.symbols_file
        apikey_path = Path(apikey_file) if apikey_file is not None else settings.apikey_file
        register_secret(settings.binance_api_key)
        register_secret(settings.binance_api_secret)
        register_secret(database_password(settings.db_url))
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
                what = f"{path} is a folder: name the kline files in it" if path.is_dir() else f"no such file: {path}"
                problems.append(ConfigProblem(_settings_source(env_path), "SIM_DATA", what))

    if problems:
        raise ConfigError(problems)
    assert settings is not None and symbols_config is not None
    if api_keys is not None:
        register_secret(api_keys.api_key)
        register_secret(api_keys.api_secret)
    return AppConfig(settings=settings, symbols_config=symbols_config, api_keys=api_keys)
