"""Column types that store Decimal money and quantities exactly on both SQLite and PostgreSQL.

PostgreSQL keeps them in ``NUMERIC(36, 18)``. SQLite has no exact decimal type (its NUMERIC affinity turns
values into 64-bit floats), so there they are stored as canonical fixed-point text. Both backends accept the
same range (at most 18 digits before and 18 after the point) and hand back the same canonical ``Decimal``:
the stored value with trailing fractional zeros removed (``1.500`` is read back as ``1.5``), never an exponent
for whole numbers (``100`` stays ``100``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

PRECISION = 36
SCALE = 18
MAX_INTEGER_DIGITS = PRECISION - SCALE

# Quantizing to 18 places under a 36-digit context both rounds (half-even) and, by raising InvalidOperation,
# rejects numbers with more than 18 integer digits: exactly the values NUMERIC(36, 18) can hold.
_STORE_CONTEXT = Context(prec=PRECISION, rounding=ROUND_HALF_EVEN)
_WIDE_CONTEXT = Context(prec=2 * PRECISION)
_QUANTUM = Decimal(1).scaleb(-SCALE)  # 1E-18
_ONE = Decimal(1)
_ZERO = Decimal(0)


def canonical_decimal(value: Decimal) -> Decimal:
    """The same number without trailing fractional zeros and without a positive exponent (``-0`` becomes ``0``)."""
    if value.is_zero():
        return _ZERO
    normalized = value.normalize(_WIDE_CONTEXT)
    if normalized.as_tuple().exponent > 0:  # type: ignore[operator]  # finite values have an int exponent
        normalized = normalized.quantize(_ONE, context=_WIDE_CONTEXT)
    return normalized


def _quantized(value: object) -> Decimal:
    """``value`` rounded half-even to 18 decimal places (exponent exactly -18), or TypeError/ValueError."""
    if type(value) is not Decimal:
        if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
            raise TypeError(f"expected Decimal (never float), got {type(value).__name__} {value!r}")
        value = Decimal(value)
    try:
        rounded = value.quantize(_QUANTUM, context=_STORE_CONTEXT)
    except InvalidOperation:
        if not value.is_finite():
            raise ValueError(f"not a finite decimal number: {value!r}") from None
        raise ValueError(
            f"{value} has more than {MAX_INTEGER_DIGITS} digits before the decimal point "
            f"(limit of NUMERIC({PRECISION}, {SCALE}))"
        ) from None
    if rounded.is_nan():
        raise ValueError(f"not a finite decimal number: {value!r}")
    return _ZERO.quantize(_QUANTUM) if rounded.is_zero() else rounded


def _canonical_text(rounded: Decimal) -> str:
    """Fixed-point text of a value with exponent -18, trailing fractional zeros (and a bare point) removed."""
    return format(rounded, "f").rstrip("0").rstrip(".")


def decimal_to_text(value: object) -> str:
    """The canonical fixed-point text a value is stored as (what SQLite holds; bulk paths send it to PostgreSQL)."""
    return _canonical_text(_quantized(value))


def storable_decimal(value: object) -> Decimal:
    """The canonical Decimal a value becomes once stored (Decimal or int; 18 decimals at most, rounded half-even).

    Raises TypeError for floats and other types, ValueError for NaN/infinity or more than 18 integer digits.
    """
    return Decimal(_canonical_text(_quantized(value)))


class ExactDecimal(TypeDecorator[Decimal]):
    """``NUMERIC(36, 18)`` on PostgreSQL, canonical text on SQLite; always a canonical ``Decimal`` in Python."""

    impl = Numeric(PRECISION, SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(PRECISION + 4))
        return dialect.type_descriptor(Numeric(PRECISION, SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        rounded = _quantized(value)
        if dialect.name == "sqlite":
            return _canonical_text(rounded)
        return rounded

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, float):  # only if someone wrote a REAL into the column behind our back
            raise TypeError(f"found a float {value!r} in an exact decimal column; refusing to guess its value")
        if dialect.name == "sqlite":
            return Decimal(value)  # written by process_bind_param, so already canonical text
        return canonical_decimal(value if isinstance(value, Decimal) else Decimal(value))

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal
