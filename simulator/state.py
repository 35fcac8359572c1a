"""Plain-JSON state of the simulated exchange: a codec for its records, and atomic state files.

``encode`` turns dataclasses, enums, Decimals (as exact ``str()`` strings, exponent kept, so a value comes back
digit for digit), mappings and sequences into JSON-able values; ``decode`` rebuilds a value of a given type from
them, driven by the type hints, and names the field that is missing or malformed. ``write_state_file`` replaces
a file atomically (temporary file in the same folder, fsync, rename), so a crash leaves the old state or the new
one, never half of either. What the exchange's state holds is in ``SimExchange.snapshot`` and docs/simulator.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import types
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

STATE_FORMAT = "auto-coin-trader-v3/sim-exchange-state"
STATE_VERSION = 1


class StateError(ValueError):
    """A state document that cannot be restored: names the field and what is wrong with it."""


def encode(value: Any) -> Any:
    """A JSON-able form of ``value`` (dataclass -> dict by field, Enum -> its value, Decimal -> exact string)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, int | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    raise TypeError(f"cannot put a {type(value).__name__} into the exchange state: {value!r}")


def decode(kind: Any, data: Any, where: str = "state") -> Any:
    """The value of type ``kind`` that ``encode`` wrote as ``data``; StateError names ``where`` it failed."""
    origin = get_origin(kind)
    if origin is Union or origin is types.UnionType:
        options = get_args(kind)
        if data is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return decode(inner, data, where)
    if kind is Decimal:
        if not isinstance(data, str):
            raise StateError(f"{where}: expected a decimal string, got {data!r}")
        try:
            return Decimal(data)
        except InvalidOperation:
            raise StateError(f"{where}: {data!r} is not a decimal number") from None
    if kind is bool:
        if not isinstance(data, bool):
            raise StateError(f"{where}: expected true or false, got {data!r}")
        return data
    if kind is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise StateError(f"{where}: expected an integer, got {data!r}")
        return data
    if kind is str:
        if not isinstance(data, str):
            raise StateError(f"{where}: expected a string, got {data!r}")
        return data
    if isinstance(kind, type) and issubclass(kind, Enum):
        try:
            return kind(data)
        except ValueError:
            allowed = ", ".join(str(member.value) for member in kind)
            raise StateError(f"{where}: {data!r} is not one of {allowed}") from None
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return decode_fields(kind, data, where)
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        key_kind, value_kind = get_args(kind)
        if not isinstance(data, dict):
            raise StateError(f"{where}: expected an object, got {type(data).__name__}")
        return {_decode_key(key_kind, key, where): decode(value_kind, item, f"{where}.{key}")
                for key, item in data.items()}
    if origin is not None and isinstance(origin, type) and issubclass(origin, Sequence):
        if not isinstance(data, list):
            raise StateError(f"{where}: expected a list, got {type(data).__name__}")
        arguments = get_args(kind)
        item_kind = arguments[0]
        items = [decode(item_kind, item, f"{where}[{index}]") for index, item in enumerate(data)]
        return tuple(items) if origin is tuple else items
    raise TypeError(f"no state decoder for {kind!r} ({where})")


def decode_fields[T](kind: type[T], data: Any, where: str) -> T:
    """A dataclass ``kind`` from the dict ``encode`` wrote; every field must be present."""
    if not isinstance(data, dict):
        raise StateError(f"{where}: expected an object, got {type(data).__name__}")
    hints = get_type_hints(kind)
    values = {}
    for item in dataclasses.fields(kind):  # type: ignore[arg-type]
        if item.name not in data:
            raise StateError(f"{where}: field '{item.name}' is missing")
        values[item.name] = decode(hints[item.name], data[item.name], f"{where}.{item.name}")
    return kind(**values)


def _decode_key(kind: Any, key: str, where: str) -> Any:
    if kind is str:
        return key
    if kind is int:
        try:
            return int(key)
        except ValueError:
            raise StateError(f"{where}: key {key!r} is not an integer") from None
    return decode(kind, key, where)


def require(document: Mapping[str, Any], key: str, where: str) -> Any:
    """``document[key]``, or a StateError naming the missing field."""
    if not isinstance(document, Mapping):
        raise StateError(f"{where}: expected an object, got {type(document).__name__}")
    if key not in document:
        raise StateError(f"{where}: field '{key}' is missing")
    return document[key]


def write_state_file(path: str | Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` as JSON to ``path`` atomically: a temporary file beside it, fsync, then rename."""
    target = Path(path)
    text = json.dumps(document, separators=(",", ":"))
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # the rename itself is durable once the folder is synced
        folder = os.open(target.parent or ".", os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def read_state_file(path: str | Path) -> dict[str, Any]:
    """The JSON document at ``path`` (StateError when it is not a JSON object)."""
    with open(path, encoding="utf-8") as stream:
        try:
            document = json.load(stream)
        except json.JSONDecodeError as error:
            raise StateError(f"state file {path}: not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise StateError(f"state file {path}: expected a JSON object")
    return document

