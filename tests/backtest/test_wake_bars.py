"""The wake-bar rule, proven against the every-bar run on real candles.

Each case runs twice on the same real klines: every bar through the exchange and the core (``every_bar=True``),
and only the wake bars (the default). Everything the core asked to store must be the same, command for command
and to the last decimal: signals and their outcomes, order intents, every order report, fills, positions, funding
payments, risk states, round trips; and the account (wallet, fees, funding, realized PnL). Each case also checks
that what it is there to exercise did happen (stops triggered, TTL cancels, liquidations, a daily-loss REDUCING),
so a case cannot pass by trading nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backtest.data import BarSeries, load_bars
from backtest.engine import Backtest, BacktestResult
from config.symbols import EntryOrderType, RiskConfig, SymbolsConfig, load_symbols
from executor.commands import PersistFill, PersistFunding, PersistOrder, PersistRiskState
from utils.domain import MarginType, PositionMode, SizingMode

pytestmark = pytest.mark.shared_data

REPO = Path(__file__).resolve().parents[2]
SHIPPED = load_symbols(REPO / "config" / "symbols.toml")
ANCHOR = load_symbols(REPO / "benchmarks" / "ema_long_only.toml")
DAY = 86_400_000
WEEK_START = 1_681_948_800_000  # 2023-04-20


def variant(config: SymbolsConfig, risk: RiskConfig | None = None, symbol: dict[str, Any] | None = None,
            **strategy: Any) -> SymbolsConfig:
    symbols = [s.model_copy(update={"strategies": [st.model_copy(update=strategy) for st in s.strategies],
                                    **(symbol or {})}) for s in config.symbols]
    return config.model_copy(update={"symbols": symbols, **({"risk": risk} if risk is not None else {})})


NO_STOPS = {"stop_loss_pct": None, "take_profit_pct": None}
BIG = SHIPPED.symbols[0].strategies[0].sizing.model_copy(update={"mode": SizingMode.FIXED_NOTIONAL,
                                                                 "value": Decimal(3000)})


def triggered_stops(result: BacktestResult) -> int:
    return sum(1 for c in result.journal.commands
               if isinstance(c, PersistOrder) and c.is_algo and c.order.status.value == "FILLED")


def liquidations(result: BacktestResult) -> int:
    return sum(1 for c in result.journal.commands
               if isinstance(c, PersistFill) and c.fill.client_order_id.startswith("autoclose"))


def guards(result: BacktestResult) -> set[str]:
    return {f"{c.record.state.value}:{c.record.guard}" for c in result.journal.commands
            if isinstance(c, PersistRiskState)}


def funding(result: BacktestResult) -> int:
    return sum(1 for c in result.journal.commands if isinstance(c, PersistFunding))


Check = Callable[[BacktestResult], bool]
CASES: dict[str, tuple[SymbolsConfig, PositionMode, int, list[Check]]] = {
    # name: (configuration, position mode, symbols (1: BTC only), what must have happened)
    "shipped strategies, stops, one-way": (SHIPPED, PositionMode.ONEWAY, 3, [
        lambda r: triggered_stops(r) > 5, lambda r: "HALTED:consecutive_losses" in guards(r), lambda r: funding(r) > 0]),
    "shipped strategies, stops, hedge": (SHIPPED, PositionMode.HEDGE, 3, [lambda r: triggered_stops(r) > 5]),
    "shipped strategies, no stops, one-way": (variant(SHIPPED, **NO_STOPS), PositionMode.ONEWAY, 3, [
        lambda r: r.core.stats.closed_trades > 50]),
    "shipped strategies, no stops, hedge": (variant(SHIPPED, **NO_STOPS), PositionMode.HEDGE, 3, [
        lambda r: r.core.stats.closed_trades > 50]),
    "limit entries with a TTL, hedge": (variant(SHIPPED, entry_order_type=EntryOrderType.LIMIT,
                                                limit_offset_bps=Decimal(5)), PositionMode.HEDGE, 3, [
        lambda r: r.core.stats.ttl_cancels > 50, lambda r: triggered_stops(r) > 5]),
    "isolated 50x, daily loss limit": (variant(SHIPPED, RiskConfig(daily_loss_limit_usdt=Decimal(20)),
                                               {"leverage": 50}, sizing=BIG, **NO_STOPS), PositionMode.HEDGE, 3, [
        lambda r: liquidations(r) > 0, lambda r: "REDUCING:daily_loss_limit" in guards(r)]),
    "cross 50x, three symbols": (variant(SHIPPED, RiskConfig(), {"leverage": 50, "margin_type": MarginType.CROSSED},
                                         sizing=BIG, **NO_STOPS), PositionMode.ONEWAY, 3, [
        lambda r: r.core.stats.closed_trades > 50]),
    "one symbol, three strategies, stops, hedge": (SHIPPED, PositionMode.HEDGE, 1, [
        lambda r: triggered_stops(r) > 2]),
    "long-only EMA 10/20 (the anchors' strategy)": (variant(ANCHOR, params={"fast": 10, "slow": 20,
                                                                            "long_only": True}),
                                                    PositionMode.ONEWAY, 1, [lambda r: r.core.stats.closed_trades > 100]),
}


@pytest.fixture(scope="module")
def week(usdm_1m_dir: Path) -> list[BarSeries]:
    """Four days of BTC, ETH and LTC (2023-04-20..23)."""
    return [load_bars(usdm_1m_dir / f"{symbol}_usdm_1m_2023-04-20_2023-04-26.csv").window(WEEK_START,
                                                                                          WEEK_START + 4 * DAY)
            for symbol in ("BTCUSDT", "ETHUSDT", "LTCUSDT")]


@pytest.mark.parametrize("name", list(CASES))
def test_wake_bars_give_the_every_bar_results(name: str, week: list[BarSeries]) -> None:
    config, mode, symbols, checks = CASES[name]
    series = week[:symbols]
    reference = Backtest(config, series, position_mode=mode, every_bar=True).run()
    woken = Backtest(config, series, position_mode=mode).run()
    assert reference.wake_bars == reference.bars
    assert woken.journal.commands == reference.journal.commands
    assert woken.exchange.account() == reference.exchange.account()
    assert woken.exchange.positions() == reference.exchange.positions()
    assert woken.exchange.user_trades("BTCUSDT") == reference.exchange.user_trades("BTCUSDT")
    for number, check in enumerate(checks):
        assert check(woken), f"{name}: check {number} found nothing to test"


def test_quiet_bars_are_skipped(week: list[BarSeries]) -> None:
    config = variant(ANCHOR, params={"fast": 200, "slow": 800, "long_only": True})
    result = Backtest(config, week[:1]).run()
    assert result.core.stats.closed_trades > 0
    assert result.wake_bars < result.bars / 20
