"""The execution core on the simulated exchange: no lost or doubled orders, bookkeeping, guards, restarts.

Every test drives the real core through the synchronous applier, the real simulated exchange and a real
database (tests/executor/harness.py). A "restart" is a second harness on the same database and the SAME
exchange object, which kept its orders, positions and trades: an exchange that persists, as a live one does.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from executor.commands import SignalInput
from executor.core import ExecutionPolicy
from executor.risk import RiskLimits
from simulator.gateway import Fault
from tests.executor.harness import Harness, settings
from utils.binance_parse import ListenKeyExpired
from utils.domain import (
    Candle,
    IntentState,
    MarginType,
    OrderIntent,
    OrderPurpose,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    SignalOutcome,
    SignalSide,
    TimeInForce,
    TripStatus,
)

BTC = ("BTCUSDT", PositionSide.BOTH)


@pytest.fixture
def db_file(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'trader.db'}"


@pytest.fixture
def harness(db_file):
    h = Harness(db_file)
    h.candle("30000")
    yield h
    h.close()


def restart(h: Harness, **options) -> Harness:
    """A new bot process on the same database, against the same (stateful) exchange."""
    h.close()
    return Harness(h.repository.engine.url.render_as_string(hide_password=False), exchange=h.exchange,
                   clock=h.clock, strategies=h.strategies, **options)


# ================================================================================================ basics
def test_entry_is_persisted_sent_filled_and_booked(harness: Harness) -> None:
    harness.signal(SignalSide.LONG)
    (record,) = harness.repository.all_orders()
    assert record.intent_state is IntentState.ACKNOWLEDGED and record.status is OrderStatus.FILLED
    assert record.quantity == D("0.010") and record.purpose is OrderPurpose.ENTRY and record.strategy == "alpha"
    (position,) = [p for p in harness.repository.positions() if p.amount]
    assert position.amount == D("0.010")
    assert harness.core.holdings[BTC].owner == "alpha"
    assert [f.quantity for f in harness.repository.all_fills()] == [D("0.010")]
    (trip,) = harness.repository.round_trips()
    assert trip.status is TripStatus.OPEN and trip.amount == D("0.010") and trip.strategy == "alpha"


def test_the_intent_is_stored_before_the_request_leaves(harness: Harness) -> None:
    seen: list[tuple[str, bool]] = []
    original = harness.gateway.place_order

    async def spy(intent: OrderIntent):
        seen.append((intent.client_order_id, harness.repository.get_order(intent.client_order_id) is not None))
        return await original(intent)

    harness.gateway.place_order = spy  # type: ignore[method-assign]
    harness.signal(SignalSide.LONG)
    assert seen and all(stored for _, stored in seen)


def test_definite_failure_is_rejected_not_retried(harness: Harness) -> None:
    harness.gateway.inject(Fault.SERVICE_UNAVAILABLE)
    harness.signal(SignalSide.LONG)
    (record,) = harness.repository.all_orders()
    assert record.intent_state is IntentState.REJECTED and record.reject_code == -1001
    assert harness.exchange.user_trades("BTCUSDT") == []
    assert harness.core.stats.outcome_unknown == 0
    assert BTC not in harness.core.holdings  # reservation released


def test_a_replayed_signal_does_not_double_the_order(harness: Harness) -> None:
    signal = harness.signal(SignalSide.LONG)
    harness.signal(SignalSide.LONG)  # the position is already long: nothing to do
    harness.core.holdings.clear()  # even a core that lost track of the position ...
    harness.applier.feed(SignalInput(signal))  # ... replans the same entry, under the same id: not sent again
    assert len(harness.repository.all_orders()) == 1
    assert len(harness.exchange.user_trades("BTCUSDT")) == 1
    assert harness.core.stats.duplicates_skipped == 1
    assert len(harness.repository.signals()) == 1


def test_a_signal_replayed_after_a_restart_finds_its_order(db_file) -> None:
    first = Harness(db_file)
    first.candle("30000")
    signal = first.signal(SignalSide.LONG)
    second = restart(first)
    try:
        second.core.holdings.pop(BTC, None)  # as if it had not yet heard of the position: it replans the entry
        second.core.last_price["BTCUSDT"] = D("30000")
        second.applier.feed(SignalInput(signal))
        assert len(second.exchange.user_trades("BTCUSDT")) == 1
        assert second.core.stats.duplicates_skipped == 1
    finally:
        second.close()


def test_exit_and_reversal_close_with_reduce_only_and_book_the_trade(harness: Harness) -> None:
    harness.signal(SignalSide.LONG)
    harness.candle("30300")
    harness.signal(SignalSide.SHORT)
    orders = harness.repository.all_orders()
    assert [(o.purpose, o.side, o.reduce_only) for o in orders] == [
        (OrderPurpose.ENTRY, Side.BUY, False), (OrderPurpose.EXIT, Side.SELL, True),
        (OrderPurpose.ENTRY, Side.SELL, False)]
    assert harness.core.stats.closed_trades == 1
    position = harness.core.holdings[BTC]
    assert position.amount == D("-0.009") and position.owner == "alpha"  # 300 USDT at ~30300
    harness.candle("30100")
    harness.signal(SignalSide.FLAT)
    assert BTC not in harness.core.holdings
    assert harness.core.stats.closed_trades == 2
    assert harness.core.position_mismatches() == []
    trips = harness.repository.round_trips()
    assert [t.status for t in trips] == [TripStatus.CLOSED, TripStatus.CLOSED]
    fills = harness.repository.all_fills()
    assert sum(t.realized_pnl for t in trips) == sum(f.realized_pnl for f in fills)
    assert sum(t.commission for t in trips) == sum(f.commission for f in fills)


def test_two_strategies_in_the_same_minute_cannot_share_a_position(db_file) -> None:
    h = Harness(db_file, strategies=[settings("alpha"), settings("beta")])
    try:
        h.candle("30000")
        h.signal(SignalSide.LONG, strategy="alpha")
        h.signal(SignalSide.SHORT, strategy="beta")
        assert [o.strategy for o in h.repository.all_orders()] == ["alpha"]
        assert h.core.stats.refused_by_planner == 1
    finally:
        h.close()


def test_an_entry_the_risk_guards_refuse_does_not_block_another_strategy(db_file) -> None:
    h = Harness(db_file, strategies=[settings("alpha"), settings("beta")])
    try:
        h.candle("30000")
        h.risk.halt("strategy:alpha", "test", h.clock.now_ms())
        h.signal(SignalSide.LONG, strategy="alpha")  # refused: alpha is halted, its reservation is released
        h.signal(SignalSide.LONG, strategy="beta")
        assert [o.strategy for o in h.repository.all_orders()] == ["beta"]
        assert h.core.holdings[BTC].owner == "beta"
    finally:
        h.close()


def test_protective_orders_follow_the_position(db_file) -> None:
    h = Harness(db_file, strategies=[settings(stop_loss_pct=D("1"), take_profit_pct=D("2"))])
    try:
        h.candle("30000")
        h.signal(SignalSide.LONG)
        algos = h.exchange.open_algo_orders("BTCUSDT")
        assert sorted(a.order_type.value for a in algos) == ["STOP_MARKET", "TAKE_PROFIT_MARKET"]
        assert all(a.close_position for a in algos)
        # The price falls through the stop (mark follows the candles): the stop closes the position ...
        h.candle("29600", high="30000", low="29600", open_="30000")
        h.candle("29600")
        assert h.exchange.positions("BTCUSDT")[0].amount == 0
        assert BTC not in h.core.holdings
        # ... and the take-profit is cancelled, nothing is left working.
        assert h.exchange.open_algo_orders("BTCUSDT") == []
        stops = [o for o in h.repository.all_orders() if o.purpose is OrderPurpose.STOP_LOSS]
        assert stops[0].status is OrderStatus.FILLED and stops[0].actual_order_id is not None
        assert h.core.stats.closed_trades == 1
    finally:
        h.close()


def test_order_ttl_cancels_a_stale_limit_entry(db_file) -> None:
    h = Harness(db_file, limits=RiskLimits(order_ttl_sec=120),
                strategies=[settings(entry_order_type=OrderType.LIMIT, limit_offset_bps=D("50"))])
    try:
        h.candle("30000")
        h.signal(SignalSide.LONG)
        (order,) = h.exchange.open_orders("BTCUSDT")
        assert order.price == D("29850.0")
        h.candle("30000")
        assert h.exchange.open_orders("BTCUSDT")  # 60 s old: still working
        h.candle("30000")
        assert h.exchange.open_orders("BTCUSDT") == []  # 120 s: cancelled
        (record,) = h.repository.all_orders()
        assert record.status is OrderStatus.CANCELED and h.core.stats.ttl_cancels == 1
        assert BTC not in h.core.holdings
    finally:
        h.close()


def test_funding_is_recorded_from_the_exchange(db_file) -> None:
    h = Harness(db_file)
    try:
        h.candle("30000")
        h.signal(SignalSide.LONG)
        for _ in range(8 * 60):  # past the 08:00 funding time
            h.candle("30000")
        payments = h.repository.funding_payments()
        assert len(payments) == 1
        assert payments[0].amount == h.exchange.account().funding_total < 0  # a long pays a positive rate
    finally:
        h.close()


def test_hedge_mode_uses_position_sides(db_file) -> None:
    h = Harness(db_file, position_mode=PositionMode.HEDGE)
    try:
        h.candle("30000")
        h.signal(SignalSide.SHORT)
        h.candle("30000")
        h.signal(SignalSide.FLAT)
        orders = h.repository.all_orders()
        assert [(o.side, o.position_side, o.reduce_only) for o in orders] == [
            (Side.SELL, PositionSide.SHORT, False), (Side.BUY, PositionSide.SHORT, False)]
        assert all(o.status is OrderStatus.FILLED for o in orders)
    finally:
        h.close()


def test_a_malformed_user_event_is_logged_and_skipped(harness: Harness, caplog) -> None:
    harness.gateway.inject_raw_event({"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"s": "BTCUSDT", "x": "BOGUS"}})
    harness.signal(SignalSide.LONG)  # the real events after the bad one still arrive
    assert harness.core.stats.fills == 1
    assert any("malformed user-data event skipped" in r.getMessage() for r in caplog.records)


def test_the_same_exchange_report_twice_changes_nothing(harness: Harness) -> None:
    from utils.binance_parse import parse_user_event

    captured: list[dict] = []
    harness.exchange.add_listener(captured.append)
    harness.signal(SignalSide.LONG)

    def books():
        return (harness.repository.all_orders(), harness.repository.all_fills(), harness.repository.positions(),
                harness.repository.round_trips(), dict(harness.core.holdings), harness.core.stats.fills)

    before = books()
    for raw in captured:  # redeliver every event of that order (a reconnect replay, say)
        harness.deliver(parse_user_event(raw))
    assert captured and books() == before


# =================================================================================== unknown outcomes
@pytest.mark.parametrize("fault", [Fault.TIMEOUT_AFTER, Fault.UNKNOWN_503])
def test_an_outcome_unknown_order_that_executed_is_found_never_doubled(harness: Harness, fault: Fault) -> None:
    harness.gateway.inject(fault)
    harness.signal(SignalSide.LONG)
    harness.advance(30_000)
    assert harness.exchange_orders() and len(harness.exchange_orders()) == 1, "exactly one order on the exchange"
    assert sum(t.quantity for t in harness.exchange.user_trades("BTCUSDT")) == D("0.010")
    (record,) = harness.repository.all_orders()
    assert record.intent_state is IntentState.ACKNOWLEDGED and record.status is OrderStatus.FILLED
    assert harness.core.stats.outcome_unknown == 1
    assert harness.risk.state("global").state.value == "ACTIVE"


def test_a_request_the_exchange_applies_late_is_not_sent_twice(harness: Harness) -> None:
    """Defect 3: 'not found' at the first lookup is no proof; the first request arrives 3 s later."""
    harness.gateway.inject(Fault.APPLIED_LATE, delay_ms=3_000)
    harness.signal(SignalSide.LONG)
    assert harness.exchange.user_trades("BTCUSDT") == []
    harness.advance(60_000)  # lookups at 0.5 s and 2 s say "not found"; the one at 5 s finds it
    assert harness.gateway.sent_client_order_ids.count(harness.repository.all_orders()[0].client_order_id) == 1
    assert len(harness.exchange_orders()) == 1 and len(harness.repository.all_orders()) == 1
    (record,) = harness.repository.all_orders()
    assert record.status is OrderStatus.FILLED and record.intent_state is IntentState.ACKNOWLEDGED
    assert harness.core.holdings[BTC].amount == D("0.010")


def test_an_entry_never_placed_is_declared_so_only_after_the_window_and_not_resent(harness: Harness) -> None:
    harness.gateway.inject(Fault.TIMEOUT_BEFORE)
    harness.signal(SignalSide.LONG)
    harness.advance(29_000)
    (record,) = harness.repository.all_orders()
    assert record.intent_state is IntentState.UNKNOWN  # still inside the 30 s window: not concluded
    harness.advance(2_000)
    (record,) = harness.repository.all_orders()
    assert record.intent_state is IntentState.NOT_FOUND
    assert harness.exchange.user_trades("BTCUSDT") == [] and BTC not in harness.core.holdings
    assert harness.risk.state("global").state.value == "ACTIVE"


def test_an_outcome_that_stays_unknown_halts_trading(harness: Harness) -> None:
    harness.gateway.inject(Fault.TIMEOUT_BEFORE)
    harness.gateway.inject(Fault.TIMEOUT_BEFORE, "query_order", times=20)
    harness.signal(SignalSide.LONG)
    harness.advance(31_000)
    assert harness.exchange.user_trades("BTCUSDT") == []
    state = harness.risk.state("global")
    assert state.state.value == "HALTED" and "outcome still unknown" in state.reason
    (record,) = harness.repository.all_orders()
    assert record.intent_state is IntentState.UNKNOWN
    stored = harness.repository.get_risk_state("global")
    assert stored is not None and stored.state.value == "HALTED"
    harness.signal(SignalSide.SHORT)  # new entries are now refused
    assert harness.core.stats.refused_by_risk == 1


# ============================================================================================ exit retries
@pytest.mark.parametrize(("code", "message", "status"), [
    (-1003, "Too many requests; current limit of IP is 2400 requests per minute.", 429),
    (-1008, "Request throttled by system-level protection. Reduce-only/close-position orders are exempt.", 503),
    (-1001, "Service Unavailable.", 503),
])
def test_a_rejected_exit_is_retried_until_flat(harness: Harness, code: int, message: str, status: int) -> None:
    """Defect 4: an exit the exchange refuses is retried (position re-read first) until the position is flat."""
    harness.signal(SignalSide.LONG)
    harness.candle("30100")
    harness.gateway.inject_error(code, message, http_status=status, times=2)
    harness.signal(SignalSide.FLAT)
    assert harness.core.holdings[BTC].amount == D("0.010")  # refused: still long
    harness.advance(10_000)
    assert harness.exchange.positions("BTCUSDT")[0].amount == 0 and BTC not in harness.core.holdings
    exits = [o for o in harness.repository.all_orders() if o.purpose is OrderPurpose.EXIT]
    assert [o.intent_state for o in exits] == [IntentState.REJECTED, IntentState.REJECTED, IntentState.ACKNOWLEDGED]
    assert exits[1].client_order_id == exits[0].client_order_id + ".r1"
    assert exits[2].client_order_id == exits[0].client_order_id + ".r2"
    assert harness.core.stats.closed_trades == 1


def test_an_exit_that_keeps_failing_gives_up_and_halts(harness: Harness) -> None:
    harness.signal(SignalSide.LONG)
    harness.gateway.inject_error(-1008, "Request throttled by system-level protection.", http_status=503, times=50)
    harness.signal(SignalSide.FLAT)
    harness.advance(10 * 60_000)
    state = harness.risk.state("global")
    assert state.state.value == "HALTED" and "could not be placed after 9 attempts" in state.reason
    assert len([o for o in harness.repository.all_orders() if o.purpose is OrderPurpose.EXIT]) == 9


def test_an_exit_retry_never_over_closes(harness: Harness) -> None:
    """Before each retry the position is re-read: what the exchange still holds is what gets closed."""
    harness.signal(SignalSide.LONG)
    harness.gateway.inject_error(-1008, "Request throttled by system-level protection.", http_status=503)
    harness.signal(SignalSide.FLAT)
    # Meanwhile half the position is closed by hand on the exchange.
    harness.exchange.new_order(symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.MARKET, quantity=D("0.005"),
                               reduce_only=True, client_order_id="by-hand")
    harness.advance(5_000)
    exits = [o for o in harness.repository.all_orders() if o.purpose is OrderPurpose.EXIT]
    assert exits[-1].quantity == D("0.005") and exits[-1].status is OrderStatus.FILLED
    assert harness.exchange.positions("BTCUSDT")[0].amount == 0 and BTC not in harness.core.holdings


def test_an_exit_never_placed_is_retried_under_a_new_id(harness: Harness) -> None:
    harness.signal(SignalSide.LONG)
    harness.gateway.inject(Fault.TIMEOUT_BEFORE)
    harness.signal(SignalSide.FLAT)
    harness.advance(20_000)
    assert harness.core.holdings[BTC].amount == D("0.010")  # inside the window: nothing resent
    harness.advance(15_000)
    exits = [o for o in harness.repository.all_orders() if o.purpose is OrderPurpose.EXIT]
    assert [o.intent_state for o in exits] == [IntentState.NOT_FOUND, IntentState.ACKNOWLEDGED]
    assert exits[1].client_order_id == exits[0].client_order_id + ".r1"
    assert harness.exchange.positions("BTCUSDT")[0].amount == 0


# ======================================================================================= restarts (defect 1)
def test_restart_with_an_open_position_closes_the_trade_and_tells_the_risk_engine(db_file) -> None:
    first = Harness(db_file, strategies=[settings(stop_loss_pct=D("2"), take_profit_pct=D("4"))])
    first.candle("30000")
    first.signal(SignalSide.LONG)
    assert len(first.exchange.open_algo_orders("BTCUSDT")) == 2
    second = restart(first)
    try:
        assert second.core.holdings[BTC].owner == "alpha" and second.core.holdings[BTC].amount == D("0.010")
        assert second.risk.state("global").state.value == "ACTIVE"
        second.candle("29700")
        second.signal(SignalSide.FLAT)
        assert second.exchange.positions("BTCUSDT")[0].amount == 0 and BTC not in second.core.holdings
        assert second.exchange.open_algo_orders("BTCUSDT") == []  # protective orders cancelled
        (trip,) = second.repository.round_trips()
        assert trip.status is TripStatus.CLOSED and trip.net_pnl < 0
        assert trip.net_pnl == sum(f.realized_pnl - f.commission for f in second.repository.all_fills())
        assert second.risk.state("strategy:alpha").consecutive_losses == 1  # the risk engine heard of it
    finally:
        second.close()


def test_restart_then_the_stop_closes_the_position(db_file) -> None:
    first = Harness(db_file, strategies=[settings(stop_loss_pct=D("1"))])
    first.candle("30000")
    first.signal(SignalSide.LONG)
    second = restart(first)
    try:
        second.candle("29500", high="30000", low="29500", open_="30000")
        second.candle("29500")
        assert BTC not in second.core.holdings
        (trip,) = second.repository.round_trips()
        assert trip.status is TripStatus.CLOSED and trip.strategy == "alpha"
    finally:
        second.close()


def test_restart_places_missing_protective_orders(db_file) -> None:
    first = Harness(db_file, strategies=[settings(stop_loss_pct=D("1"), take_profit_pct=D("2"))])
    first.candle("30000")
    first.signal(SignalSide.LONG)
    for algo in first.exchange.open_algo_orders("BTCUSDT"):  # someone cancelled them while the bot was down
        first.exchange.cancel_algo_order(algo_id=algo.algo_id)
    second = restart(first)
    try:
        algos = second.exchange.open_algo_orders("BTCUSDT")
        assert sorted(a.order_type.value for a in algos) == ["STOP_MARKET", "TAKE_PROFIT_MARKET"]
    finally:
        second.close()


def test_restart_recovers_fills_the_stream_missed(db_file) -> None:
    first = Harness(db_file)
    first.candle("30000")
    first.signal(SignalSide.LONG)
    first.close()
    exchange, clock = first.exchange, first.clock
    # While the bot is down, an exit of ours that was in flight fills (its events are lost with the process).
    second_repo = Harness(db_file, exchange=exchange, clock=clock, start=False)
    intent = OrderIntent("alph0000-BTCUSDT-1681948860-exs", "BTCUSDT", Side.SELL, OrderType.LIMIT, D("0.010"),
                         D("30100.0"), TimeInForce.GTC, reduce_only=True, strategy="alpha",
                         purpose=OrderPurpose.EXIT)
    second_repo.repository.save_order_intent(intent, state=IntentState.SENT)
    second_repo.close()
    exchange.new_order(symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.LIMIT, quantity=D("0.010"),
                       price=D("30100.0"), time_in_force=TimeInForce.GTC, reduce_only=True,
                       client_order_id=intent.client_order_id)
    clock.set(1_681_948_979_999)
    exchange.on_candle(Candle("BTCUSDT", 1_681_948_920_000, 1_681_948_979_999, D("30100"), D("30200"),
                              D("30050"), D("30150"), D("1000")))
    # The stream is down: those events are never delivered (a new process has a new gateway).
    third = Harness(db_file, exchange=exchange, clock=clock)
    try:
        assert third.risk.state("global").state.value == "ACTIVE", third.notices
        record = third.repository.get_order(intent.client_order_id)
        assert record.status is OrderStatus.FILLED and record.intent_state is IntentState.ACKNOWLEDGED
        assert len(third.repository.all_fills()) == 2
        assert [p.amount for p in third.repository.positions()] == [D("0")]
        (trip,) = third.repository.round_trips()
        assert trip.status is TripStatus.CLOSED and trip.strategy == "alpha"
    finally:
        third.close()


def test_an_entry_that_filled_while_the_bot_was_down_keeps_its_strategy(db_file) -> None:
    """Found by the chaos tests: userTrades rows carry no clientOrderId, so the fill reconciliation fetched was
    booked as nobody's (the position "external", the strategy locked out of its own symbol)."""
    first = Harness(db_file)
    first.candle("30000")
    intent = OrderIntent("alph0000-BTCUSDT-1681948860-enb", "BTCUSDT", Side.BUY, OrderType.MARKET, D("0.010"),
                         strategy="alpha", purpose=OrderPurpose.ENTRY)
    first.repository.save_order_intent(intent, state=IntentState.SENT, time=first.clock.now_ms())
    first.close()
    # Sent just before the process died: the exchange filled it; its events died with the process.
    first.exchange.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.010"),
                             client_order_id=intent.client_order_id)
    second = Harness(db_file, exchange=first.exchange, clock=first.clock)
    try:
        assert second.risk.state("global").state.value == "ACTIVE", second.notices
        (fill,) = second.repository.all_fills()
        assert fill.client_order_id == intent.client_order_id
        assert second.core.holdings[BTC].owner == "alpha"
        (trip,) = second.repository.round_trips()
        assert (trip.strategy, trip.trip_id, trip.status) == ("alpha", intent.client_order_id, TripStatus.OPEN)
    finally:
        second.close()


