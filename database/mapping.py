"""Row <-> dataclass mapping generated from the dataclass fields, so a new field is added in one place.

``row_to(cls, row)`` builds a domain dataclass from a row whose columns carry the same names; enums are rebuilt
from their stored spelling (optionals stay ``None``). ``to_columns(obj)`` gives the column values of a
dataclass: enums become their value, everything else is stored as it is.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields
from enum import Enum
from functools import cache
from typing import Any, get_type_hints

Converter = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _enum_converter(enum_type: type[Enum], optional: bool) -> Converter:
    def convert(value: Any) -> Any:
        if value is None and optional:
            return None
        return enum_type(value)

    return convert


def _converter(hint: Any) -> Converter:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(members) == 1 and isinstance(members[0], type) and issubclass(members[0], Enum):
            return _enum_converter(members[0], optional=True)
        return _identity
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _enum_converter(hint, optional=False)
    return _identity


@cache
def _plan(cls: type) -> tuple[tuple[str, Converter], ...]:
    hints = get_type_hints(cls)
    return tuple((f.name, _converter(hints[f.name])) for f in fields(cls))


def row_to[T](cls: type[T], row: Any, overrides: Mapping[str, Converter] | None = None) -> T:
    """``cls(**columns)`` from ``row`` (any object with the fields as attributes), enums rebuilt."""
    values = {}
    for name, convert in _plan(cls):  # type: ignore[arg-type]  # classes are hashable
        if overrides and name in overrides:
            values[name] = overrides[name](getattr(row, name, None))
        else:
            values[name] = convert(getattr(row, name))
    return cls(**values)


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def to_columns(obj: Any, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The column values of a dataclass instance (enums as their values), optionally without some fields."""
    values = {}
    for name in _field_names(type(obj)):  # type: ignore[arg-type]  # classes are hashable
        if name in exclude:
            continue
        value = getattr(obj, name)
        values[name] = value.value if isinstance(value, Enum) else value
    return values
