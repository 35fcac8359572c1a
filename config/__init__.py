"""Configuration: settings (environment, ``.env``), ``symbols.toml`` and API keys, all checked by ``load_config``."""

from config.settings import (
    AppConfig,
    ConfigError,
    ConfigProblem,
    Endpoints,
    LogLevel,
    MarketData,
    Mode,
    Settings,
    load_config,
)
from config.symbols import (
    EntryOrderType,
    RiskConfig,
    RiskLimitsConfig,
    Sizing,
    SizingMode,
    StrategyConfig,
    SymbolConfig,
    SymbolsConfig,
    load_symbols,
)

__all__ = [
    "AppConfig",
    "ConfigError",
    "ConfigProblem",
    "Endpoints",
    "EntryOrderType",
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