def test_a_fill_never_written_of_an_order_known_filled_is_read_back(db_file) -> None:
    """Found by the chaos tests: killed after the order's answer (FILLED) was stored and before its fill arrived,
    on a symbol with no fill stored yet: reconciliation must read that symbol's trades from the bot's first order."""
    first = Harness(db_file)
    first.candle("30000")
    intent = OrderIntent("alph0001-BTCUSDT-1681948860-enb", "BTCUSDT", Side.BUY, OrderType.MARKET, D("0.010"),
                         strategy="alpha", purpose=OrderPurpose.ENTRY)
    first.repository.save_order_intent(intent, state=IntentState.SENT, time=first.clock.now_ms())
    order = first.exchange.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET,
                                     quantity=D("0.010"), client_order_id=intent.client_order_id)
    first.repository.mark_intent(intent.client_order_id, IntentState.ACKNOWLEDGED)
    first.repository.update_order(order)  # the answer was stored: FILLED; its fill event died with the process
    first.close()
    second = Harness(db_file, exchange=first.exchange, clock=first.clock)
    try:
        assert second.risk.state("global").state.value == "ACTIVE", second.notices
        (fill,) = second.repository.all_fills()
        assert (fill.client_order_id, fill.quantity) == (intent.client_order_id, D("0.010"))
        assert second.core.holdings[BTC].amount == D("0.010") and second.core.holdings[BTC].owner == "alpha"
    finally:
        second.close()


