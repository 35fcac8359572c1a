"""A real week of BTCUSDT and ETHUSDT 1m klines and funding from ../shared, and a simulator server serving it."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from marketdata.download import TimeRange
from utils.domain import Candle

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


def read_funding(path: Path) -> list[tuple[int, Decimal]]:
    with open(path, newline="", encoding="utf-8") as file:
        return [(int(row["funding_time_ms"]), Decimal(row["funding_rate"])) for row in csv.DictReader(file)]


MINUTE = 60_000
HOUR = 3_600_000
WEEK_SPAN = TimeRange(WEEK_START_MS, WEEK_END_MS)
KLINE_NAME = "{}_usdm_1m_2023-04-20_2023-04-26.csv"
FUNDING_NAME = "{}_funding_rate_2023-04-20_2023-04-26.csv"


class ShiftedClock:
    """Real time moved by ``offset_ms`` (set it so a rate-limit window of the server ends soon)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def to_second_of_minute(self, second: float) -> None:
        now = time.time_ns() // 1_000_000
        self.offset_ms = (now // MINUTE + 1) * MINUTE + int(second * 1000) - now


async def serve_week(factory, real_week: RealWeek, *, candles=None, real_funding: bool = True, **config):
    """A server holding the week (or ``candles``), its market clock moved past the week's end; with
    ``real_funding``, every funding is settled at the real rate Binance had."""
    server = await factory(candles=candles or real_week.candles, **config)
    if real_funding:
        settlements = sorted((time - time % HOUR, symbol, rate) for symbol, rows in real_week.funding.items()
                             for time, rate in rows)
        for funding_time, symbol, rate in settlements:
            if funding_time - MINUTE > server.market_clock.now_ms():
                await server.advance_to(funding_time - MINUTE)
            server.exchange().set_funding_rate(symbol, rate)
    await server.advance_to(WEEK_END_MS + 5 * MINUTE)
    return server
