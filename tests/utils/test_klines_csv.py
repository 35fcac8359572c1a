"""Kline CSV files: the three data.binance.vision layouts, microsecond times, bad rows, streaming, exact round trips."""

from __future__ import annotations

import inspect
import itertools
import logging
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utils.domain import Candle
from utils.klines_csv import (
    HEADER,
    Gap,
    KlinesCsvError,
    KlinesReport,
    interval_from_filename,
    load_klines_csv,
    read_klines_csv,
    symbol_from_filename,
    to_milliseconds,
    write_klines_csv,
)

WEEK_FILE = "BTCUSDT_usdm_1m_2023-04-20_2023-04-26.csv"
BINANCE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
)
# The first two rows of WEEK_FILE, as text.
FIRST_ROWS = [
    "1681948800000,28795.00,28801.40,28781.20,28795.30,638.803,1681948859999,18390953.94060,5784,323.386,9310270.53580",
    "1681948860000,28795.20,28800.90,28759.60,28764.30,1128.514,1681948919999,"
    "32475785.89390,7067,394.750,11361036.68840",
]
FIRST_CANDLE = Candle(
    "BTCUSDT",
    1681948800000,
    1681948859999,
    Decimal("28795.00"),
    Decimal("28801.40"),
    Decimal("28781.20"),
    Decimal("28795.30"),
    Decimal("638.803"),
    quote_volume=Decimal("18390953.94060"),
    trades=5784,
    taker_buy_volume=Decimal("323.386"),
    taker_buy_quote_volume=Decimal("9310270.53580"),
)


def exact(candle: Candle) -> tuple:
    """Every field, Decimals as text: equal only if values AND written precision are the same."""
    return tuple(str(value) if isinstance(value, Decimal) else value for value in vars_of(candle))


def vars_of(candle: Candle) -> list:
    return [getattr(candle, name) for name in candle.__slots__]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_the_shared_11_column_file(usdm_1m_dir: Path) -> None:
    candles = load_klines_csv(usdm_1m_dir / WEEK_FILE)
    assert len(candles) == 10_080
    assert exact(candles[0]) == exact(FIRST_CANDLE)
    assert all(candle.close_time == candle.open_time + 59_999 for candle in candles)
    assert all(later.open_time - earlier.open_time == 60_000 for earlier, later in itertools.pairwise(candles))


def test_writing_the_shared_file_back_gives_the_same_bytes(usdm_1m_dir: Path, tmp_path: Path) -> None:
    original = usdm_1m_dir / WEEK_FILE
    copy = tmp_path / WEEK_FILE
    assert write_klines_csv(copy, read_klines_csv(original)) == 10_080
    assert copy.read_bytes() == original.read_bytes()


def test_reads_the_6_column_form_with_close_time_from_the_interval(shared_dir: Path) -> None:
    path = shared_dir / "data" / "usdm_1m_2025" / "BTCUSDT_usdm_1m_2025-05-04_2025-06-03.csv"
    first, second = itertools.islice(read_klines_csv(path), 2)
    assert exact(first) == exact(
        Candle(
            "BTCUSDT",
            1746372780000,
            1746372839999,
            Decimal("95505.4"),
            Decimal("95505.5"),
            Decimal("95502.7"),
            Decimal("95502.7"),
            Decimal("16.536"),
        )
    )
    assert second.open_time == first.open_time + 60_000


def test_reads_binance_12_column_files_with_and_without_header(tmp_path: Path) -> None:
    rows = [row + ",0" for row in FIRST_ROWS]
    with_header = load_klines_csv(write_lines(tmp_path / "BTCUSDT-1m-2023-04-20.csv", [BINANCE_HEADER, *rows]))
    without_header = load_klines_csv(write_lines(tmp_path / "BTCUSDT-1m-2023-04-21.csv", rows))
    assert [exact(candle) for candle in with_header] == [exact(candle) for candle in without_header]
    assert exact(with_header[0]) == exact(FIRST_CANDLE)
    assert len(with_header) == 2


def test_microsecond_times_become_milliseconds(tmp_path: Path) -> None:
    microsecond_row = (
        "1735689600000000,93576.00,93610.93,93537.50,93610.93,8.21827,1735689659999999,768978.8,1674,3.8,355669.5,0"
    )
    path = write_lines(tmp_path / "BTCUSDT-1m-2025-01-01.csv", [BINANCE_HEADER, microsecond_row])
    [candle] = load_klines_csv(path)
    assert (candle.open_time, candle.close_time) == (1735689600000, 1735689659999)
    assert (to_milliseconds(1735689600000), to_milliseconds(1735689659999999)) == (1735689600000, 1735689659999)