def test_restart_marks_an_intent_that_never_left_only_after_the_window(db_file) -> None:
    first = Harness(db_file)
    first.candle("30000")
    first.repository.save_order_intent(OrderIntent("alphdead-BTCUSDT-1681948859-enb", "BTCUSDT", Side.BUY,
                                                   OrderType.MARKET, D("0.010"), strategy="alpha"),
                                       state=IntentState.SENT, time=first.clock.now_ms())
    second = restart(first)  # right away: still inside the window
    try:
        # not on the exchange yet, but inside the window: unknown, looked up again, not concluded
        assert second.repository.get_order("alphdead-BTCUSDT-1681948859-enb").intent_state is IntentState.UNKNOWN
        second.advance(31_000)
        assert second.repository.get_order("alphdead-BTCUSDT-1681948859-enb").intent_state is IntentState.NOT_FOUND
        assert second.risk.state("global").state.value == "ACTIVE"
    finally:
        second.close()


def test_a_halt_survives_a_restart(db_file) -> None:
    first = Harness(db_file)
    first.candle("30000")
    first.gateway.inject(Fault.TIMEOUT_BEFORE)
    first.gateway.inject(Fault.TIMEOUT_BEFORE, "query_order", times=20)
    first.signal(SignalSide.LONG)
    first.advance(31_000)  # the outcome stays unknown: halted
    reason = first.risk.state("global").reason
    assert first.risk.state("global").state.value == "HALTED"
    second = restart(first)
    try:
        state = second.risk.state("global")
        assert state.state.value == "HALTED" and state.reason == reason
    finally:
        second.close()


