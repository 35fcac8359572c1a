"""Fixtures for the download tests: a real week of BTCUSDT and ETHUSDT 1m klines and funding from ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.marketdata.week import WEEK, WEEK_END_MS, WEEK_START_MS, RealWeek, read_funding
from utils.klines_csv import load_klines_csv


@pytest.fixture(scope="session")
def real_week(shared_dir: Path) -> RealWeek:
    data = shared_dir / "data"
    files = {symbol: data / "usdm_1m" / f"{symbol}_usdm_1m_{WEEK}.csv" for symbol in ("BTCUSDT", "ETHUSDT")}
    funding = {symbol: [(time, rate) for time, rate in
                        read_funding(data / "funding_mark" / f"{symbol}_funding_rate_2023-01-01_2023-04-26.csv")
                        if WEEK_START_MS <= time < WEEK_END_MS]
               for symbol in files}
    return RealWeek({symbol: load_klines_csv(path) for symbol, path in files.items()}, files, funding)