def test_reads_a_downloaded_zip_directly(tmp_path: Path) -> None:
    archive = tmp_path / "BTCUSDT-1m-2023-04-20.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("BTCUSDT-1m-2023-04-20.csv", "\n".join(row + ",0" for row in FIRST_ROWS) + "\n")
    first, second = load_klines_csv(archive)
    assert exact(first) == exact(FIRST_CANDLE) and second.open_time == 1681948860000


def test_symbol_and_interval_come_from_the_file_name_unless_given(tmp_path: Path) -> None:
    assert symbol_from_filename("ETHUSDT_usdm_1m_2023-04-20_2023-04-26.csv") == "ETHUSDT"
    assert symbol_from_filename("/data/LTCUSDT-5m-2024-01.zip") == "LTCUSDT"
    assert (interval_from_filename("LTCUSDT-5m-2024-01.zip"), interval_from_filename("x_y.csv")) == ("5m", "1m")
    path = write_lines(tmp_path / "klines.csv", FIRST_ROWS)
    with pytest.raises(ValueError, match=r"cannot tell the symbol from the file name 'klines\.csv'.*pass symbol="):
        read_klines_csv(path)
    candle = next(read_klines_csv(path, "SOLUSDT", interval="5m"))
    assert (candle.symbol, candle.interval) == ("SOLUSDT", "5m")
    six_columns = write_lines(tmp_path / "ETHUSDT-5m.csv", ["1746372780000,1,2,0.5,1.5,10"])
    assert next(read_klines_csv(six_columns)).close_time == 1746372780000 + 5 * 60_000 - 1


def test_reading_streams_one_row_at_a_time(usdm_1m_dir: Path) -> None:
    candles = read_klines_csv(usdm_1m_dir / "BTCUSDT_usdm_1m_2023-01-01_2023-03-09.csv")  # 97,920 rows
    assert inspect.isgenerator(candles)
    first_three = list(itertools.islice(candles, 3))
    assert [candle.open_time for candle in first_three] == [1672531200000, 1672531260000, 1672531320000]
    assert inspect.getgeneratorstate(candles) == inspect.GEN_SUSPENDED  # the rest is still unread
    candles.close()


@pytest.mark.parametrize(
    ("bad_row", "problem"),
    [
        ("1681948920000,28764.30,28770,oops,28766.0,10,1681948979999,1,2,3,4", "low is not a number ('oops')"),
        ("1681948920000,28764.30,28770,28760,NaN,10,1681948979999,1,2,3,4", "close is not a finite number ('NaN')"),
        ("1681948920000,28764.30,28770,28760,28766.0,10,1681948979999,1,2,3", "10 columns where the file has 11"),
        ("2023-04-20 00:02,28764.30,28770,28760,28766.0,10,1681948979999,1,2,3,4", "open_time is not a non-negative"),
        ("1681948920000,28764.30,28770,28760,28766.0,10,1681948979999,1,2.5,3,4", "trades is not a non-negative"),
        ("1681948920000,28764.30,28760,28770,28766.0,10,1681948979999,1,2,3,4", "high 28760 is below low 28770"),
        ("1681948920000,-1,28770,28760,28766.0,10,1681948979999,1,2,3,4", "open must be a price above 0 (got -1)"),
        ("1681948920000,28764.30,28770,28760,0,10,1681948979999,1,2,3,4", "close must be a price above 0 (got 0)"),
        ("1681948920000,28780,28770,28760,28766.0,10,1681948979999,1,2,3,4",
         "open 28780 is outside the candle's low..high (28760..28770)"),
        ("1681948920000,28764.30,28770,28760,28766.0,-10,1681948979999,1,2,3,4", "volume is negative (-10)"),
        ("1681948920000,28764.30,28770,28760,28766.0,10,1681948979999,-1,2,3,4", "quote_volume is negative (-1)"),
        ("1681948920000,28764.30,28770,28760,28766.0,10,1681948919999,1,2,3,4",
         "close_time 1681948919999 is before open_time 1681948920000"),
        ("1681948860000,28764.30,28770,28760,28766.0,10,1681948919999,1,2,3,4",
         "open_time 1681948860000 is the same as the previous row's (1681948860000): a duplicated or out-of-order"),
        ("1681948800000,28764.30,28770,28760,28766.0,10,1681948859999,1,2,3,4",
         "open_time 1681948800000 is before the previous row's (1681948860000): a duplicated or out-of-order"),
    ],
)
def test_a_malformed_row_names_file_and_line(tmp_path: Path, bad_row: str, problem: str) -> None:
    path = write_lines(tmp_path / "BTCUSDT_usdm_1m.csv", [",".join(HEADER), *FIRST_ROWS, bad_row])
    candles = read_klines_csv(path)
    assert [candle.open_time for candle in itertools.islice(candles, 2)] == [1681948800000, 1681948860000]
    with pytest.raises(KlinesCsvError) as raised:
        next(candles)
    assert (raised.value.path, raised.value.line_number) == (path, 4)
    assert str(raised.value).startswith(f"{path}:4: {problem}")
    assert "skip_bad=True" in str(raised.value)