def test_an_unexplained_position_halts(db_file) -> None:
    first = Harness(db_file)
    first.candle("30000")
    first.close()
    first.exchange.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.002"),
                             client_order_id="web_abc")  # traded by hand while the bot was down ...
    first.exchange.user_trades("BTCUSDT")
    fresh_db = Harness(db_file.replace("trader.db", "other.db"), exchange=first.exchange, clock=first.clock)
    try:  # ... and the new database has no fills from before, so nothing explains it
        assert fresh_db.risk.state("global").state.value == "ACTIVE"  # seen once: looked at again first ...
        fresh_db.core.last_price["BTCUSDT"] = D("30000")
        fresh_db.signal(SignalSide.LONG)  # ... and meanwhile no new entry goes out
        assert fresh_db.core.stats.refused_by_risk == 1 and fresh_db.exchange_orders() == {1}
        fresh_db.advance(6_000)  # the difference is still there 5 s later: halt
        state = fresh_db.risk.state("global")
        assert state.state.value == "HALTED" and "exchange holds 0.002" in state.reason
    finally:
        fresh_db.close()


# ================================================================================ defects 2, 5, 6, 7, 8
def test_a_partially_filled_entry_cancelled_by_ttl_keeps_its_protective_orders(db_file) -> None:
    """Defect 2: protective orders are placed on the first fill, not only on FILLED."""
    h = Harness(db_file, limits=RiskLimits(order_ttl_sec=120),
                strategies=[settings(entry_order_type=OrderType.LIMIT, limit_offset_bps=D("10"),
                                     stop_loss_pct=D("2"), take_profit_pct=D("3"))])
    try:
        h.candle("30000")
        h.signal(SignalSide.LONG)
        h.candle("29900", high="30000", low="29900", open_="30000", volume="0.05")  # 10 % of 0.05: 0.005 fills
        h.candle("30000", volume="0.001")
        h.candle("30050", volume="0.001")  # 120 s: the rest is cancelled
        (entry,) = [o for o in h.repository.all_orders() if o.purpose is OrderPurpose.ENTRY]
        assert entry.status is OrderStatus.CANCELED and D(0) < entry.executed_quantity < entry.quantity
        assert h.exchange.positions("BTCUSDT")[0].amount == entry.executed_quantity
        algos = h.exchange.open_algo_orders("BTCUSDT")
        assert sorted(a.order_type.value for a in algos) == ["STOP_MARKET", "TAKE_PROFIT_MARKET"]
    finally:
        h.close()


