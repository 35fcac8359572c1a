"""Replaying kline files: files that are not replayed are named, bad rows and gaps are counted per file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from marketdata.replay import csv_source
from marketdata.synthetic import synthetic_candles
from utils.klines_csv import write_klines_csv

START_MS = 1_681_948_800_000
CONFIGURED = ["BTCUSDT", "ETHUSDT"]


def write(path: Path, count: int, symbol: str = "BTCUSDT") -> Path:
    write_klines_csv(path, synthetic_candles(symbol, start_ms=START_MS, count=count))
    return path


def test_a_file_for_a_symbol_not_configured_and_an_empty_file_are_named_not_replayed(tmp_path: Path) -> None:
    btc = write(tmp_path / "BTCUSDT-1m-2023-04-20.csv", 5)
    doge = write(tmp_path / "DOGEUSDT-1m-2023-04-20.csv", 5, "DOGEUSDT")
    eth = tmp_path / "ETHUSDT-1m-2023-04-20.csv"
    eth.write_text("open_time,open,high,low,close,volume\n")
    source = csv_source([btc, doge, eth], symbols=CONFIGURED)
    assert source.symbols == ("BTCUSDT",)
    assert source.notes == [
        "DOGEUSDT-1m-2023-04-20.csv is for DOGEUSDT, which is not a configured symbol (BTCUSDT, ETHUSDT): "
        "not replayed",
        "ETHUSDT-1m-2023-04-20.csv holds no candles (it is empty, or has nothing but a header or bad rows): "
        "not replayed",
    ]
    assert [report.path for report in source.reports] == [btc]


def test_no_usable_file_at_all_is_an_error_that_names_why(tmp_path: Path) -> None:
    empty = tmp_path / "BTCUSDT-1m-2023-04-20.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"none of the data files .* has candles for a configured symbol "
                                         r"\(BTCUSDT, ETHUSDT\): BTCUSDT-1m-2023-04-20\.csv holds no candles"):
        csv_source([empty], symbols=CONFIGURED)


def test_the_report_counts_as_the_replay_reads(tmp_path: Path) -> None:
    path = write(tmp_path / "BTCUSDT-1m-2023-04-20.csv", 10)
    lines = path.read_text().splitlines()
    del lines[5]  # minute 4 missing
    lines.insert(8, lines[7])  # a duplicate row at line 9
    path.write_text("\n".join(lines) + "\n")
    source = csv_source([path], symbols=CONFIGURED)

    async def replay() -> int:
        return sum([len(group) async for group in source.minutes()])

    assert asyncio.run(replay()) == 9
    [report] = source.reports
    assert (report.candles, [row.line_number for row in report.skipped]) == (9, [9])
    assert [(gap.line_number, gap.missing) for gap in report.gaps] == [(6, 1)]
