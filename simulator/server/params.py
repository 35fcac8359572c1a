"""Request parameters as Binance's gateway reads them: query string and form body, checked against an endpoint's list.

``read_parameters`` turns the raw query string and body into one mapping (a name sent twice is -1101);
``validate`` checks it against the endpoint's ``Param`` list and returns typed values: a missing mandatory one is
-1102, characters outside a number's or symbol's legal range -1100, an empty optional one -1105, a value outside
an enum its own code (-1115 timeInForce, -1116 type, -1117 side) or -1102, and anything the endpoint does not read
-1104. Nothing here touches an account: it is pure and safe on any input (the fuzz tests hold it to that).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import unquote_plus

from simulator.server import errors
from utils.errors import BinanceError

MAX_PARAMETERS = 100
MAX_VALUE_LENGTH = 4096
_LONG = re.compile(r"[0-9]{1,20}")
_DECIMAL = re.compile(r"([0-9]{1,20})(\.[0-9]{1,20})?")
_SYMBOL = re.compile(r"[A-Z0-9\-_.]{1,20}")
_CLIENT_ID_CHARACTERS = re.compile(r"[.A-Z:/a-z0-9_-]+")
SYMBOL_PATTERN = "^[A-Z0-9-_.]{1,20}$"
CLIENT_ID_PATTERN = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
INT_MAX = 2**31 - 1


class Kind(Enum):
    STRING = "string"
    SYMBOL = "symbol"
    LONG = "long"
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    ENUM = "enum"
    CLIENT_ID = "client_id"


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter an endpoint reads: its name, kind, whether it must be sent, and (enums) the allowed values."""

    name: str
    kind: Kind = Kind.STRING
    required: bool = False
    choices: tuple[str, ...] = ()
    invalid: Callable[[], BinanceError] | None = None  # the error for a value outside ``choices``


def enum(name: str, choices: Sequence[str], *, required: bool = False,
         invalid: Callable[[], BinanceError] | None = None) -> Param:
    return Param(name, Kind.ENUM, required, tuple(choices), invalid)


@dataclass(frozen=True, slots=True)
class RawParameters:
    """What the client sent: every name once, in the order sent; ``total`` counts them."""

    values: Mapping[str, str]

    @property
    def total(self) -> int:
        return len(self.values)

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_plus(name, errors="replace"), unquote_plus(value, errors="replace")))
    return pairs


def read_parameters(query: str, body: str) -> RawParameters:
    """The query string's and the form body's parameters together (Binance reads both); a repeated name is -1101."""
    values: dict[str, str] = {}
    pairs = _pairs(query) + _pairs(body)
    if len(pairs) > MAX_PARAMETERS:
        raise BinanceError(-1101, "Too many parameters sent for this endpoint.")
    for name, value in pairs:
        if name in values:
            raise errors.duplicate_parameter()
        values[name] = value
    return RawParameters(values)


def _convert(param: Param, text: str) -> Any:
    kind = param.kind
    if kind is Kind.LONG or kind is Kind.INT:
        if _LONG.fullmatch(text) is None:
            raise errors.illegal_characters(param.name, errors.LONG_PATTERN)
        number = int(text)
        if kind is Kind.INT and number > INT_MAX:
            raise errors.malformed(param.name)
        return number
    if kind is Kind.DECIMAL:
        if _DECIMAL.fullmatch(text) is None:
            raise errors.illegal_characters(param.name, errors.DECIMAL_PATTERN)
        return Decimal(text)
    if kind is Kind.SYMBOL:
        if _SYMBOL.fullmatch(text) is None:
            raise errors.illegal_characters(param.name, SYMBOL_PATTERN)
        return text
    if kind is Kind.BOOL:
        lowered = text.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        raise errors.malformed(param.name)
    if kind is Kind.ENUM:
        if text not in param.choices:
            raise (param.invalid or (lambda: errors.malformed(param.name)))()
        return text
    if kind is Kind.CLIENT_ID:
        if _CLIENT_ID_CHARACTERS.fullmatch(text) is None:
            raise errors.illegal_characters(param.name, CLIENT_ID_PATTERN)
        return text
    if len(text) > MAX_VALUE_LENGTH:
        raise errors.malformed(param.name)
    return text


def validate(spec: Sequence[Param], raw: RawParameters) -> dict[str, Any]:
    """Typed values of the parameters in ``spec`` that were sent; every error as Binance reports it."""
    result: dict[str, Any] = {}
    read = 0
    for param in spec:
        text = raw.get(param.name)
        if text is None or text == "":
            if param.required:
                raise errors.mandatory(param.name)
            if text == "":
                raise errors.empty_parameter(param.name)
            continue
        read += 1
        result[param.name] = _convert(param, text)
    if read != raw.total:
        raise errors.not_all_read(read, raw.total)
    return result