def test_listen_key_expiry_reconciles_and_recovers_missed_fills(harness: Harness) -> None:
    """Defect 5: ListenKeyExpired leads to reconciliation, which finds what the stream missed."""
    harness.signal(SignalSide.LONG)
    harness.exchange.new_order(symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.MARKET, quantity=D("0.010"),
                               reduce_only=True, client_order_id="web_close")
    assert harness.lose_user_events() > 0  # the stream dropped them
    assert harness.core.holdings[BTC].amount == D("0.010")
    harness.deliver(ListenKeyExpired(harness.clock.now_ms()))
    assert BTC not in harness.core.holdings
    # userTrades rows name only the order id: ours is recognised by it, the web order stays nameless
    assert {f.client_order_id for f in harness.repository.all_fills()} == {
        harness.repository.all_orders()[0].client_order_id, ""}
    assert harness.risk.state("global").state.value == "ACTIVE"
    assert harness.core.stats.reconciliations == 2  # at start, and after the expiry


def test_a_stream_interruption_reconciles(harness: Harness) -> None:
    harness.signal(SignalSide.LONG)
    harness.exchange.new_order(symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.MARKET, quantity=D("0.004"),
                               reduce_only=True, client_order_id="web_part")
    harness.lose_user_events()
    harness.interrupt_stream("socket closed")
    assert harness.core.holdings[BTC].amount == D("0.006") and harness.core.position_mismatches() == []


