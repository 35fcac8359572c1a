"""Table and JSON output of the listing commands, and the option values they take (--since, --limit, --days)."""

from __future__ import annotations

import argparse
import io
import json
from decimal import Decimal

import pytest

from cli.arguments import positive_days, replay_speed, row_limit, since_time
from cli.tables import Column, number_column, print_rows, time_column, utc
from utils.domain import Side

COLUMNS = (time_column("time", "time (UTC)"), Column("side", "side"), number_column("price", "price"),
           Column("note", "note"))
ROWS = [
    {"time": 1_681_948_800_000, "side": Side.BUY, "price": Decimal("0.00001000"), "note": None, "extra": 1},
    {"time": 1_681_948_860_000, "side": Side.SELL, "price": Decimal("28795.3"), "note": "two words", "extra": 2},
    {"time": 1_681_948_920_000, "side": Side.SELL, "price": Decimal("1E+2"), "note": "", "extra": 3},
]


def printed(**options) -> str:
    out = io.StringIO()
    print_rows(ROWS, COLUMNS, title="orders", stream=out, **{"as_json": False, **options})
    return out.getvalue()


def test_a_table_has_a_title_headers_and_exact_values() -> None:
    lines = printed().splitlines()
    assert lines == [
        "orders: 3, oldest first, times in UTC",
        "time (UTC)           side       price  note",
        "2023-04-20 00:00:00  BUY   0.00001000",
        "2023-04-20 00:01:00  SELL     28795.3  two words",
        "2023-04-20 00:02:00  SELL         100",
    ]


def test_limit_keeps_the_newest_rows_and_says_so() -> None:
    lines = printed(limit=2).splitlines()
    assert lines[0] == "orders: 2 of 3, oldest first, times in UTC (--limit 0 shows all)"
    assert [line.split()[1] for line in lines[2:]] == ["00:01:00", "00:02:00"]


def test_json_is_every_key_of_the_rows_with_exact_strings() -> None:
    out = io.StringIO()
    print_rows(ROWS, COLUMNS, title="orders", as_json=True, limit=2, stream=out)
    assert json.loads(out.getvalue()) == [
        {"time": 1_681_948_860_000, "side": "SELL", "price": "28795.3", "note": "two words", "extra": 2},
        {"time": 1_681_948_920_000, "side": "SELL", "price": "100", "note": "", "extra": 3},
    ]
    empty = io.StringIO()
    print_rows([], COLUMNS, title="orders", as_json=True, stream=empty)
    assert empty.getvalue() == "[]\n"


def test_an_empty_listing_says_so() -> None:
    out = io.StringIO()
    print_rows([], COLUMNS, title="signals", as_json=False, empty="none stored", stream=out)
    assert out.getvalue() == "signals: none stored\n"


def test_times_are_utc_and_unreported_times_are_blank() -> None:
    assert utc(1_681_948_859_999) == "2023-04-20 00:00:59"
    assert utc(0) == "" and utc(None) == ""


@pytest.mark.parametrize(("text", "expected"), [
    ("2023-04-20", 1_681_948_800_000),
    ("2023-04-20T12:30", 1_681_993_800_000),
    ("2023-04-20 12:30:15", 1_681_993_815_000),
    ("2023-04-20T12:30:15Z", 1_681_993_815_000),
    ("2023-04-20T14:30+02:00", 1_681_993_800_000),
    ("90m", 10**12 - 90 * 60_000),
    ("12h", 10**12 - 12 * 3_600_000),
    ("7d", 10**12 - 7 * 86_400_000),
])
def test_since_takes_utc_dates_and_ages(text: str, expected: int) -> None:
    assert since_time(text, now_ms=10**12) == expected


@pytest.mark.parametrize(("parse", "text"), [
    (since_time, "yesterday"), (since_time, "7 days"), (since_time, "-3d"),
    (row_limit, "-1"), (row_limit, "ten"), (positive_days, "0"), (positive_days, "-1"), (positive_days, "nan"),
    (replay_speed, "-5"), (replay_speed, "inf"),
])
def test_bad_option_values_are_refused(parse, text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text).replace("+", r"\+") + r"|finite number"):
        parse(text)


def test_good_option_values() -> None:
    assert positive_days("0.5") == 0.5 and replay_speed("0") == 0 and replay_speed("60") == 60
    assert row_limit("0") == 0 and row_limit("25") == 25
