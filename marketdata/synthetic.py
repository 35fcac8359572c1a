"""Synthetic 1m candles for the offline default run: a seeded random walk with trending regimes.

The data is made up (and every caller says so): it exists so that ``uv run main.py`` works on a fresh clone
with no network and no data files. Same seed, same candles.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from decimal import Decimal

from utils.domain import Candle

MINUTE_MS = 60_000

#: Starting prices and tick sizes of the shipped symbols (close to April 2023 levels).
DEFAULT_SYMBOLS: dict[str, tuple[Decimal, Decimal, Decimal]] = {
    # symbol: (start price, tick size, typical 1m volume)
    "BTCUSDT": (Decimal("28000"), Decimal("0.1"), Decimal("250")),
    "ETHUSDT": (Decimal("1900"), Decimal("0.01"), Decimal("3000")),
    "LTCUSDT": (Decimal("90"), Decimal("0.01"), Decimal("9000")),
}


def synthetic_candles(symbol: str, *, start_ms: int, count: int, seed: int = 7,
                      start_price: Decimal | None = None, tick_size: Decimal | None = None,
                      base_volume: Decimal | None = None) -> Iterator[Candle]:
    """``count`` consecutive closed 1m candles for ``symbol`` starting at ``start_ms`` (a minute boundary)."""
    if start_ms % MINUTE_MS:
        raise ValueError("start_ms must be on a minute boundary")
    defaults = DEFAULT_SYMBOLS.get(symbol, (Decimal("100"), Decimal("0.01"), Decimal("1000")))
    price = float(start_price or defaults[0])
    tick = tick_size or defaults[1]
    volume_scale = float(base_volume or defaults[2])
    rng = random.Random(f"{seed}:{symbol}")
    drift = 0.0
    regime_left = 0
    sigma = 0.0007  # per-minute volatility, about 2.7 % a day

    def q(value: float) -> Decimal:
        return (Decimal(repr(value)) / tick).to_integral_value() * tick

    previous_close = q(price)
    for i in range(count):
        if regime_left <= 0:
            drift = rng.choice((-1, 0, 0, 1)) * sigma * rng.uniform(0.05, 0.25)
            regime_left = rng.randint(60, 720)
        regime_left -= 1
        open_price = previous_close
        path = [float(open_price)]
        for _ in range(4):
            path.append(path[-1] * math.exp(drift / 4 + sigma / 2 * rng.gauss(0, 1)))
        close = q(path[-1])
        high = max(q(max(path)), open_price, close)
        low = min(q(min(path)), open_price, close)
        volume = Decimal(repr(round(volume_scale * rng.lognormvariate(0, 0.5), 3)))
        mid = (high + low) / 2
        open_time = start_ms + i * MINUTE_MS
        taker = (volume * Decimal(repr(round(rng.uniform(0.3, 0.7), 3)))).quantize(Decimal("0.001"))
        yield Candle(
            symbol=symbol, open_time=open_time, close_time=open_time + MINUTE_MS - 1, open=open_price, high=high,
            low=low, close=close, volume=volume, quote_volume=(volume * mid).quantize(Decimal("0.00001")),
            trades=max(1, int(float(volume) * 4)), taker_buy_volume=taker,
            taker_buy_quote_volume=(taker * mid).quantize(Decimal("0.00001")),
        )
        previous_close = close
