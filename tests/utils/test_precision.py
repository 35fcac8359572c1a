"""Decimal helpers: wire strings never carry an exponent; parsing is exact and refuses junk."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.precision import (
    DecimalParseError,
    decimal_places,
    round_down_to_step,
    round_up_to_step,
    to_decimal,
    to_wire,
)


@pytest.mark.parametrize(("value", "wire"), [
    (D("1E-5"), "0.00001"), (D("0.00001000"), "0.00001"), (D("100"), "100"), (D("1E+3"), "1000"),
    (D("1.500"), "1.5"), (D("-0"), "0"), (D("0E-8"), "0"), (D("-2.50"), "-2.5"), (7, "7"),
])
def test_to_wire_examples(value, wire) -> None:
    assert to_wire(value) == wire


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=D("-1e12"), max_value=D("1e12")))
def test_to_wire_never_has_exponent_and_round_trips(value) -> None:
    text = to_wire(value)
    assert "e" not in text.lower()
    assert D(text) == value


@given(st.text(max_size=20))
def test_to_decimal_parses_or_raises_clearly(text) -> None:
    try:
        value = to_decimal(text)
    except DecimalParseError as exc:
        assert "decimal" in str(exc)
    else:
        assert value.is_finite()


@pytest.mark.parametrize("bad", ["NaN", "inf", "abc", "", True, None, [1]])
def test_to_decimal_refuses(bad) -> None:
    with pytest.raises(DecimalParseError):
        to_decimal(bad)


def test_float_goes_through_its_shortest_repr() -> None:
    assert to_decimal(0.1) == D("0.1")


@given(st.decimals(min_value=D("0"), max_value=D("1e6"), places=8, allow_nan=False),
       st.sampled_from([D("0.001"), D("0.1"), D("5"), D("0.25")]))
def test_step_rounding_brackets_the_value(value, step) -> None:
    down, up = round_down_to_step(value, step), round_up_to_step(value, step)
    assert down <= value <= up
    assert up - down in (0, step)
    assert down % step == 0 and up % step == 0


def test_decimal_places() -> None:
    assert decimal_places(D("0.0100")) == 2
    assert decimal_places(D("100")) == 0
    assert decimal_places(D("1E-5")) == 5
