"""Configuration: settings (environment, ``.env``), ``symbols.toml`` and API keys, all checked by ``load_config``."""

from config.loader import AppConfig, load_config
from config.problems import ConfigError, ConfigProblem
from config.settings import Endpoints, LogFormat, LogLevel, MarketData, Mode, Settings
from config.symbols import (
    EntryOrderType,
    RiskConfig,
    RiskLimitsConfig,
    Sizing,
    StrategyConfig,
    SymbolConfig,
    SymbolsConfig,
    load_symbols,
)
from utils.domain import SizingMode

__all__ = [
    "AppConfig",
    "ConfigError",
    "ConfigProblem",
    "Endpoints",
    "EntryOrderType",
    "LogFormat",
    "LogLevel",
    "MarketData",
    "Mode",
    "RiskConfig",
    "RiskLimitsConfig",
    "Settings",
    "Sizing",
    "SizingMode",
    "StrategyConfig",
    "SymbolConfig",
    "SymbolsConfig",
    "load_config",
    "load_symbols",
]
