"""REST klines and funding entries to CSV rows: what is accepted is what the project's reader reads back exactly,
and what the reader would refuse is refused before it is written."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata.download import klines_weight
from marketdata.history_rows import (
    FundingRow,
    RowError,
    funding_time,
    kline_open_time,
    parse_funding,
    parse_kline,
)
from utils.klines_csv import HEADER, KlinesCsvError, load_klines_csv

MINUTE = 60_000
OPEN_TIME = 1_681_948_800_000

# Decimal strings as Binance writes them, plus the forms it never sends (exponents, signs, blanks, words).
plain_decimals = st.builds(lambda whole, fraction: f"{whole}.{fraction}" if fraction else str(whole),
                           st.integers(0, 99_999), st.sampled_from(["", "0", "00", "5", "10", "123", "99999999"]))
odd_numbers = st.sampled_from(["1e-05", "-1.0", "+2", " 3", "4 ", "", "nan", "Infinity", "1,5", "0x10", ".5", "5."])
numbers = st.one_of(plain_decimals, odd_numbers, st.floats(allow_nan=True), st.integers(-5, 5), st.none())
times = st.one_of(st.integers(0, 2**45).map(lambda m: m * MINUTE), st.integers(-5, 2**50), st.booleans(),
                  st.just("1681948800000"))


@st.composite
def raw_klines(draw: st.DrawFn) -> list[object]:
    """Kline arrays, mostly well formed, some with any field wrong."""
    open_time = draw(st.one_of(st.integers(0, 2**41).map(lambda m: m * MINUTE), times))
    close_time = draw(st.one_of(st.just(open_time + MINUTE - 1 if isinstance(open_time, int) else 0), times))
    prices = sorted(draw(st.lists(plain_decimals, min_size=4, max_size=4)), key=Decimal)
    low, a, b, high = prices
    o, c = draw(st.permutations([a, b]))
    fields = [open_time, o, high, low, c, draw(plain_decimals), close_time, draw(plain_decimals),
              draw(st.integers(0, 10**6)), draw(plain_decimals), draw(plain_decimals), "0"]
    for _ in range(draw(st.integers(0, 2))):  # break a field or two
        index = draw(st.integers(0, 11))
        fields[index] = draw(times if index in (0, 6, 8) else numbers)
    return fields


DECIMAL_INDEXES = (1, 2, 3, 4, 5, 7, 9, 10)
PLAIN = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_back(path: Path, fields: tuple[str, ...]):
    path.write_text(",".join(HEADER) + "\n" + ",".join(fields) + "\n")
    return load_klines_csv(path, "BTCUSDT")


@settings(max_examples=200, deadline=None)
@given(raw=raw_klines())
def test_a_kline_is_written_only_if_the_reader_reads_it_back_unchanged(raw, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("rows") / "BTCUSDT_usdm_1m_x.csv"
    try:
        row = parse_kline(raw)
    except RowError:
        # Refused: then the reader would refuse it too, or it is not a closed 1m kline Binance could send.
        # Refused although shaped like a closed 1m kline with plain decimals: then the reader refuses it too.
        times_fine = all(_is_int(raw[i]) and raw[i] >= 0 for i in (0, 6, 8)) and raw[0] % MINUTE == 0 \
            and raw[6] == raw[0] + MINUTE - 1 and raw[6] < 10**15  # (larger ones the reader takes for microseconds)
        if times_fine and all(isinstance(raw[i], str) and PLAIN.fullmatch(raw[i]) for i in DECIMAL_INDEXES):
            with pytest.raises(KlinesCsvError):
                _read_back(path, tuple(str(value) for value in raw[:11]))
        return
    [candle] = _read_back(path, row.fields)
    assert (candle.open_time, candle.close_time, candle.trades) == (raw[0], raw[6], raw[8])
    for value, field in zip((candle.open, candle.high, candle.low, candle.close, candle.volume, candle.quote_volume,
                             candle.taker_buy_volume, candle.taker_buy_quote_volume),
                            (raw[1], raw[2], raw[3], raw[4], raw[5], raw[7], raw[9], raw[10]), strict=True):
        assert str(value) == field  # the exact string Binance sent, trailing zeros included
    assert kline_open_time(row.csv_line()) == raw[0]


def test_binance_s_own_example_kline_becomes_an_11_column_row() -> None:
    raw = [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815",
           1499040059999, "2434.19055334", 308, "1756.87402397", "28.46694368", "17928899.62484339"]
    row = parse_kline(raw)
    assert row.csv_line() == ("1499040000000,0.01634790,0.80000000,0.01575800,0.01577100,148976.11427815,"
                              "1499040059999,2434.19055334,308,1756.87402397,28.46694368")


@pytest.mark.parametrize(("raw", "problem"), [
    ([OPEN_TIME, "1", "2", "1", "3", "0", OPEN_TIME + 59_999, "0", 0, "0", "0", "0"], "close 3 is outside"),
    ([OPEN_TIME, "1", "1", "2", "1", "0", OPEN_TIME + 59_999, "0", 0, "0", "0", "0"], "high 1 is below low 2"),
    ([OPEN_TIME, "0", "0", "0", "0", "0", OPEN_TIME + 59_999, "0", 0, "0", "0", "0"], "open must be a price above"),
    ([OPEN_TIME, "1", "1", "1", "1", "1e-05", OPEN_TIME + 59_999, "0", 0, "0", "0", "0"], "volume is not a plain"),
    ([OPEN_TIME, "1", "1", "1", "1", "0", OPEN_TIME + 299_999, "0", 0, "0", "0", "0"], "close_time"),
    ([OPEN_TIME + 1, "1", "1", "1", "1", "0", OPEN_TIME + 60_000, "0", 0, "0", "0", "0"], "boundary"),
    ([OPEN_TIME, "1", "1", "1", "1", "0", OPEN_TIME + 59_999, "0", True, "0", "0", "0"], "trades is not an int"),
    ({"t": OPEN_TIME}, "an array of 12"),
    ([10**15, "1", "1", "1", "1", "0", 10**15 + 59_999, "0", 0, "0", "0", "0"], "not a time in milliseconds"),
])
def test_a_kline_the_reader_would_refuse_names_what_is_wrong(raw, problem) -> None:
    with pytest.raises(RowError, match=problem):
        parse_kline(raw)


@given(time=st.one_of(st.integers(0, 2**45), st.text(max_size=5), st.none(), st.booleans()),
       rate=st.one_of(plain_decimals, plain_decimals.map(lambda text: f"-{text}"), odd_numbers, st.floats()),
       symbol=st.sampled_from(["BTCUSDT", "ETHUSDT", None]))
def test_a_funding_entry_keeps_binance_s_exact_rate_or_is_refused(time, rate, symbol) -> None:
    entry = {"symbol": symbol, "fundingTime": time, "fundingRate": rate, "markPrice": "29000.1"}
    try:
        row = parse_funding(entry, "BTCUSDT")
    except RowError:
        assert symbol != "BTCUSDT" or not _is_int(time) or not isinstance(rate, str) or not PLAIN.fullmatch(rate)
        return
    assert row == FundingRow(time, rate)
    assert Decimal(row.csv_line().split(",")[1]) == Decimal(rate)
    assert funding_time(row.csv_line()) == time


@pytest.mark.parametrize("line", ["", "1682000000000", "1682000000000,", "x,0.0001", "1682000000000,1e-4",
                                  "1682000000000,0.0001,7", "²,0.0001"])
def test_a_line_that_is_not_a_whole_funding_row_has_no_time(line) -> None:
    assert funding_time(line) is None


@pytest.mark.parametrize(("limit", "weight"), [(1, 1), (99, 1), (100, 2), (499, 2), (500, 5), (1000, 5), (1001, 10),
                                               (1500, 10)])
def test_a_kline_page_weighs_what_binance_charges_for_its_limit(limit, weight) -> None:
    assert klines_weight(limit) == weight
