"""Synthetic candles: deterministic, consistent OHLC, on the tick grid, contiguous minutes."""

from decimal import Decimal

from marketdata.synthetic import synthetic_candles


def test_synthetic_candles_are_valid_and_deterministic() -> None:
    first = list(synthetic_candles("BTCUSDT", start_ms=1_681_948_800_000, count=2_000, seed=3))
    again = list(synthetic_candles("BTCUSDT", start_ms=1_681_948_800_000, count=2_000, seed=3))
    other = list(synthetic_candles("BTCUSDT", start_ms=1_681_948_800_000, count=2_000, seed=4))
    assert first == again and first != other
    for previous, candle in zip(first, first[1:], strict=False):
        assert candle.open_time == previous.open_time + 60_000
        assert candle.open == previous.close
    for candle in first:
        assert candle.low <= min(candle.open, candle.close) <= max(candle.open, candle.close) <= candle.high
        assert candle.close_time == candle.open_time + 59_999
        for price in (candle.open, candle.high, candle.low, candle.close):
            assert price % Decimal("0.1") == 0
        assert candle.volume > 0 and candle.taker_buy_volume <= candle.volume
