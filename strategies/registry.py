"""Finds strategies by scanning a folder for ``Strategy`` subclasses and builds them with params validated once.

Every module of the folder is one strategy, except ``base``, ``indicators``, ``registry``, ``runner`` and private
(``_``-prefixed) modules. Adding a strategy is dropping its file in ``strategies/`` and naming it in the config;
removing one is deleting both.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import ValidationError

from strategies.base import Strategy

DEFAULT_PACKAGE = "strategies"
NOT_STRATEGY_MODULES = frozenset({"base", "indicators", "registry", "runner"})


class StrategyError(ValueError):
    """A strategy that cannot be found, loaded or configured; the message says which and what to change."""


def discover_strategies(package: str | Path = DEFAULT_PACKAGE) -> dict[str, type[Strategy[Any]]]:
    """Every strategy of a folder, by name: ``package`` is an importable package name or a directory of ``.py`` files.

    Raises :class:`StrategyError` when a module fails to import, holds more than one strategy, or two modules
    use the same name.
    """
    found: dict[str, type[Strategy[Any]]] = {}
    origins: dict[str, Path] = {}
    for path, module in _strategy_modules(package):
        classes = [
            value
            for value in vars(module).values()
            if inspect.isclass(value)
            and issubclass(value, Strategy)
            and value.__module__ == module.__name__
            and not inspect.isabstract(value)
        ]
        if len(classes) > 1:
            names = ", ".join(strategy_class.__qualname__ for strategy_class in classes)
            raise StrategyError(f"{path} defines {len(classes)} strategies ({names}); keep one strategy per file")
        for strategy_class in classes:
            name = getattr(strategy_class, "name", None)
            if not isinstance(name, str) or not name:
                raise StrategyError(f"{path}: {strategy_class.__qualname__} needs a class attribute name = '...'")
            if name in found:
                raise StrategyError(f"strategy name {name!r} is used by both {origins[name]} and {path}; rename one")
            found[name] = strategy_class
            origins[name] = path
    return dict(sorted(found.items()))


def load_strategy(
    name: str,
    symbol: str,
    params: Mapping[str, Any] | None = None,
    *,
    package: str | Path = DEFAULT_PACKAGE,
) -> Strategy[Any]:
    """A ready instance of strategy ``name`` for ``symbol``, its ``params`` (missing ones take defaults) validated."""
    strategies = discover_strategies(package)
    strategy_class = strategies.get(name)
    if strategy_class is None:
        available = ", ".join(strategies) or "none"
        raise StrategyError(f"unknown strategy {name!r} for {symbol}; available strategies: {available}")
    validated = validate_params(strategy_class, symbol, {} if params is None else params)
    try:
        return strategy_class(symbol, validated)
    except Exception as error:
        raise StrategyError(
            f"strategy {name!r} for {symbol} failed to start: {type(error).__name__}: {error} (its constructor raised; "
            f"fix {inspect.getsourcefile(strategy_class) or strategy_class.__module__} or take it out of symbols.toml)"
        ) from error


def validate_params(strategy_class: type[Strategy[Any]], symbol: str, params: Mapping[str, Any]) -> Any:
    """``strategy_class.Params`` built from ``params``, or a :class:`StrategyError` naming every bad field."""
    where = f"strategy {strategy_class.name!r} for {symbol}"
    if not isinstance(params, Mapping):
        raise StrategyError(f"{where}: params must be a table of name = value, got {params!r}")
    try:
        return strategy_class.Params(**params)
    except ValidationError as error:
        problems = []
        for detail in error.errors(include_url=False):
            field = ".".join(str(part) for part in detail["loc"]) or "params"
            if detail["type"] == "extra_forbidden":
                problems.append(f"{field}: unknown param")
            elif detail["loc"]:
                problems.append(f"{field}: {detail['msg']} (got {detail['input']!r})")
            else:
                problems.append(f"{field}: {detail['msg'].removeprefix('Value error, ')}")
        raise StrategyError(
            f"invalid params for {where}: {'; '.join(problems)}. Allowed params: {describe_params(strategy_class)}"
        ) from None


def describe_params(strategy_class: type[Strategy[Any]]) -> str:
    """The params a strategy takes, with their types, limits and defaults: ``fast (integer >= 1, default 12), ...``."""
    schema = strategy_class.Params.model_json_schema()
    descriptions = []
    for field, field_schema in schema.get("properties", {}).items():
        variants = field_schema.get("anyOf", [field_schema])
        kinds = " or ".join(_describe_type(variant) for variant in variants)
        default = f", default {field_schema['default']!r}" if "default" in field_schema else ", required"
        descriptions.append(f"{field} ({kinds}{default})")
    return ", ".join(descriptions) or "none"


def _describe_type(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(repr(value) for value in schema["enum"])
    text = {"null": "none", "number": "number"}.get(schema.get("type", ""), schema.get("type", "any"))
    limits = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    bounds = [f"{symbol} {schema[key]}" for key, symbol in limits.items() if key in schema]
    return " ".join([text, *bounds]) if len(bounds) < 2 else f"{text} {' and '.join(bounds)}"


def _strategy_modules(package: str | Path) -> list[tuple[Path, ModuleType]]:
    """(file, imported module) for every strategy module of the package or directory."""
    if isinstance(package, Path):
        directory = package
        if not directory.is_dir():
            raise StrategyError(f"strategy folder not found: {directory}")
    else:
        package_module = importlib.import_module(package)
        directory = Path(next(iter(package_module.__path__)))
    modules = []
    for path in sorted(directory.glob("*.py")):
        if path.stem.startswith("_") or path.stem in NOT_STRATEGY_MODULES:
            continue
        try:
            if isinstance(package, Path):
                module = _import_file(path)
            else:
                module = importlib.import_module(f"{package}.{path.stem}")
        except Exception as error:
            raise StrategyError(f"strategy module {path} failed to import: {type(error).__name__}: {error}") from error
        modules.append((path, module))
    return modules


def _import_file(path: Path) -> ModuleType:
    """Import a loose ``.py`` file under a name unique to its path (imported once, like any module)."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"_strategy_file_{digest}_{path.stem}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # pydantic resolves a model's annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
