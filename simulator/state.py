"""Plain-JSON state of the simulated exchange: a codec for its records, and atomic state files.

``encode`` turns dataclasses, enums, Decimals (as exact ``str()`` strings, exponent kept, so a value comes back
digit for digit), mappings and sequences into JSON-able values; ``decode`` rebuilds a value of a given type from
them, driven by the type hints, and names the field that is missing or malformed. ``write_state_file`` replaces
a file atomically (temporary file in the same folder, fsync, rename), so a crash leaves the old state or the new
one, never half of either. ``symbol_state`` / ``load_symbol_state`` lay out one symbol's book, positions and
trades; the rest of the document is ``SimExchange.snapshot``'s (see docs/simulator.md, "State").
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

from simulator.account import PositionState
from simulator.records import AlgoOrder, SymbolState, WorkingAlgo, WorkingOrder
from utils.domain import Fill, MarginType, Order, OrderType, PositionSide

STATE_FORMAT = "auto-coin-trader-v3/sim-exchange-state"
STATE_VERSION = 1

# What the state keeps of each symbol (the rest of SymbolState follows from the configuration and filters) and of
# each position, with their types.
SYMBOL_FIELDS: dict[str, Any] = {
    "leverage": int, "margin_type": MarginType, "has_candle": bool, "last_price": Decimal, "last_low": Decimal,
    "last_high": Decimal, "last_volume": Decimal, "last_open_time": int, "mark_price": Decimal,
    "mark_from_feed": bool, "funding_rate": Decimal, "next_funding_time": int, "bid_notional": Decimal,
    "ask_notional": Decimal, "open_long_notional": Decimal, "open_short_notional": Decimal, "bought": Decimal,
    "sold": Decimal,
}
POSITION_FIELDS: dict[str, Any] = {
    "amount": Decimal, "entry_price": Decimal, "open_fees": Decimal, "realized_pnl": Decimal,
    "isolated_wallet": Decimal, "update_time": int,
}


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



def referred[T](table: Mapping[int, T], key: object, where: str) -> T:
    """The record a state document refers to by id (StateError when the document does not hold it)."""
    if isinstance(key, bool) or not isinstance(key, int) or key not in table:
        raise StateError(f"{where}: refers to id {key!r}, which the state does not hold")
    return table[key]


def symbol_state(st: SymbolState) -> dict[str, Any]:
    """One symbol's state: prices and candle state, funding, leverage, positions, every order, open
    conditional orders (by algoId, with their arrival sequence) and trades."""
    return {
        **{name: encode(getattr(st, name)) for name in SYMBOL_FIELDS},
        "positions": [{"position_side": p.position_side.value,
                       **{name: encode(getattr(p, name)) for name in POSITION_FIELDS}}
                      for p in st.positions.values()],
        "orders": [{"order": encode(w.order), "orig_type": w.orig_type.value, "seq": w.seq,
                    "margin_direction": w.margin_direction, "closing": w.closing, "booked": w.booked,
                    "taking": w.taking, "algo_id": w.algo.algo_id if w.algo is not None else None} for w in st.orders],
        "open_orders": list(st.open.by_id),
        "open_by_client": {client_id: w.order.order_id for client_id, w in st.open.by_client.items()},
        "latest_by_client": {client_id: w.order.order_id for client_id, w in st.orders.by_client.items()},
        "open_algo_orders": [[w.algo.algo_id, w.seq] for w in st.algos.values()],
        "trades": [encode(fill) for fill in st.trades],
    }


def load_symbol_state(st: SymbolState, data: Mapping[str, Any], where: str,
                      algos: Mapping[int, AlgoOrder]) -> list[WorkingAlgo]:
    """Put ``symbol_state``'s output back into ``st``; ``algos`` are every conditional order by algoId.
    Returns the symbol's open conditional orders."""
    for name, kind in SYMBOL_FIELDS.items():
        setattr(st, name, decode(kind, require(data, name, where), f"{where}.{name}"))
    st.positions = {}
    for index, saved in enumerate(require(data, "positions", where)):
        place = f"{where}.positions[{index}]"
        position = PositionState(st.name, decode(PositionSide, require(saved, "position_side", place),
                                                 f"{place}.position_side"))
        for name, kind in POSITION_FIELDS.items():
            setattr(position, name, decode(kind, require(saved, name, place), f"{place}.{name}"))
        st.positions[position.position_side] = position
    st.exposed = any(p.amount for p in st.positions.values())
    orders = st.orders.by_id
    orders.clear()
    for index, saved in enumerate(require(data, "orders", where)):
        place = f"{where}.orders[{index}]"
        algo_id = decode(int | None, require(saved, "algo_id", place), f"{place}.algo_id")
        working = WorkingOrder(decode(Order, require(saved, "order", place), f"{place}.order"),
                               decode(OrderType, require(saved, "orig_type", place), f"{place}.orig_type"),
                               decode(int, require(saved, "seq", place), f"{place}.seq"),
                               decode(int, require(saved, "margin_direction", place), f"{place}.margin_direction"),
                               decode(bool, require(saved, "closing", place), f"{place}.closing"),
                               None if algo_id is None else referred(algos, algo_id, f"{place}.algo_id"))
        working.booked = decode(bool, require(saved, "booked", place), f"{place}.booked")
        working.taking = decode(bool, require(saved, "taking", place), f"{place}.taking")
        orders[working.order.order_id] = working
    st.orders.by_client = {client_id: referred(orders, order_id, f"{where}.latest_by_client")
                           for client_id, order_id in require(data, "latest_by_client", where).items()}
    st.open.by_id = {order_id: referred(orders, order_id, f"{where}.open_orders")
                     for order_id in require(data, "open_orders", where)}
    st.open.by_client = {client_id: referred(st.open.by_id, order_id, f"{where}.open_by_client")
                         for client_id, order_id in require(data, "open_by_client", where).items()}
    st.algos = {}
    for index, saved in enumerate(require(data, "open_algo_orders", where)):
        place = f"{where}.open_algo_orders[{index}]"
        algo_id, seq = decode(list[int], saved, place)
        st.algos[algo_id] = WorkingAlgo(referred(algos, algo_id, place), seq)
    st.trades = [decode(Fill, fill, f"{where}.trades[{index}]")
                 for index, fill in enumerate(require(data, "trades", where))]
    return list(st.algos.values())
