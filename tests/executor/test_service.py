"""The executor against the simulated exchange: no lost or doubled orders, bookkeeping, guards, reconciliation."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from database.models import IntentState
from executor.gateway import Fault
from executor.reconcile import reconcile
from executor.risk import RiskLimits
from tests.executor.harness import Harness, settings
from utils.domain import (
    Candle,
    OrderIntent,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    Signal,
    SignalSide,
    TimeInForce,
)


@pytest.fixture
def db_file(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'trader.db'}"


@pytest.fixture
async def harness(db_file):
    h = Harness(db_file)
    await h.candle("30000")
    yield h
    h.close()


def exchange_orders(h: Harness, symbol: str = "BTCUSDT"):
    return h.exchange.user_trades(symbol)


async def test_entry_is_persisted_sent_filled_and_booked(harness: Harness) -> None:
    await harness.signal(SignalSide.LONG)
    (record,) = harness.repository.all_orders()
    assert record.intent_state is IntentState.ACKNOWLEDGED and record.status is OrderStatus.FILLED
    assert record.quantity == D("0.010") and record.purpose == "entry" and record.strategy == "alpha"
    (position,) = [p for p in harness.repository.positions() if p.amount]
    assert position.amount == D("0.010")
    assert harness.executor.holdings[("BTCUSDT", PositionSide.BOTH)].owner == "alpha"
    assert [f.quantity for f in harness.repository.all_fills()] == [D("0.010")]


@pytest.mark.parametrize("fault", [Fault.TIMEOUT_AFTER, Fault.UNKNOWN_503, Fault.TIMEOUT_BEFORE])
async def test_outcome_unknown_is_looked_up_never_doubled(harness: Harness, fault: Fault) -> None:
    harness.gateway.inject(fault)
    await harness.signal(SignalSide.LONG)
    trades = harness.exchange.user_trades("BTCUSDT")
    assert len({t.order_id for t in trades}) == 1, "exactly one order reached the exchange"
    assert sum(t.quantity for t in trades) == D("0.010")
    (record,) = harness.repository.all_orders()
    assert record.intent_state is IntentState.ACKNOWLEDGED and record.status is OrderStatus.FILLED
    assert harness.executor.stats.outcome_unknown == 1
    assert harness.risk.state("global").state.value == "ACTIVE"


async def test_outcome_that_stays_unknown_halts_trading(harness: Harness) -> None:
    for _ in range(3):
        harness.gateway.inject(Fault.TIMEOUT_BEFORE)
        for _ in range(3):
            harness.gateway.inject(Fault.TIMEOUT_BEFORE, "query_order")
    await harness.signal(SignalSide.LONG)
    assert harness.exchange.user_trades("BTCUSDT") == []
    assert harness.risk.state("global").state.value == "HALTED"
    assert "outcome unknown" in harness.risk.state("global").reason
    (record,) = harness.repository.all_orders()
    assert record.intent_state is IntentState.UNKNOWN
    stored = harness.repository.get_risk_state("global")
    assert stored is not None and stored.state.value == "HALTED"
    # New entries are now refused; the halt is in the database for the next start.
    await harness.signal(SignalSide.SHORT, strategy="alpha")
    assert harness.executor.stats.refused_by_risk == 1


async def test_definite_failure_is_rejected_not_retried(harness: Harness) -> None:
    harness.gateway.inject(Fault.SERVICE_UNAVAILABLE)
    await harness.signal(SignalSide.LONG)
    (record,) = harness.repository.all_orders()
    assert record.intent_state is IntentState.REJECTED and record.reject_code == -1001
    assert harness.exchange.user_trades("BTCUSDT") == []
    assert harness.executor.stats.outcome_unknown == 0
    assert ("BTCUSDT", PositionSide.BOTH) not in harness.executor.holdings  # reservation released


async def test_a_replayed_signal_or_request_does_not_double_the_order(harness: Harness) -> None:
    signal = await harness.signal(SignalSide.LONG)
    (intent,) = [record.to_intent() for record in harness.repository.all_orders()]
    await harness.executor.on_signal(signal)  # the position is already long: nothing to do
    await harness.pump()
    await harness.executor.on_order_request(intent)  # a redelivered request: its id is already stored
    assert len(harness.repository.all_orders()) == 1
    assert len(harness.exchange.user_trades("BTCUSDT")) == 1
    assert harness.executor.stats.duplicates_skipped == 1
    assert len(harness.repository.signals()) == 1


async def test_a_signal_replayed_after_a_restart_finds_its_order(db_file) -> None:
    first = Harness(db_file, ephemeral=False)
    await first.candle("30000")
    signal = await first.signal(SignalSide.LONG)
    first.close()
    second = Harness(db_file, exchange=first.exchange, clock=first.clock, ephemeral=False)
    try:
        second.executor.last_price["BTCUSDT"] = D("30000")
        await second.executor.on_signal(signal)  # before reconciliation: it does not know the position yet
        await second.pump()
        assert len(second.exchange.user_trades("BTCUSDT")) == 1
        assert second.executor.stats.duplicates_skipped == 1
    finally:
        second.close()


async def test_exit_and_reversal_close_with_reduce_only_and_book_the_trade(harness: Harness) -> None:
    await harness.signal(SignalSide.LONG)
    await harness.candle("30300")
    await harness.signal(SignalSide.SHORT)
    orders = harness.repository.all_orders()
    assert [(o.purpose, o.side, o.reduce_only) for o in orders] == [
        ("entry", Side.BUY, False), ("exit", Side.SELL, True), ("entry", Side.SELL, False)]
    assert harness.executor.stats.closed_trades == 1
    position = harness.executor.holdings[("BTCUSDT", PositionSide.BOTH)]
    assert position.amount == D("-0.009") and position.owner == "alpha"  # 300 USDT at ~30300
    await harness.candle("30100")
    await harness.signal(SignalSide.FLAT)
    assert ("BTCUSDT", PositionSide.BOTH) not in harness.executor.holdings
    assert harness.executor.stats.closed_trades == 2
    assert harness.executor.position_mismatches() == []


async def test_two_strategies_in_the_same_minute_cannot_share_a_position(db_file) -> None:
    h = Harness(db_file, strategies=[settings("alpha"), settings("beta")])
    try:
        await h.candle("30000")
        await h.executor.on_signal(Signal("alpha", "BTCUSDT", SignalSide.LONG, D(1), "t", h.clock.now_ms()))
        await h.executor.on_signal(Signal("beta", "BTCUSDT", SignalSide.SHORT, D(1), "t", h.clock.now_ms()))
        await h.pump()  # both planned before either order was handled
        orders = h.repository.all_orders()
        assert [o.strategy for o in orders] == ["alpha"]
        assert h.executor.stats.refused_by_planner == 1
    finally:
        h.close()


async def test_protective_orders_follow_the_position(db_file) -> None:
    h = Harness(db_file, strategies=[settings(stop_loss_pct=D("1"), take_profit_pct=D("2"))])
    try:
        await h.candle("30000")
        await h.signal(SignalSide.LONG)
        algos = h.exchange.open_algo_orders("BTCUSDT")
        assert sorted(a.order_type.value for a in algos) == ["STOP_MARKET", "TAKE_PROFIT_MARKET"]
        assert all(a.close_position for a in algos)
        # The price falls through the stop (mark follows the candles): the stop closes the position ...
        await h.candle("29600", high="30000", low="29600", open_="30000")
        await h.candle("29600")
        assert h.exchange.positions("BTCUSDT")[0].amount == 0
        assert ("BTCUSDT", PositionSide.BOTH) not in h.executor.holdings
        # ... and the take-profit is cancelled, nothing is left working.
        assert h.exchange.open_algo_orders("BTCUSDT") == []
        stops = [o for o in h.repository.all_orders() if o.purpose == "stop_loss"]
        assert stops[0].status is OrderStatus.FILLED and stops[0].actual_order_id is not None
        assert h.executor.stats.closed_trades == 1
    finally:
        h.close()


async def test_order_ttl_cancels_a_stale_limit_entry(db_file) -> None:
    h = Harness(db_file, limits=RiskLimits(order_ttl_sec=120),
                strategies=[settings(entry_order_type=OrderType.LIMIT, limit_offset_bps=D("50"))])
    try:
        await h.candle("30000")
        await h.signal(SignalSide.LONG)
        (order,) = h.exchange.open_orders("BTCUSDT")
        assert order.price == D("29850.0")
        await h.candle("30000")
        assert h.exchange.open_orders("BTCUSDT")  # 60 s old: still working
        await h.candle("30000")
        assert h.exchange.open_orders("BTCUSDT") == []  # 120 s: cancelled
        (record,) = h.repository.all_orders()
        assert record.status is OrderStatus.CANCELED and h.executor.stats.ttl_cancels == 1
        assert ("BTCUSDT", PositionSide.BOTH) not in h.executor.holdings
    finally:
        h.close()


async def test_funding_is_recorded_from_the_exchange(db_file) -> None:
    h = Harness(db_file)
    try:
        await h.candle("30000")
        await h.signal(SignalSide.LONG)
        for _ in range(8 * 60):  # past the 08:00 funding time
            await h.candle("30000")
        payments = h.repository.funding_payments()
        assert len(payments) == 1
        assert payments[0].amount == h.exchange.account().funding_total < 0  # a long pays a positive rate
    finally:
        h.close()


async def test_hedge_mode_uses_position_sides(db_file) -> None:
    h = Harness(db_file, position_mode=PositionMode.HEDGE)
    h.exchange.set_position_mode(True)
    try:
        await h.candle("30000")
        await h.signal(SignalSide.SHORT)
        await h.candle("30000")
        await h.signal(SignalSide.FLAT)
        orders = h.repository.all_orders()
        assert [(o.side, o.position_side, o.reduce_only) for o in orders] == [
            (Side.SELL, PositionSide.SHORT, False), (Side.BUY, PositionSide.SHORT, False)]
        assert all(o.status is OrderStatus.FILLED for o in orders)
    finally:
        h.close()


# ---------------------------------------------------------------------------------------------- restarts
async def test_restart_against_a_live_exchange_recovers_missed_fills(db_file) -> None:
    first = Harness(db_file, ephemeral=False)
    await first.candle("30000")
    await first.signal(SignalSide.LONG)
    first.close()
    # While the bot is down, the same exchange fills a limit order placed before the stop (events lost).
    exchange, clock = first.exchange, first.clock
    second = Harness(db_file, exchange=exchange, clock=clock, ephemeral=False)
    try:
        intent = OrderIntent("manual-but-ours", "BTCUSDT", Side.SELL, OrderType.LIMIT, D("0.010"), D("30100.0"),
                             TimeInForce.GTC,
                             reduce_only=True, strategy="alpha", purpose="exit")
        second.repository.save_order_intent(intent)
        second.repository.mark_intent(intent.client_order_id, IntentState.SENT)
        exchange.new_order(symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.LIMIT, quantity=D("0.010"),
                           price=D("30100.0"), time_in_force=intent.time_in_force, reduce_only=True,
                           client_order_id=intent.client_order_id)
        clock.set(1_681_948_979_999)
        exchange.on_candle(Candle("BTCUSDT", 1_681_948_920_000, 1_681_948_979_999, D("30100"), D("30200"),
                                  D("30050"), D("30150"), D("1000")))
        second.gateway.take_user_events()  # the stream was down: these never arrive
        report = await reconcile(second.executor)
        assert report.problems == [] and not report.halted
        record = second.repository.get_order(intent.client_order_id)
        assert record.status is OrderStatus.FILLED and record.intent_state is IntentState.ACKNOWLEDGED
        assert len(second.repository.all_fills()) == 2
        assert [p.amount for p in second.repository.positions()] == [D("0")]
    finally:
        second.close()


async def test_restart_marks_an_intent_that_never_left_and_flags_foreign_orders(db_file) -> None:
    first = Harness(db_file, ephemeral=False)
    await first.candle("30000")
    first.repository.save_order_intent(OrderIntent("crashed-before-send", "BTCUSDT", Side.BUY, OrderType.MARKET,
                                                   D("0.010"), strategy="alpha"))
    first.exchange.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.010"),
                             price=D("29000.0"),
                             time_in_force=TimeInForce.GTC,
                             client_order_id="someone-else")
    first.close()
    second = Harness(db_file, exchange=first.exchange, clock=first.clock, ephemeral=False)
    try:
        report = await reconcile(second.executor)
        assert second.repository.get_order("crashed-before-send").intent_state is IntentState.NOT_FOUND
        assert any("not placed by this bot" in p for p in report.problems)
        assert report.halted and second.risk.state("global").state.value == "HALTED"
    finally:
        second.close()


async def test_a_halt_survives_a_restart(db_file) -> None:
    from runtime.trader import load_risk_state

    first = Harness(db_file)
    first.executor._halt("operator test")
    first.close()
    second_repo_state = Harness(db_file)
    try:
        state = load_risk_state(second_repo_state.repository, ["global"])
        assert state["global"].state.value == "HALTED" and state["global"].reason == "operator test"
    finally:
        second_repo_state.close()


async def test_a_malformed_user_event_is_logged_and_skipped(harness: Harness, caplog) -> None:
    harness.gateway._events.append({"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"s": "BTCUSDT", "x": "BOGUS"}})
    await harness.signal(SignalSide.LONG)  # the real events after the bad one still arrive
    assert harness.executor.stats.fills == 1
    assert any("malformed user-data event skipped" in r.getMessage() for r in caplog.records)


async def test_the_same_exchange_report_twice_changes_nothing(harness: Harness) -> None:
    from utils.binance_parse import parse_user_event

    captured: list[dict] = []
    harness.exchange.add_listener(captured.append)
    await harness.signal(SignalSide.LONG)
    before = (harness.repository.all_orders(), harness.repository.all_fills(), harness.repository.positions(),
              dict(harness.executor.holdings), harness.executor.stats.fills)
    for raw in captured:  # redeliver every event of that order (a reconnect replay, say)
        await harness.executor.on_user_event(parse_user_event(raw))
    after = (harness.repository.all_orders(), harness.repository.all_fills(), harness.repository.positions(),
             dict(harness.executor.holdings), harness.executor.stats.fills)
    assert captured and before == after