def test_foreign_orders_plain_and_conditional_are_flagged(db_file) -> None:
    """Defect 6: open algo orders are part of reconciliation."""
    first = Harness(db_file)
    first.candle("30000")
    first.exchange.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.010"),
                             price=D("29000.0"), time_in_force=TimeInForce.GTC, client_order_id="someone-else")
    first.exchange.new_algo_order(symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.STOP_MARKET,
                                  trigger_price=D("28000.0"), quantity=D("0.010"), client_algo_id="manual-stop")
    second = restart(first)
    try:
        plan = second.core.last_reconcile
        assert plan is not None
        assert any("someone-else" in w and "not placed by this bot" in w for w in plan.warnings)
        assert any("manual-stop" in w and "conditional" in w for w in plan.warnings)
        assert second.repository.get_order("someone-else").purpose is OrderPurpose.EXTERNAL
    finally:
        second.close()


def test_reconciliation_pages_through_more_than_a_thousand_fills(db_file) -> None:
    """Defect 6: userTrades is paged by fromId (1000 rows a page)."""
    first = Harness(db_file)
    first.candle("30000")
    first.signal(SignalSide.LONG)
    first.lose_user_events()
    for index in range(1_100):  # a busy account: 1,100 trades the stream never delivered
        side = Side.SELL if index % 2 == 0 else Side.BUY
        first.exchange.new_order(symbol="BTCUSDT", side=side, order_type=OrderType.MARKET, quantity=D("0.001"),
                                 client_order_id=f"web_{index}")
    first.lose_user_events()
    second = restart(first)
    try:
        assert len(second.repository.all_fills("BTCUSDT")) == 1_101
        assert second.risk.state("global").state.value == "ACTIVE"
        assert second.core.holdings[BTC].amount == D("0.010")
    finally:
        second.close()


