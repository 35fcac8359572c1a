"""The runner isolates strategies: one that raises is disabled for its symbol only; warm-up discards signals."""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal
from itertools import chain

import pytest

from strategies.base import Strategy, StrategyParams
from strategies.donchian_breakout import DonchianBreakout
from strategies.ema_crossover import EmaCrossover
from strategies.runner import DisabledStrategy, StrategyRunner
from utils.domain import Candle, MarkPrice, Signal, SignalSide


class Exploding(Strategy):
    """Counts candles and raises on candle number ``fail_on_candle``."""

    name = "exploding"

    class Params(StrategyParams):
        fail_on_candle: int = 5

    def __init__(self, symbol: str, params: Params | None = None) -> None:
        super().__init__(symbol, params)
        self.candles_seen = 0

    @property
    def warmup_candles(self) -> int:
        return 7

    def on_candle(self, candle: Candle) -> Signal | None:
        self.candles_seen += 1
        if self.candles_seen == self.params.fail_on_candle:
            raise RuntimeError(f"boom on candle {self.candles_seen}")
        return None


class Misbehaving(Strategy):
    """Returns a signal with a strength outside [0, 1] on its first candle."""

    name = "misbehaving"

    @property
    def warmup_candles(self) -> int:
        return 0

    def on_candle(self, candle: Candle) -> Signal | None:
        return self.signal(candle, SignalSide.LONG, "too strong", Decimal(2))

    def on_mark_price(self, mark: MarkPrice) -> Signal | None:
        raise ZeroDivisionError("mark price handler bug")


def interleave(*streams: list[Candle]) -> list[Candle]:
    """One candle of each symbol per minute, as the live feed delivers them."""
    return list(chain.from_iterable(zip(*streams, strict=False)))


def standalone_signals(strategy: Strategy, candles: list[Candle]) -> list[Signal]:
    return [signal for signal in map(strategy.on_candle, candles) if signal is not None]


def test_a_raising_strategy_is_disabled_for_its_symbol_only(
    btc_candles: list[Candle], eth_candles: list[Candle], caplog: pytest.LogCaptureFixture
) -> None:
    btc, eth = btc_candles[:3000], eth_candles[:3000]
    exploding_btc = Exploding("BTCUSDT")
    exploding_eth = Exploding("ETHUSDT", Exploding.Params(fail_on_candle=10**9))
    runner = StrategyRunner([exploding_btc, EmaCrossover("BTCUSDT"), exploding_eth, EmaCrossover("ETHUSDT")])

    with caplog.at_level(logging.ERROR, logger="strategies.runner"):
        signals = [signal for candle in interleave(btc, eth) for signal in runner.on_candle(candle)]

    failure = DisabledStrategy("exploding", "BTCUSDT", "RuntimeError: boom on candle 5", btc[4].close_time)
    assert runner.disabled == (failure,)
    assert not runner.is_enabled("exploding", "BTCUSDT")
    assert runner.is_enabled("exploding", "ETHUSDT") and runner.is_enabled("ema_crossover", "BTCUSDT")
    assert exploding_btc.candles_seen == 5  # never called again
    assert runner.status() == {  # the heartbeat's "strategies" section
        "running": [{"strategy": "ema_crossover", "symbol": "BTCUSDT"}, {"strategy": "exploding", "symbol": "ETHUSDT"},
                    {"strategy": "ema_crossover", "symbol": "ETHUSDT"}],
        "disabled": [{"strategy": "exploding", "symbol": "BTCUSDT", "reason": "RuntimeError: boom on candle 5",
                      "since_time": btc[4].close_time}],
    }
    assert exploding_eth.candles_seen == 3000
    for symbol, candles in (("BTCUSDT", btc), ("ETHUSDT", eth)):
        got = [signal for signal in signals if signal.symbol == symbol]
        assert got == standalone_signals(EmaCrossover(symbol), candles) and got

    [record] = caplog.records
    assert record.name == "strategies.runner" and record.levelno == logging.ERROR
    assert (record.strategy, record.symbol) == ("exploding", "BTCUSDT")
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert "boom on candle 5" in caplog.text and "Traceback" in caplog.text


