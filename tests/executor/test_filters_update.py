"""exchangeInfo read again while running: a changed filter applies from then on; a symbol not TRADING gets no new
entries, while exits still leave (the real core, simulated exchange and database, through the sync applier)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from executor.commands import FiltersUpdate
from tests.executor.harness import Harness
from utils.domain import OrderPurpose, PositionSide, SignalOutcome, SignalSide
from utils.filters import LotSize

BTC = ("BTCUSDT", PositionSide.BOTH)


@pytest.fixture
def harness(tmp_path):
    h = Harness(f"sqlite:///{tmp_path / 'trader.db'}")
    h.candle("30000")
    yield h
    h.close()


def _update(h: Harness, **changes: object) -> None:
    h.applier.feed(FiltersUpdate((replace(h.core.filters["BTCUSDT"], **changes),), h.clock.now_ms()))


def test_a_symbol_that_stops_trading_takes_no_new_entry_but_still_exits(harness: Harness) -> None:
    harness.signal(SignalSide.LONG)
    assert harness.core.holdings[BTC].amount == D("0.010")
    _update(harness, status="SETTLING")
    assert harness.core.symbols_not_trading() == {"BTCUSDT": "SETTLING"}
    assert "symbol not trading: no new entries" in harness.notices
    harness.candle("30100")
    harness.signal(SignalSide.FLAT)  # the exit goes out
    assert BTC not in harness.core.holdings or harness.core.holdings[BTC].amount == 0
    harness.candle("30200")
    harness.signal(SignalSide.LONG)  # a new entry does not
    latest = harness.repository.signal_records()[-1]
    assert latest.outcome is SignalOutcome.REFUSED_BY_RISK and "SETTLING" in (latest.outcome_detail or "")
    entries = [o for o in harness.repository.all_orders() if o.purpose is OrderPurpose.ENTRY]
    assert len(entries) == 1
    _update(harness, status="TRADING")
    assert harness.core.symbols_not_trading() == {}
    harness.candle("30300")
    harness.signal(SignalSide.LONG)
    assert harness.core.holdings[BTC].amount == D("0.009")  # 300 USDT at 30300, step 0.001


def test_a_changed_lot_step_is_used_from_then_on(harness: Harness) -> None:
    lot = harness.core.filters["BTCUSDT"].lot
    _update(harness, lot=LotSize(D("0.01"), lot.max_qty, D("0.01")),
            market_lot=LotSize(D("0.01"), lot.max_qty, D("0.01")))
    assert "exchange filters changed; the new ones apply from now on" in harness.notices
    harness.signal(SignalSide.LONG)
    (order,) = harness.repository.all_orders()[:1]
    assert order.quantity == D("0.01")  # 300 / 30000 = 0.01, on the new 0.01 step (was 0.010 on 0.001)
    assert harness.core.filters["BTCUSDT"].lot.step_size == D("0.01")


def test_an_unchanged_or_unconfigured_symbol_changes_nothing(harness: Harness) -> None:
    before = dict(harness.core.filters)
    other = replace(harness.core.filters["BTCUSDT"], symbol="XRPUSDT", status="BREAK")
    commands = harness.core.handle(FiltersUpdate((harness.core.filters["BTCUSDT"], other), harness.clock.now_ms()))
    assert commands == [] and harness.core.filters == before
