"""Decimal columns round-trip exactly, and identically, on SQLite and PostgreSQL; out-of-range values fail loudly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.exc import StatementError

from database.repository import Repository
from database.types import canonical_decimal, decimal_to_text, storable_decimal
from utils.domain import Candle, Fill, PositionSide, Side

# (written, read back exactly as): trailing fractional zeros go, nothing else changes.
ROUND_TRIPS = [
    ("0.000000000000000001", "0.000000000000000001"),
    ("123456789012.123456789", "123456789012.123456789"),
    ("999999999999999999.999999999999999999", "999999999999999999.999999999999999999"),
    ("-999999999999999999.999999999999999999", "-999999999999999999.999999999999999999"),
    ("-0.000000000000000001", "-0.000000000000000001"),
    ("0", "0"),
    ("-0", "0"),
    ("100", "100"),
    ("1E+5", "100000"),
    ("1.10", "1.1"),
    ("50000.00000000", "50000"),
    ("0.1", "0.1"),
    ("0.30000000000000004", "0.30000000000000004"),
]


def test_decimals_round_trip_exactly(repo: Repository) -> None:
    for time, (written, _) in enumerate(ROUND_TRIPS):
        assert repo.record_funding("BTCUSDT", time, Decimal(written))
    stored = [payment.amount for payment in repo.funding_payments("BTCUSDT")]

    assert stored == [Decimal(written) for written, _ in ROUND_TRIPS]
    # Not just equal: the same digits and exponent on both backends (no float, no trailing-zero noise).
    assert [str(amount) for amount in stored] == [str(Decimal(expected)) for _, expected in ROUND_TRIPS]
    assert [amount.as_tuple() for amount in stored] == [Decimal(expected).as_tuple() for _, expected in ROUND_TRIPS]
    assert all(type(amount) is Decimal for amount in stored)


def test_bulk_candle_path_is_exact_too(repo: Repository) -> None:
    tiny, big = Decimal("0.000000000000000001"), Decimal("123456789012.123456789")
    candle = Candle("BTCUSDT", 0, 59_999, big, big, tiny, tiny, big, big, 7, tiny, big)
    assert repo.record_candles([candle]) == 1
    assert repo.load_candles("BTCUSDT", 1) == [candle]
    loaded = repo.load_candles("BTCUSDT", 1)[0]
    assert (loaded.high.as_tuple(), loaded.low.as_tuple()) == (big.as_tuple(), tiny.as_tuple())


def test_beyond_18_decimals_rounds_half_even_the_same_on_both_backends(repo: Repository) -> None:
    written = ["0.0000000000000000005", "0.0000000000000000015", "1.0000000000000000025", "-0.0000000000000000015"]
    for time, value in enumerate(written):
        repo.record_funding("ETHUSDT", time, Decimal(value))
    stored = [payment.amount for payment in repo.funding_payments("ETHUSDT")]
    assert stored == [Decimal("0"), Decimal("2E-18"), Decimal("1.000000000000000002"), Decimal("-2E-18")]


def test_out_of_range_and_non_decimal_values_are_refused(repo: Repository) -> None:
    with pytest.raises(StatementError) as too_big:
        repo.record_funding("BTCUSDT", 1, Decimal("1E+18"))
    assert isinstance(too_big.value.orig, ValueError)
    assert "more than 18 digits before the decimal point" in str(too_big.value)

    with pytest.raises(StatementError) as not_a_number:
        repo.record_funding("BTCUSDT", 2, Decimal("NaN"))
    assert isinstance(not_a_number.value.orig, ValueError)

    with pytest.raises(StatementError) as a_float:
        repo.record_funding("BTCUSDT", 3, 0.1)  # type: ignore[arg-type]
    assert isinstance(a_float.value.orig, TypeError)
    assert "never float" in str(a_float.value)

    fill = Fill("BTCUSDT", 1, 1, "c1", Side.BUY, PositionSide.BOTH, Decimal("Infinity"), Decimal(1), Decimal(1),
                Decimal(0), "USDT", Decimal(0), False, 0)  # fmt: skip
    with pytest.raises(StatementError):
        repo.record_fill(fill)
    with pytest.raises(ValueError, match="more than 18 digits"):
        repo.record_candles([Candle("BTCUSDT", 0, 59_999, *[Decimal("1E+20")] * 5)])

    assert repo.funding_payments() == []
    assert repo.all_fills() == []
    assert repo.load_candles("BTCUSDT", 10) == []


@given(
    st.decimals(
        min_value=Decimal("-999999999999999999.999999999999999999"),
        max_value=Decimal("999999999999999999.999999999999999999"),
        places=18,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_canonical_text_round_trips_every_storable_value(value: Decimal) -> None:
    text = decimal_to_text(value)
    assert Decimal(text) == value
    assert "E" not in text and not (text.endswith("0") and "." in text)
    assert storable_decimal(value) == value
    assert canonical_decimal(Decimal(text)).as_tuple() == Decimal(text).as_tuple()
