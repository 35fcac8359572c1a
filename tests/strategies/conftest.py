"""Real Binance 1m candles shared by the strategy tests, read once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from utils.domain import Candle
from utils.klines_csv import load_klines_csv

WEEK_FILE = "{symbol}_usdm_1m_2023-04-20_2023-04-26.csv"


@pytest.fixture(scope="session")
def btc_candles(usdm_1m_dir: Path) -> list[Candle]:
    """BTCUSDT, 2023-04-20 to 2023-04-26: 10,080 closed 1m candles."""
    return load_klines_csv(usdm_1m_dir / WEEK_FILE.format(symbol="BTCUSDT"))


@pytest.fixture(scope="session")
def eth_candles(usdm_1m_dir: Path) -> list[Candle]:
    """ETHUSDT over the same week as ``btc_candles``."""
    return load_klines_csv(usdm_1m_dir / WEEK_FILE.format(symbol="ETHUSDT"))
