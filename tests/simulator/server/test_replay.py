"""The market replay and its clocks: candles released once each as the market clock passes their close, the forming
candle revealed along the fill model's intrabar path, aggregated klines, and the clock at N x real time."""

from __future__ import annotations

from decimal import Decimal

import pytest

from simulator.engine import SimExchange
from simulator.server.clock import GatewayClock, MarketClock
from simulator.server.replay import MarketReplay, aggregate, bucket_of, forming_candle
from utils.clock import SimulatedClock
from utils.domain import Candle

MINUTE = 60_000
T0 = 1_681_948_800_000  # 2023-04-20 00:00 UTC, a Thursday


def candle(open_time: int, o: str, h: str, low: str, c: str, volume: str = "90", trades: int = 30) -> Candle:
    return Candle("BTCUSDT", open_time, open_time + MINUTE - 1, Decimal(o), Decimal(h), Decimal(low), Decimal(c),
                  Decimal(volume), quote_volume=Decimal("2700000.0"), trades=trades,
                  taker_buy_volume=Decimal("45"), taker_buy_quote_volume=Decimal("1350000.0"))


def test_a_bullish_candle_forms_open_low_high_close():
    bullish = candle(T0, "30000.0", "30300.0", "29700.0", "30200.0")
    tick = Decimal("0.1")
    start = forming_candle(bullish, 0, tick)
    assert (start.open, start.high, start.low, start.close, start.volume, start.trades) == (
        Decimal("30000.0"), Decimal("30000.0"), Decimal("30000.0"), Decimal("30000.0"), Decimal("0"), 0)
    at_low = forming_candle(bullish, 20_000, tick)  # a third of the minute: at the low
    assert (at_low.low, at_low.close, at_low.high) == (Decimal("29700.0"), Decimal("29700.0"), Decimal("30000.0"))
    halfway = forming_candle(bullish, 30_000, tick)  # half way from the low to the high
    assert (halfway.close, halfway.high, halfway.low) == (Decimal("30000.0"), Decimal("30000.0"), Decimal("29700.0"))
    assert halfway.volume == Decimal("45") and halfway.trades == 15 and not halfway.closed
    near_end = forming_candle(bullish, 50_000, tick)  # past the high, on the way to the close
    assert (near_end.high, near_end.close) == (Decimal("30300.0"), Decimal("30250.0"))


def test_a_bearish_candle_forms_open_high_low_close():
    bearish = candle(T0, "30000.0", "30300.0", "29700.0", "29800.0")
    at_high = forming_candle(bearish, 20_000, Decimal("0.1"))
    assert (at_high.high, at_high.low, at_high.close) == (Decimal("30300.0"), Decimal("30000.0"), Decimal("30300.0"))


def _replay(candles: list[Candle]) -> tuple[MarketReplay, SimExchange, SimulatedClock]:
    clock = SimulatedClock(candles[0].open_time)
    exchange = SimExchange.from_exchange_info(clock=clock)
    return MarketReplay({"BTCUSDT": candles}, [exchange], clock), exchange, clock


def test_candles_reach_the_exchange_once_each_at_their_close():
    candles = [candle(T0 + i * MINUTE, "30000.0", "30100.0", "29900.0", f"{30000 + i}.0") for i in range(5)]
    replay, exchange, clock = _replay(candles)
    closed: list[tuple[int, int]] = []
    replay.on_closed(lambda c, view, event_time: closed.append((c.open_time, event_time)))
    replay.advance_to(T0 + MINUTE - 1)
    assert closed == [] and exchange.last_price("BTCUSDT") == 0
    replay.advance_to(T0 + MINUTE)
    assert closed == [(T0, T0 + MINUTE)] and exchange.last_price("BTCUSDT") == Decimal("30000.0")
    replay.advance_to(T0 + 3 * MINUTE + 5)
    assert closed[1:] == [(T0 + MINUTE, T0 + 2 * MINUTE), (T0 + 2 * MINUTE, T0 + 3 * MINUTE)]
    assert clock.now_ms() == T0 + 3 * MINUTE + 5
    replay.advance_to(T0 + 3 * MINUTE + 5)
    assert len(closed) == 3


def test_klines_never_show_the_future():
    candles = [candle(T0 + i * MINUTE, "30000.0", "30100.0", "29900.0", "30050.0") for i in range(10)]
    replay, _, _ = _replay(candles)
    now = T0 + 4 * MINUTE + 30_000
    shown = replay.klines("BTCUSDT", "1m", now, limit=500)
    assert [c.open_time for c in shown] == [T0 + i * MINUTE for i in range(5)]
    assert shown[-1].volume == Decimal("45") and not shown[-1].closed and shown[0].closed
    assert replay.klines("BTCUSDT", "1m", now, start_time=T0 + 2 * MINUTE, limit=2)[0].open_time == T0 + 2 * MINUTE
    assert replay.klines("BTCUSDT", "1m", now, end_time=T0 + 2 * MINUTE, limit=2)[-1].open_time == T0 + 2 * MINUTE
    five = replay.klines("BTCUSDT", "5m", now, limit=10)
    assert [(c.open_time, c.closed) for c in five] == [(T0, False)]
    assert five[0].volume == Decimal("405")  # four whole minutes and half of the fifth


def test_aggregation_and_week_buckets():
    minutes = [candle(T0 + i * MINUTE, "1.0", str(2 + i) + ".0", "0.5", "1.5") for i in range(3)]
    three = aggregate(minutes, "3m", T0, 3 * MINUTE)
    assert (three.high, three.low, three.volume, three.trades, three.close_time, three.closed) == (
        Decimal("4.0"), Decimal("0.5"), Decimal("270"), 90, T0 + 3 * MINUTE - 1, True)
    monday = T0 - 3 * 86_400_000  # 2023-04-17, the Monday before
    assert bucket_of(T0, 7 * 86_400_000) == monday


def test_the_market_clock_runs_at_its_speed_or_is_stepped():
    elapsed = SimulatedClock(0)
    running = MarketClock(T0, speed=60, elapsed=elapsed)
    elapsed.advance(1500)
    assert running.now_ms() == T0 + 90_000 and not running.stepped
    running.set(T0 + 10 * MINUTE)
    elapsed.advance(1000)
    assert running.now_ms() == T0 + 11 * MINUTE
    stepped = MarketClock(T0)
    assert stepped.stepped and stepped.advance(5) == T0 + 5
    with pytest.raises(ValueError):
        stepped.advance(-1)
    with pytest.raises(ValueError):
        MarketClock(T0, speed=-1)


def test_the_gateway_clock_shift_changes_only_what_clients_see():
    real = SimulatedClock(1000)
    gateway = GatewayClock(real)
    gateway.shift_ms = -300
    assert (gateway.now_ms(), gateway.server_time_ms()) == (1000, 700)
