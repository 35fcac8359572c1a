"""Fixtures for the simulator tests: real 1m candles from ../shared, the shipped symbols, an exchange factory."""

from __future__ import annotations

import csv
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from simulator.engine import SimConfig, SimExchange
from simulator.exchange_info import load_symbol_filters
from utils.clock import SimulatedClock
from utils.domain import Candle, MarkPrice
from utils.filters import SymbolFilters

WEEK = "2023-04-20_2023-04-26"


def read_candles(path: Path, symbol: str) -> list[Candle]:
    """A data.binance.vision 1m CSV (columns in ../shared/data/README.md), prices kept as exact Decimals."""
    with open(path, newline="") as handle:
        return [
            Candle(symbol=symbol, open_time=int(row["open_time_ms"]), close_time=int(row["close_time_ms"]),
                   open=Decimal(row["open"]), high=Decimal(row["high"]), low=Decimal(row["low"]),
                   close=Decimal(row["close"]), volume=Decimal(row["volume"]),
                   quote_volume=Decimal(row["quote_volume"]), trades=int(row["trades"]),
                   taker_buy_volume=Decimal(row["taker_buy_volume"]),
                   taker_buy_quote_volume=Decimal(row["taker_buy_quote_volume"]))
            for row in csv.DictReader(handle)
        ]


@pytest.fixture(scope="session")
def week_candles(usdm_1m_dir: Path) -> dict[str, list[Candle]]:
    """BTCUSDT, ETHUSDT, LTCUSDT 1m candles for 2023-04-20..26 (10,080 each, aligned)."""
    return {symbol: read_candles(usdm_1m_dir / f"{symbol}_usdm_1m_{WEEK}.csv", symbol)
            for symbol in ("BTCUSDT", "ETHUSDT", "LTCUSDT")}


@pytest.fixture(scope="session")
def btc_january(usdm_1m_dir: Path) -> list[Candle]:
    """BTCUSDT 1m candles of 2023-01-01..2023-03-09 (97,920; quiet New-Year minutes traded under 5 BTC)."""
    return read_candles(usdm_1m_dir / "BTCUSDT_usdm_1m_2023-01-01_2023-03-09.csv", "BTCUSDT")


@pytest.fixture(scope="session")
def btc(week_candles: dict[str, list[Candle]]) -> list[Candle]:
    return week_candles["BTCUSDT"]


@pytest.fixture(scope="session")
def ltc(week_candles: dict[str, list[Candle]]) -> list[Candle]:
    return week_candles["LTCUSDT"]


@pytest.fixture(scope="session")
def symbol_filters() -> dict[str, SymbolFilters]:
    return load_symbol_filters()


class Venue:
    """A SimExchange with its clock and a recorder of every event it pushed."""

    def __init__(self, exchange: SimExchange, clock: SimulatedClock) -> None:
        self.exchange = exchange
        self.clock = clock
        self.events: list[dict] = []
        exchange.add_listener(self.events.append)

    def candle(self, candle: Candle) -> None:
        """Feed a closed candle at its close time (the earliest moment it is known)."""
        if self.clock.now_ms() < candle.close_time:
            self.clock.set(candle.close_time)
        self.exchange.on_candle(candle)

    def candles(self, candles: list[Candle]) -> None:
        for candle in candles:
            self.candle(candle)

    def mark(self, symbol: str, price: Decimal, *, rate: Decimal = Decimal("0.0001"), next_funding_time: int = 0,
             at: int | None = None) -> None:
        if at is not None:
            self.clock.set(at)
        self.exchange.on_mark_price(MarkPrice(symbol, self.clock.now_ms(), price, price, rate, next_funding_time))

    def of_type(self, event_type: str) -> list[dict]:
        return [event for event in self.events if event["e"] == event_type]

    def order_updates(self, client_order_id: str | None = None) -> list[dict]:
        return [event["o"] for event in self.of_type("ORDER_TRADE_UPDATE")
                if client_order_id is None or event["o"]["c"] == client_order_id]


@pytest.fixture
def make_venue(symbol_filters: dict[str, SymbolFilters]) -> Callable[..., Venue]:
    def make(*, config: SimConfig = SimConfig(), balance: Decimal = Decimal("10000"), start_ms: int = 0,
             filters: dict[str, SymbolFilters] | None = None) -> Venue:
        clock = SimulatedClock(start_ms)
        exchange = SimExchange(filters or symbol_filters, clock=clock, config=config, initial_balance=balance)
        return Venue(exchange, clock)

    return make