def test_an_invalid_signal_or_a_raising_mark_price_handler_disables_too(btc_candles: list[Candle]) -> None:
    runner = StrategyRunner([Misbehaving("BTCUSDT"), Misbehaving("ETHUSDT"), EmaCrossover("BTCUSDT")])
    assert runner.on_candle(btc_candles[0]) == []
    mark = MarkPrice("ETHUSDT", 1, Decimal(1900), Decimal(1900), Decimal("0.0001"), 2)
    assert runner.on_mark_price(mark) == []
    reasons = {(disabled.strategy, disabled.symbol): disabled.reason for disabled in runner.disabled}
    assert reasons == {
        ("misbehaving", "BTCUSDT"): "ValueError: signal strength Decimal('2') is not a Decimal in [0, 1]",
        ("misbehaving", "ETHUSDT"): "ZeroDivisionError: mark price handler bug",
    }
    assert runner.on_mark_price(dataclasses.replace(mark, symbol="BTCUSDT")) == []  # default: no signal
    assert runner.is_enabled("ema_crossover", "BTCUSDT")


def test_warm_up_discards_signals_and_live_continues_from_the_warm_state(btc_candles: list[Candle]) -> None:
    history, live = btc_candles[:2000], btc_candles[2000:4000]
    strategy = EmaCrossover("BTCUSDT")
    runner = StrategyRunner([strategy])
    assert standalone_signals(EmaCrossover("BTCUSDT"), history)  # history alone would have signalled

    assert runner.warm_up(strategy, history) == 2000
    live_signals = [signal for candle in live for signal in runner.on_candle(candle)]

    continuous = standalone_signals(EmaCrossover("BTCUSDT"), history + live)
    assert live_signals == [signal for signal in continuous if signal.candle_open_time >= live[0].open_time]
    assert live_signals


def test_warm_up_isolates_failures_and_checks_its_input(btc_candles: list[Candle]) -> None:
    exploding, donchian = Exploding("BTCUSDT"), DonchianBreakout("BTCUSDT")
    runner = StrategyRunner([exploding, donchian])
    assert runner.warm_up(exploding, btc_candles[:10]) == 5  # the fifth raised; nothing after it is fed
    assert [disabled.strategy for disabled in runner.disabled] == ["exploding"]
    assert runner.warm_up(donchian, btc_candles[:30]) == 30
    with pytest.raises(ValueError, match=r"add .* before warming it up"):
        runner.warm_up(EmaCrossover("BTCUSDT"), btc_candles[:10])
    with pytest.raises(ValueError, match="warm-up candle for ETHUSDT"):
        runner.warm_up(donchian, [dataclasses.replace(btc_candles[30], symbol="ETHUSDT")])


def test_warmup_candles_per_symbol_is_the_largest_need() -> None:
    runner = StrategyRunner([EmaCrossover("BTCUSDT"), DonchianBreakout("BTCUSDT"), DonchianBreakout("ETHUSDT")])
    assert [strategy.warmup_candles for strategy in runner.strategies] == [104, 20, 20]
    needs = [runner.warmup_candles(symbol) for symbol in ("BTCUSDT", "ETHUSDT", "XRPUSDT")]
    assert needs == [104, 20, 0]


def test_only_new_closed_candles_reach_the_strategies(btc_candles: list[Candle]) -> None:
    exploding = Exploding("BTCUSDT", Exploding.Params(fail_on_candle=10**9))
    runner = StrategyRunner([exploding])
    runner.on_candle(dataclasses.replace(btc_candles[0], closed=False))
    for candle in (btc_candles[0], btc_candles[1], btc_candles[1], btc_candles[0], btc_candles[2]):
        runner.on_candle(candle)
    assert exploding.candles_seen == 3
    assert runner.on_candle(btc_candles[3]) == []


def test_each_strategy_symbol_pair_is_added_once() -> None:
    runner = StrategyRunner([EmaCrossover("BTCUSDT")])
    runner.add(EmaCrossover("ETHUSDT"))
    with pytest.raises(ValueError, match="'ema_crossover' already runs for BTCUSDT"):
        runner.add(EmaCrossover("BTCUSDT", EmaCrossover.Params(fast=5, slow=10)))