def test_a_liquidation_reaches_the_books(db_file) -> None:
    """Defect 7: the liquidation fill (execution type CALCULATED) moves the books like any fill."""
    h = Harness(db_file, start=False)
    h.exchange.set_margin_type("BTCUSDT", MarginType.ISOLATED)
    h.exchange.set_leverage("BTCUSDT", 20)
    h.applier.start()
    try:
        h.candle("30000")
        h.signal(SignalSide.LONG)
        h.candle("27000", high="30000", low="27000", open_="30000")
        assert h.exchange.positions("BTCUSDT")[0].amount == 0  # liquidated
        assert BTC not in h.core.holdings and h.core.position_mismatches() == []
        liquidation = [f for f in h.repository.all_fills() if f.client_order_id.startswith("autoclose-")]
        assert liquidation and liquidation[0].side is Side.SELL
        (trip,) = h.repository.round_trips()
        assert trip.status is TripStatus.CLOSED and trip.strategy == "alpha" and trip.net_pnl < 0
        assert h.risk.state("strategy:alpha").consecutive_losses == 1
    finally:
        h.close()


def test_finished_orders_leave_the_live_index(harness: Harness) -> None:
    """Defect 8: per-candle work looks only at live orders, not at every order ever placed."""
    for _ in range(30):
        harness.signal(SignalSide.LONG)
        harness.candle("30000")
        harness.signal(SignalSide.FLAT)
        harness.candle("30000")
    assert len(harness.core.orders) == 60 and harness.core.live_count == 0
    assert harness.core.stats.closed_trades == 30


def test_the_policy_refuses_a_window_shorter_than_thirty_seconds() -> None:
    with pytest.raises(ValueError, match="unknown_outcome_window_ms"):
        ExecutionPolicy(unknown_outcome_window_ms=5_000)


def test_a_reversal_entry_waits_for_its_exit(harness: Harness) -> None:
    """One-way mode: the new side's entry leaves only once the exit made the position flat."""
    harness.signal(SignalSide.LONG)
    harness.candle("30100")
    harness.gateway.inject_error(-1008, "Request throttled by system-level protection.", http_status=503)
    harness.signal(SignalSide.SHORT)
    orders = harness.repository.all_orders()
    assert [(o.purpose, o.intent_state) for o in orders] == [
        (OrderPurpose.ENTRY, IntentState.ACKNOWLEDGED), (OrderPurpose.EXIT, IntentState.REJECTED)]
    assert harness.exchange.positions("BTCUSDT")[0].amount == D("0.010")  # no entry netted against the long
    harness.advance(5_000)  # the exit is retried, fills, and then the entry goes out
    assert [o.purpose for o in harness.repository.all_orders()] == [
        OrderPurpose.ENTRY, OrderPurpose.EXIT, OrderPurpose.EXIT, OrderPurpose.ENTRY]
    assert harness.exchange.positions("BTCUSDT")[0].amount < 0
    assert harness.core.holdings[BTC].owner == "alpha" and harness.core.stats.closed_trades == 1


# ================================================================================= signal outcomes (issue 9)
def outcomes(h: Harness) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(r.signal.strategy, r.signal.side.value, r.outcome.value if r.outcome else "", r.client_order_ids)
            for r in h.repository.signal_records()]


