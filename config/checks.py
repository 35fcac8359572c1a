"""Field validators shared by the settings and symbols.toml models, each failing with a self-explaining message."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Literal

from pydantic import BeforeValidator

from config.problems import show_value


def _describe_range(minimum: int | str | None, maximum: int | str | None, above: int | str | None) -> str:
    lower = f"greater than {above}" if above is not None else (f"at least {minimum}" if minimum is not None else "")
    if maximum is None:
        return lower
    if minimum is not None and above is None:
        return f"between {minimum} and {maximum}"
    return f"{lower} and at most {maximum}" if lower else f"at most {maximum}"


def number_in_range(
    kind: Literal["int", "decimal", "float"],
    *,
    minimum: int | str | None = None,
    maximum: int | str | None = None,
    above: int | str | None = None,
    optional: bool = False,
) -> BeforeValidator:
    """A validator that parses a whole number / Decimal / float and checks its range with a self-explaining message.

    ``minimum`` and ``maximum`` are inclusive, ``above`` is exclusive. Messages read
    ``must be between 1 and 125 (got 200)`` or ``must be a whole number between 1 and 60000 (got 'abc')``.
    ``optional`` lets ``None`` through (use it on ``X | None`` fields).
    """
    low = Decimal(str(minimum)) if minimum is not None else None
    high = Decimal(str(maximum)) if maximum is not None else None
    strictly_above = Decimal(str(above)) if above is not None else None
    range_text = _describe_range(minimum, maximum, above)
    noun = "a whole number" if kind == "int" else "a number"

    def parse(value: Any) -> Decimal | None:
        if isinstance(value, bool):
            return None
        try:
            if isinstance(value, str):
                text = value.strip()
                if kind == "int" and not re.fullmatch(r"[+-]?\d+", text):
                    return None
                number = Decimal(text)
            elif isinstance(value, Decimal | int):
                number = Decimal(value)
            elif isinstance(value, float):
                number = Decimal(str(value))
            else:
                return None
        except InvalidOperation:
            return None
        if not number.is_finite():
            return None
        if kind == "int" and number != number.to_integral_value():
            return None
        return number

    def validate(value: Any) -> Any:
        if value is None and optional:
            return None
        number = parse(value)
        if number is None:
            raise ValueError(f"must be {noun} {range_text} (got {show_value(value)})".replace("  ", " "))
        too_low = (low is not None and number < low) or (strictly_above is not None and number <= strictly_above)
        too_high = high is not None and number > high
        if too_low or too_high:
            raise ValueError(f"must be {range_text} (got {show_value(number)})")
        if kind == "int":
            return int(number)
        if kind == "float":
            return float(number)
        return number

    return BeforeValidator(validate)


def one_of(choices: type[StrEnum], *, case: Literal["lower", "upper", "exact"] = "exact") -> BeforeValidator:
    """A validator accepting one of an enum's values (case-folded as asked): ``must be one of a, b, c (got 'x')``."""
    values = [member.value for member in choices]

    def validate(value: Any) -> Any:
        if isinstance(value, choices):
            return value
        if isinstance(value, str):
            text = value.strip()
            text = text.lower() if case == "lower" else text.upper() if case == "upper" else text
            if text in values:
                return choices(text)
        raise ValueError(f"must be one of {', '.join(values)} (got {show_value(value)})")

    return BeforeValidator(validate)
