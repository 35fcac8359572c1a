"""Reconciliation as a pure plan: plain data in (local books, exchange snapshot), a plan out."""

from __future__ import annotations

from decimal import Decimal as D

from executor.commands import AlgoAck, ExchangeSnapshot, LookupResult, Outcome
from executor.reconcile import LiveOrder, LocalBooks, plan
from utils.domain import (
    AlgoStatus,
    Fill,
    IntentState,
    Order,
    OrderPurpose,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    Side,
    TimeInForce,
)

NOW = 1_700_000_000_000
WINDOW = 30_000
BTC = ("BTCUSDT", PositionSide.BOTH)


def books(**overrides) -> LocalBooks:
    values = dict(live_orders={}, holdings={}, owners={}, known_client_order_ids=frozenset(), fills={},
                  symbols=frozenset({"BTCUSDT"}))
    values.update(overrides)
    return LocalBooks(**values)


def snapshot(**overrides) -> ExchangeSnapshot:
    values = dict(time=NOW, open_orders=(), open_algo_orders=(), positions=(), wallet_balance=D("1000"), fills=(),
                  lookups=(), fresh_account=False)
    values.update(overrides)
    return ExchangeSnapshot(**values)


def fill(trade_id: int, side: Side, quantity: str, cid: str = "alph1234-BTCUSDT-1-enb") -> Fill:
    return Fill("BTCUSDT", trade_id, 7, cid, side, PositionSide.BOTH, D("30000"), D(quantity), D(0), D(0), "USDT",
                D(0), False, NOW - 1_000 + trade_id)


def order(cid: str, status: OrderStatus = OrderStatus.NEW) -> Order:
    return Order("BTCUSDT", 9, cid, Side.BUY, OrderType.LIMIT, status, D("0.01"), D("29000"), TimeInForce.GTC)


def live(intent_state: IntentState, status: OrderStatus | None, first_sent: int) -> LiveOrder:
    return LiveOrder("BTCUSDT", False, intent_state, first_sent, OrderPurpose.ENTRY, status)


def test_an_unresolved_order_not_found_is_never_placed_only_after_the_window() -> None:
    local = books(live_orders={"a": live(IntentState.SENT, None, NOW - 10_000),
                               "b": live(IntentState.UNKNOWN, None, NOW - 40_000)})
    lookups = (LookupResult("a", Outcome.NOT_FOUND, NOW, code=-2013), LookupResult("b", Outcome.NOT_FOUND, NOW))
    result = plan(local, snapshot(lookups=lookups), unknown_window_ms=WINDOW)
    assert result.still_unknown == ["a"] and result.never_placed == ["b"] and result.clean


def test_an_acknowledged_order_the_exchange_does_not_know_is_a_problem_unless_the_account_is_fresh() -> None:
    local = books(live_orders={"a": live(IntentState.ACKNOWLEDGED, OrderStatus.NEW, NOW - 60_000)})
    lookups = (LookupResult("a", Outcome.NOT_FOUND, NOW),)
    assert not plan(local, snapshot(lookups=lookups), unknown_window_ms=WINDOW).clean
    fresh = plan(local, snapshot(lookups=lookups, fresh_account=True), unknown_window_ms=WINDOW)
    assert fresh.clean and fresh.vanished == ["a"]


def test_a_failed_lookup_is_a_problem_and_the_order_stays_unknown() -> None:
    local = books(live_orders={"a": live(IntentState.SENT, None, NOW - 1_000)})
    result = plan(local, snapshot(lookups=(LookupResult("a", Outcome.UNKNOWN, NOW, message="timeout"),)),
                  unknown_window_ms=WINDOW)
    assert result.still_unknown == ["a"] and "lookup failed" in result.problems[0]


def test_an_order_sent_after_the_reconciliation_began_is_left_to_its_own_answer() -> None:
    """Every order open when the Reconcile was issued is looked up; one the snapshot did not ask about was sent
    while it was being read, and its request's answer and the stream's reports settle it."""
    local = books(live_orders={"a": live(IntentState.SENT, None, NOW - 1_000)})
    result = plan(local, snapshot(), unknown_window_ms=WINDOW)
    assert result.clean and not result.resolved and not result.never_placed and not result.still_unknown


def test_missing_fills_are_found_in_trade_order_and_explain_the_position() -> None:
    local = books(holdings={BTC: D("0.010")}, owners={BTC: "alpha"},
                  fills={("BTCUSDT", 1): (7, Side.BUY, D("30000"), D("0.010"))})
    fills = (fill(3, Side.SELL, "0.004"), fill(1, Side.BUY, "0.010"), fill(2, Side.SELL, "0.002"),
             fill(3, Side.SELL, "0.004"))  # a page boundary repeated the last one
    result = plan(local, snapshot(fills=fills, positions=(Position("BTCUSDT", amount=D("0.004")),)),
                  unknown_window_ms=WINDOW)
    assert [f.trade_id for f in result.missing_fills] == [2, 3] and result.clean


def test_a_position_nothing_explains_is_a_problem() -> None:
    local = books(holdings={BTC: D("0.010")}, owners={BTC: "alpha"})
    result = plan(local, snapshot(positions=(Position("BTCUSDT", amount=D("0.013")),)), unknown_window_ms=WINDOW)
    assert result.problems == ["BTCUSDT BOTH: exchange holds 0.013, our fills add up to 0.010"]


def test_a_fresh_account_that_holds_nothing_closes_the_books() -> None:
    local = books(holdings={BTC: D("0.010")}, owners={BTC: "alpha"})
    result = plan(local, snapshot(fresh_account=True), unknown_window_ms=WINDOW)
    assert result.clean and result.fresh_account_flat == [(BTC, D("0.010"))] and result.flat_on_exchange == [BTC]


def test_foreign_and_adopted_orders_are_told_apart_by_their_id() -> None:
    ours = "alph1234-BTCUSDT-1681948860-enb"
    result = plan(books(), snapshot(open_orders=(order("web_123"), order(ours)),
                                    open_algo_orders=(AlgoAck(5, "manual-stop", "BTCUSDT", AlgoStatus.NEW),)),
                  unknown_window_ms=WINDOW)
    assert [o.client_order_id for o in result.foreign_orders] == ["web_123"]
    assert [o.client_order_id for o in result.adopted_orders] == [ours]
    assert any("manual-stop" in w for w in result.warnings) and result.clean


def test_other_symbols_are_ignored() -> None:
    result = plan(books(), snapshot(open_orders=(Order("ETHUSDT", 1, "web_1", Side.BUY, OrderType.LIMIT,
                                                       OrderStatus.NEW, D(1), D(1), TimeInForce.GTC),),
                                    positions=(Position("ETHUSDT", amount=D("2")),)), unknown_window_ms=WINDOW)
    assert result.clean and not result.foreign_orders and not result.warnings


def test_a_fill_whose_id_is_stored_with_other_contents_is_a_problem() -> None:
    local = books(fills={("BTCUSDT", 1): (7, Side.BUY, D("30000"), D("0.010"))}, holdings={BTC: D("0.010")},
                  owners={BTC: "alpha"})
    result = plan(local, snapshot(fills=(fill(1, Side.SELL, "0.002"),), positions=(Position("BTCUSDT",
                  amount=D("0.010")),)), unknown_window_ms=WINDOW)
    assert "differs from the stored fill" in result.problems[0] and result.missing_fills == []
