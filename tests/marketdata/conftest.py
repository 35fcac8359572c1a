"""Fixtures for the download tests: a real week of BTCUSDT and ETHUSDT 1m klines and funding from ../shared."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from utils.domain import Candle
from utils.klines_csv import load_klines_csv

WEEK = "2023-04-20_2023-04-26"
WEEK_START_MS = 1_681_948_800_000  # 2023-04-20 00:00 UTC
WEEK_END_MS = WEEK_START_MS + 7 * 86_400_000  # 2023-04-27 00:00 UTC, not included


@dataclass(frozen=True)
class RealWeek:
    """The week's candles per symbol, the files they come from, and BTCUSDT's and ETHUSDT's real funding rates."""

    candles: dict[str, list[Candle]]
    files: dict[str, Path]
    funding: dict[str, list[tuple[int, Decimal]]]

    def lines(self, symbol: str) -> list[str]:
        return self.files[symbol].read_text(encoding="utf-8").splitlines()


def _funding(path: Path) -> list[tuple[int, Decimal]]:
    with open(path, newline="", encoding="utf-8") as file:
        return [(int(row["funding_time_ms"]), Decimal(row["funding_rate"])) for row in csv.DictReader(file)]


@pytest.fixture(scope="session")
def real_week(shared_dir: Path) -> RealWeek:
    data = shared_dir / "data"
    files = {symbol: data / "usdm_1m" / f"{symbol}_usdm_1m_{WEEK}.csv" for symbol in ("BTCUSDT", "ETHUSDT")}
    funding = {symbol: [(time, rate) for time, rate in
                        _funding(data / "funding_mark" / f"{symbol}_funding_rate_2023-01-01_2023-04-26.csv")
                        if WEEK_START_MS <= time < WEEK_END_MS]
               for symbol in files}
    return RealWeek({symbol: load_klines_csv(path) for symbol, path in files.items()}, files, funding)