def test_skip_bad_logs_and_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_lines(tmp_path / "BTCUSDT_usdm_1m.csv", [FIRST_ROWS[0], "1681948860000,x", "", FIRST_ROWS[1]])
    with caplog.at_level(logging.WARNING, logger="utils.klines_csv"):
        candles = load_klines_csv(path, skip_bad=True)
    assert [candle.open_time for candle in candles] == [1681948800000, 1681948860000]
    [record] = caplog.records
    assert (record.path, record.line_number) == (str(path), 2)
    assert "2 columns where the file has 11" in record.problem


def test_skipped_rows_and_gaps_are_reported_with_their_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    row = "{open_time},28795.0,28801.4,28781.2,28795.3,1,{close_time},1,1,1,1"
    minute = 60_000
    start = 1681948800000

    def at(minutes: int) -> str:
        return row.format(open_time=start + minutes * minute, close_time=start + minutes * minute + minute - 1)

    # line 1 header; 2: 00:00; 3: 00:01; 4: 00:01 again; 5: 00:00 (back in time); 6: 00:05 (00:02-00:04 missing)
    path = write_lines(tmp_path / "BTCUSDT-1m-2023-04-20.csv", [",".join(HEADER), at(0), at(1), at(1), at(0), at(5)])
    report = KlinesReport(path)
    with caplog.at_level(logging.WARNING, logger="utils.klines_csv"):
        candles = list(read_klines_csv(path, skip_bad=True, report=report))
    assert [(candle.open_time - start) // minute for candle in candles] == [0, 1, 5]
    assert report.candles == 3
    assert [skipped.line_number for skipped in report.skipped] == [4, 5]
    assert report.gaps == [Gap(line_number=6, after_open_time=start + minute, open_time=start + 5 * minute, missing=3)]
    assert report.missing_intervals == 3
    assert [(record.message, record.line_number) for record in caplog.records] == [
        ("skipped a bad kline row", 4), ("skipped a bad kline row", 5), ("gap in the kline data", 6),
    ]
    assert all(record.path == str(path) for record in caplog.records)


def test_a_file_that_is_not_klines_is_refused_at_its_first_row(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "BTCUSDT_funding.csv", ["funding_time_ms,funding_rate", "1741276800000,6.818e-05"])
    with pytest.raises(KlinesCsvError, match=r"BTCUSDT_funding\.csv:1: first row has 2 columns"):
        load_klines_csv(path, skip_bad=True)


# Any digits at any scale, trailing zeros included ("16537.50"), and the odd exponent form ("1.2E+3", "4E-7").
decimals = st.builds(
    lambda digits, exponent: Decimal(digits).scaleb(exponent),
    st.integers(min_value=0, max_value=10**20),
    st.integers(min_value=-12, max_value=3),
)
prices = decimals.filter(lambda value: value > 0)
times = st.integers(min_value=0, max_value=10**15 - 60_000)


@st.composite
def candle_lists(draw: st.DrawFn) -> list[Candle]:
    """Rows a kline file can hold: open times rising, open and close within low..high, prices above 0."""
    open_times = sorted(draw(st.sets(times, max_size=10)))
    result = []
    for open_time in open_times:
        low, open_, close, high = sorted(draw(st.lists(prices, min_size=4, max_size=4)))
        if draw(st.booleans()):
            open_, close = close, open_
        result.append(Candle(
            "BTCUSDT", open_time, open_time + draw(st.integers(min_value=0, max_value=59_999)),
            open_, high, low, close, draw(decimals),
            quote_volume=draw(decimals), trades=draw(st.integers(min_value=0, max_value=10**9)),
            taker_buy_volume=draw(decimals), taker_buy_quote_volume=draw(decimals),
        ))
    return result


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(candle_lists())
def test_write_then_read_round_trips_exactly(tmp_path: Path, written: list[Candle]) -> None:
    path = tmp_path / "BTCUSDT_usdm_1m_roundtrip.csv"
    assert write_klines_csv(path, written) == len(written)
    assert [exact(candle) for candle in read_klines_csv(path)] == [exact(candle) for candle in written]
