"""Decimal helpers: exact parsing, rounding to a step or tick, and exponent-free wire strings."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation


class DecimalParseError(ValueError):
    """A value that should be a decimal number is not one."""


def to_decimal(value: object) -> Decimal:
    """Parse a wire value (str, int or Decimal; never float) into a finite Decimal."""
    if type(value) is str:  # the wire's usual case first (Decimal() itself ignores surrounding whitespace)
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise DecimalParseError(f"not a decimal number: {value!r}") from None
        if result.is_finite():
            return result
        raise DecimalParseError(f"not a finite decimal number: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise DecimalParseError(f"not a decimal number: {value!r}")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise DecimalParseError(f"not a decimal number: {value!r}") from None
    elif isinstance(value, float):
        # Floats are accepted only through their shortest repr, never their binary expansion.
        result = Decimal(repr(value))
    else:
        raise DecimalParseError(f"not a decimal number: {value!r}")
    if not result.is_finite():
        raise DecimalParseError(f"not a finite decimal number: {value!r}")
    return result


def to_wire(value: Decimal | int) -> str:
    """Format a number as Binance wants it: plain positional notation, no exponent, no trailing zeros.

    ``Decimal("1E-5")`` -> ``"0.00001"``; ``Decimal("100")`` -> ``"100"``; ``Decimal("1.500")`` -> ``"1.5"``.
    """
    if isinstance(value, int):
        return str(value)
    if not value.is_finite():
        raise ValueError(f"cannot send a non-finite number: {value!r}")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text


def decimal_places(value: Decimal) -> int:
    """Number of significant digits after the decimal point (``0.0100`` -> 2)."""
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def is_multiple(value: Decimal, step: Decimal) -> bool:
    if step == 0:
        return True
    return value % step == 0


def round_down_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= ``value`` (for non-negative values: towards zero)."""
    if step == 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def round_up_to_step(value: Decimal, step: Decimal) -> Decimal:
    if step == 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def round_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Nearest multiple of ``step`` (banker's rounding on ties)."""
    if step == 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_HALF_EVEN) * step


def quantize_to(value: Decimal, places: int) -> Decimal:
    """Cut ``value`` to ``places`` decimals, towards zero."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