def test_every_signal_records_what_came_of_it(db_file) -> None:
    h = Harness(db_file, strategies=[settings("alpha"), settings("beta"), settings("beta", symbol="ETHUSDT")])
    try:
        h.signal(SignalSide.LONG, strategy="alpha")  # before any price: ignored
        h.candle("30000")
        h.signal(SignalSide.LONG, strategy="alpha")  # ordered
        h.advance(1_000)
        h.signal(SignalSide.LONG, strategy="alpha")  # already long: nothing to do
        h.signal(SignalSide.SHORT, strategy="beta")  # alpha owns BTCUSDT: refused by the planner
        h.risk.halt("strategy:beta", "test", h.clock.now_ms())
        h.candle("30000", symbol="ETHUSDT")
        h.signal(SignalSide.LONG, strategy="beta", symbol="ETHUSDT")  # beta is halted: refused by risk
        records = h.repository.signal_records()
        got = [(r.signal.strategy, r.outcome, r.outcome_detail) for r in records]
        assert [g[:2] for g in got] == [
            ("alpha", SignalOutcome.IGNORED), ("alpha", SignalOutcome.ORDERED), ("alpha", SignalOutcome.NO_ACTION),
            ("beta", SignalOutcome.REFUSED_BY_PLANNER), ("beta", SignalOutcome.REFUSED_BY_RISK)]
        assert records[1].client_order_ids == (h.repository.all_orders()[0].client_order_id,)
        assert "owned by alpha" in got[3][2] and got[4][2].startswith("trading_state:")
    finally:
        h.close()


def test_a_reversal_signal_waits_then_records_its_entry(harness: Harness) -> None:
    harness.signal(SignalSide.LONG)
    harness.candle("30100")
    harness.gateway.inject_error(-1008, "Request throttled by system-level protection.", http_status=503)
    harness.signal(SignalSide.SHORT)  # its exit is refused (throttled) and retried; the entry waits
    assert harness.repository.signal_records()[-1].outcome is SignalOutcome.WAITING
    harness.advance(5_000)
    record = harness.repository.signal_records()[-1]
    entry = [o for o in harness.repository.all_orders() if o.purpose is OrderPurpose.ENTRY][-1]
    assert record.outcome is SignalOutcome.ORDERED and entry.client_order_id in record.client_order_ids


def test_a_replayed_signal_keeps_its_first_outcome(db_file) -> None:
    first = Harness(db_file)
    first.candle("30000")
    signal = first.signal(SignalSide.LONG)
    second = restart(first)
    try:
        second.core.holdings.pop(BTC, None)
        second.core.last_price["BTCUSDT"] = D("30000")
        second.applier.feed(SignalInput(signal))  # finds its order already sent
        (record,) = second.repository.signal_records()
        assert record.outcome is SignalOutcome.ORDERED and second.core.stats.duplicates_skipped == 1
    finally:
        second.close()


def test_a_fill_that_collides_with_a_stored_one_but_differs_halts(harness: Harness) -> None:
    from utils.binance_parse import OrderUpdate
    from utils.domain import ExecutionType, Fill, Order

    harness.signal(SignalSide.LONG)
    (stored,) = harness.repository.all_fills()
    other = Fill("BTCUSDT", stored.trade_id, stored.order_id + 99, "web_x", Side.SELL, PositionSide.BOTH,
                 D("31000"), D("0.002"), D("62"), D(0), "USDT", D(0), False, harness.clock.now_ms())
    order = Order("BTCUSDT", stored.order_id + 99, "web_x", Side.SELL, OrderType.MARKET, OrderStatus.FILLED,
                  D("0.002"), D(0), TimeInForce.GTC, executed_quantity=D("0.002"))
    harness.deliver(OrderUpdate(harness.clock.now_ms(), ExecutionType.TRADE, order, other))
    assert harness.repository.all_fills() == [stored]  # nothing overwritten, nothing booked
    assert harness.core.holdings[BTC].amount == D("0.010")
    state = harness.risk.state("global")
    assert state.state.value == "HALTED" and "collides with a stored fill" in state.reason


def test_a_routine_reconciliation_runs_every_fifteen_minutes_and_repairs_what_the_stream_missed(harness) -> None:
    harness.signal(SignalSide.LONG)
    harness.exchange.new_order(symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.MARKET, quantity=D("0.010"),
                               reduce_only=True, client_order_id="web_close")
    harness.lose_user_events()  # the stream missed it, and no interruption was noticed
    before = harness.core.stats.reconciliations
    for _ in range(16):
        harness.candle("30000")
    assert harness.core.stats.reconciliations == before + 1
    assert BTC not in harness.core.holdings and harness.risk.state("global").state.value == "ACTIVE"


def test_foreign_orders_are_cancelled_when_the_policy_says_so(db_file) -> None:
    first = Harness(db_file)
    first.candle("30000")
    first.exchange.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.010"),
                             price=D("29000.0"), time_in_force=TimeInForce.GTC, client_order_id="someone-else")
    second = restart(first, policy=ExecutionPolicy(cancel_foreign_orders=True))
    try:
        assert second.exchange.open_orders("BTCUSDT") == []
        assert second.repository.get_order("someone-else").status is OrderStatus.CANCELED
    finally:
        second.close()


def test_an_order_with_our_id_missing_from_the_database_is_adopted_with_its_strategy(db_file) -> None:
    first = Harness(db_file, strategies=[settings("alpha")])
    first.candle("30000")
    ours = "alph1a2b-BTCUSDT-1681948859-enb"
    first.exchange.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.010"),
                             price=D("29000.0"), time_in_force=TimeInForce.GTC, client_order_id=ours)
    second = restart(first)
    try:
        tracked = second.core.orders[ours]
        assert tracked.intent.strategy == "alpha" and tracked.is_open
        second.candle("28900", high="30000", low="28800", open_="29500")  # it fills: booked as alpha's entry
        assert second.core.holdings[BTC].owner == "alpha"
    finally:
        second.close()
