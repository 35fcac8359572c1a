"""Repository behaviour on both backends: idempotent writes, out-of-order order updates, candles, risk state."""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from decimal import Decimal

import pytest

from database.repository import Repository
from tests.database.helpers import START_MS, dump
from utils.clock import SimulatedClock
from utils.domain import (
    Candle,
    Fill,
    IntentState,
    MarginType,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    RoundTrip,
    Side,
    Signal,
    SignalSide,
    TimeInForce,
    TradingState,
)

D = Decimal


def intent(client_order_id: str = "c-1", **changes: object) -> OrderIntent:
    base = OrderIntent(
        client_order_id=client_order_id,
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=D("0.010"),
        price=D("50000.10"),
        time_in_force=TimeInForce.GTC,
        strategy="trend",
        signal_time=START_MS - 60_000,
    )
    return replace(base, **changes)


def report(
    client_order_id: str = "c-1",
    status: OrderStatus = OrderStatus.NEW,
    executed: str = "0",
    update_time: int = START_MS + 1_000,
    **changes: object,
) -> Order:
    executed_quantity = D(executed)
    average = D("50000.1") if executed_quantity else D(0)
    base = Order(
        symbol="BTCUSDT",
        order_id=8_389_765_012_345,  # Binance order ids exceed 32 bits
        client_order_id=client_order_id,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        status=status,
        quantity=D("0.01"),
        price=D("50000.1"),
        time_in_force=TimeInForce.GTC,
        executed_quantity=executed_quantity,
        cum_quote=executed_quantity * average,
        avg_price=average,
        create_time=START_MS + 500,
        update_time=update_time,
    )
    return replace(base, **changes)


def fill(trade_id: int = 1, client_order_id: str = "c-1", time: int = START_MS + 2_000, **changes: object) -> Fill:
    base = Fill(
        symbol="BTCUSDT",
        trade_id=trade_id,
        order_id=8_389_765_012_345,
        client_order_id=client_order_id,
        side=Side.BUY,
        position_side=PositionSide.BOTH,
        price=D("50000.1"),
        quantity=D("0.004"),
        quote_quantity=D("200.0004"),
        commission=D("0.08000016"),
        commission_asset="USDT",
        realized_pnl=D("0"),
        maker=True,
        time=time,
    )
    return replace(base, **changes)


def candle(open_time: int, symbol: str = "BTCUSDT", close: str = "50000.5") -> Candle:
    return Candle(
        symbol=symbol,
        open_time=open_time,
        close_time=open_time + 59_999,
        open=D("50000.1"),
        high=D("50010.25"),
        low=D("49990"),
        close=D(close),
        volume=D("12.345"),
        quote_volume=D("617283.95"),
        trades=321,
        taker_buy_volume=D("6.1"),
        taker_buy_quote_volume=D("305000.61"),
    )


# --- orders ---------------------------------------------------------------------------------------------------


def test_save_order_intent_inserts_once_and_never_overwrites(repo: Repository, clock: SimulatedClock) -> None:
    assert repo.save_order_intent(intent()) is True
    first = repo.get_order("c-1")
    assert first is not None
    assert first.intent_state is IntentState.PENDING_SEND
    assert (first.status, first.order_id, first.intent_time) == (None, None, START_MS)
    assert first.to_intent() == intent(quantity=D("0.01"), price=D("50000.1"))  # same values, canonical digits
    assert first.is_algo is False
    assert first.is_open

    clock.advance(5_000)
    before = dump(repo.engine)
    assert repo.save_order_intent(intent()) is False
    assert repo.save_order_intent(intent(quantity=D("99"), strategy="other")) is False
    assert dump(repo.engine) == before

    # Progress made since is never undone by a replayed intent.
    repo.mark_intent("c-1", IntentState.SENT)
    repo.update_order(report(status=OrderStatus.PARTIALLY_FILLED, executed="0.004"))
    progressed = dump(repo.engine)
    assert repo.save_order_intent(intent(), state=IntentState.PENDING_SEND) is False
    assert dump(repo.engine) == progressed

    with pytest.raises(ValueError, match=r"'c-1' is already stored for BUY BTCUSDT, not SELL ETHUSDT"):
        repo.save_order_intent(intent(symbol="ETHUSDT", side=Side.SELL))


def test_conditional_intents_are_algo_orders_by_default(repo: Repository) -> None:
    repo.save_order_intent(intent("stop", order_type=OrderType.STOP_MARKET, price=None, stop_price=D("49000")))
    repo.save_order_intent(intent("limit"))
    repo.save_order_intent(intent("forced", order_type=OrderType.LIMIT), is_algo=True)
    stop, limit, forced = (repo.get_order(name) for name in ("stop", "limit", "forced"))
    assert stop is not None and limit is not None and forced is not None
    assert (stop.is_algo, limit.is_algo, forced.is_algo) == (True, False, True)
    assert stop.price is None and stop.stop_price == D("49000")


def test_intent_state_only_moves_forward(repo: Repository, clock: SimulatedClock) -> None:
    repo.save_order_intent(intent())
    clock.advance(10)
    assert repo.mark_intent("c-1", IntentState.SENT) is True
    assert repo.mark_intent("c-1", IntentState.SENT) is False
    assert repo.mark_intent("c-1", IntentState.PENDING_SEND) is False
    clock.advance(10)
    assert repo.mark_intent("c-1", IntentState.UNKNOWN) is True
    clock.advance(10)
    assert repo.mark_intent("c-1", IntentState.REJECTED, reject_code=-2019, reject_message="Margin is insufficient.")
    rejected = repo.get_order("c-1")
    assert rejected is not None
    assert (rejected.intent_state, rejected.reject_code, rejected.reject_message, rejected.intent_state_time) == (
        IntentState.REJECTED,
        -2019,
        "Margin is insufficient.",
        START_MS + 30,
    )
    assert not rejected.is_open

    before = dump(repo.engine)
    assert repo.mark_intent("c-1", IntentState.SENT) is False
    assert repo.mark_intent("c-1", IntentState.NOT_FOUND) is False
    assert repo.mark_intent("c-1", IntentState.REJECTED, reject_code=-1111) is False
    assert dump(repo.engine) == before

    with pytest.raises(KeyError, match="no order with client_order_id 'nope'"):
        repo.mark_intent("nope", IntentState.SENT)


def test_update_order_acknowledges_the_intent_and_is_idempotent(repo: Repository, clock: SimulatedClock) -> None:
    repo.save_order_intent(intent())
    repo.mark_intent("c-1", IntentState.SENT)
    clock.advance(1_000)
    assert repo.update_order(report()) is True

    stored = repo.get_order("c-1")
    assert stored is not None
    assert (stored.intent_state, stored.status, stored.order_id) == (
        IntentState.ACKNOWLEDGED,
        OrderStatus.NEW,
        8_389_765_012_345,
    )
    assert (stored.strategy, stored.signal_time, stored.intent_time) == ("trend", START_MS - 60_000, START_MS)
    assert stored.intent_state_time == START_MS + 1_000
    assert stored.to_order() == report()
    assert repo.get_order_by_exchange_id("BTCUSDT", 8_389_765_012_345) == stored

    before = dump(repo.engine)
    clock.advance(1_000)
    assert repo.update_order(report()) is False
    assert dump(repo.engine) == before


def test_update_order_for_an_order_we_never_saved_creates_it(repo: Repository) -> None:
    assert repo.get_order("manual") is None
    assert repo.update_order(report("manual", status=OrderStatus.PARTIALLY_FILLED, executed="0.002")) is True
    stored = repo.get_order("manual")
    assert stored is not None
    assert stored.intent_state is IntentState.ACKNOWLEDGED
    assert stored.strategy == ""
    assert stored.to_order() == report("manual", status=OrderStatus.PARTIALLY_FILLED, executed="0.002")


def test_out_of_order_updates_never_undo_progress(repo: Repository) -> None:
    """Every arrival order of NEW, PARTIALLY_FILLED, FILLED ends in the same, final state."""
    updates = [
        report(status=OrderStatus.NEW, executed="0", update_time=START_MS + 1),
        report(status=OrderStatus.PARTIALLY_FILLED, executed="0.004", update_time=START_MS + 2),
        report(status=OrderStatus.PARTIALLY_FILLED, executed="0.007", update_time=START_MS + 3),
        report(status=OrderStatus.FILLED, executed="0.01", update_time=START_MS + 4),
    ]
    final = updates[-1]
    for number, arrival in enumerate(itertools.permutations(updates)):
        client_order_id = f"perm-{number}"
        repo.save_order_intent(intent(client_order_id))
        for update in arrival:
            repo.update_order(replace(update, client_order_id=client_order_id))
        stored = repo.get_order(client_order_id)
        assert stored is not None
        assert stored.to_order() == replace(final, client_order_id=client_order_id), arrival
    assert repo.open_orders() == []


def test_a_final_status_is_never_replaced(repo: Repository) -> None:
    canceled = report(status=OrderStatus.CANCELED, executed="0.004", update_time=START_MS + 30)
    repo.update_order(canceled)
    before = dump(repo.engine)
    # A late NEW, a late partial fill and a (nonsensical) later EXPIRED: the CANCELED status stands.
    assert repo.update_order(report(status=OrderStatus.NEW, update_time=START_MS + 10)) is False
    late_fill = report(status=OrderStatus.PARTIALLY_FILLED, executed="0.004", update_time=START_MS + 20)
    assert repo.update_order(late_fill) is False
    assert dump(repo.engine) == before
    repo.update_order(report(status=OrderStatus.EXPIRED, executed="0.004", update_time=START_MS + 40))
    stored = repo.get_order("c-1")
    assert stored is not None
    assert (stored.status, stored.executed_quantity) == (OrderStatus.CANCELED, D("0.004"))


def test_executed_quantity_never_decreases_but_newer_terms_apply(repo: Repository) -> None:
    repo.update_order(report(status=OrderStatus.PARTIALLY_FILLED, executed="0.006", update_time=START_MS + 20))
    # An amendment reported later changes the price; the stale report before it changes nothing.
    repo.update_order(
        report(status=OrderStatus.PARTIALLY_FILLED, executed="0.006", update_time=START_MS + 30, price=D("50001"))
    )
    stale = report(status=OrderStatus.PARTIALLY_FILLED, executed="0.003", update_time=START_MS + 10)
    assert repo.update_order(stale) is False
    stored = repo.get_order("c-1")
    assert stored is not None
    assert (stored.executed_quantity, stored.avg_price, stored.cum_quote) == (D("0.006"), D("50000.1"), D("300.0006"))
    assert (stored.price, stored.update_time) == (D("50001"), START_MS + 30)


def test_conflicting_reports_raise_with_the_facts(repo: Repository) -> None:
    repo.update_order(report())
    with pytest.raises(ValueError, match="stored with exchange order id 8389765012345 but a report says 42"):
        repo.update_order(report(order_id=42))
    with pytest.raises(ValueError, match="already stored for BUY BTCUSDT, not SELL BTCUSDT"):
        repo.update_order(report(side=Side.SELL))

    # An algo order's triggered order may carry another id: the first id is kept, the rest is applied.
    repo.save_order_intent(intent("algo", order_type=OrderType.STOP_MARKET, price=None, stop_price=D("49000")))
    repo.update_order(report("algo", order_id=1001, order_type=OrderType.STOP_MARKET))
    repo.update_order(report("algo", order_id=2002, order_type=OrderType.STOP_MARKET, status=OrderStatus.FILLED,
                             executed="0.01", update_time=START_MS + 9_000))  # fmt: skip
    stored = repo.get_order("algo")
    assert stored is not None
    assert (stored.order_id, stored.status, stored.executed_quantity) == (1001, OrderStatus.FILLED, D("0.01"))


def test_open_orders_include_unresolved_intents(repo: Repository) -> None:
    for name in ("pending", "sent", "unknown", "rejected", "not-found", "new", "partial", "filled", "canceled"):
        repo.save_order_intent(intent(name, symbol="ETHUSDT" if name == "partial" else "BTCUSDT"))
    repo.mark_intent("sent", IntentState.SENT)
    repo.mark_intent("unknown", IntentState.UNKNOWN)
    repo.mark_intent("rejected", IntentState.REJECTED, reject_code=-4164, reject_message="notional too small")
    repo.mark_intent("not-found", IntentState.NOT_FOUND)
    repo.update_order(report("new", order_id=1))
    repo.update_order(
        report("partial", order_id=2, symbol="ETHUSDT", status=OrderStatus.PARTIALLY_FILLED, executed="0.001")
    )
    repo.update_order(report("filled", order_id=3, status=OrderStatus.FILLED, executed="0.01"))
    repo.update_order(report("canceled", order_id=4, status=OrderStatus.CANCELED))

    assert [order.client_order_id for order in repo.open_orders()] == ["pending", "sent", "unknown", "new", "partial"]
    assert [order.client_order_id for order in repo.open_orders("ETHUSDT")] == ["partial"]
    assert all(order.is_open for order in repo.open_orders())


# --- fills, positions, signals ------------------------------------------------------------------------------


def test_record_fill_is_idempotent(repo: Repository) -> None:
    assert repo.record_fill(fill(2, time=START_MS + 3_000)) is True
    assert repo.record_fill(fill(1)) is True
    assert repo.record_fill(fill(7, client_order_id="c-2")) is True
    assert repo.record_fill(fill(1, symbol="ETHUSDT")) is True  # trade ids are per symbol
    before = dump(repo.engine)

    assert repo.record_fill(fill(1)) is False
    assert repo.record_fill(fill(1, price=D("1"), quantity=D("999"))) is False  # a duplicate never overwrites
    assert dump(repo.engine) == before

    assert repo.fills_for_order("c-1") == [fill(1), fill(1, symbol="ETHUSDT"), fill(2, time=START_MS + 3_000)]
    assert [recorded.trade_id for recorded in repo.all_fills("BTCUSDT")] == [1, 7, 2]
    assert [recorded.trade_id for recorded in repo.all_fills(since_time=START_MS + 3_000)] == [2]


def test_upsert_position_keeps_the_newest(repo: Repository) -> None:
    long = Position(
        symbol="BTCUSDT",
        amount=D("0.010"),
        entry_price=D("50000.1"),
        break_even_price=D("50020.12"),
        unrealized_pnl=D("-1.5"),
        mark_price=D("49850.1"),
        leverage=5,
        margin_type=MarginType.ISOLATED,
        isolated_wallet=D("100.02"),
        update_time=START_MS + 100,
    )
    assert repo.upsert_position(long) is True
    before = dump(repo.engine)
    assert repo.upsert_position(long) is False
    assert repo.upsert_position(replace(long, amount=D("0.5"), update_time=START_MS + 50)) is False  # older: ignored
    assert dump(repo.engine) == before

    flat = replace(
        long, amount=D(0), entry_price=D(0), unrealized_pnl=D(0), realized_pnl=D("3.2"), update_time=START_MS + 200
    )
    assert repo.upsert_position(flat) is True
    short = Position(symbol="ETHUSDT", position_side=PositionSide.SHORT, amount=D("-1.5"), entry_price=D("3000"))
    assert repo.upsert_position(short) is True
    assert repo.positions() == [flat, short]
    assert repo.positions("ETHUSDT") == [short]
    assert repo.positions()[0].is_flat


def test_record_signal_is_idempotent(repo: Repository) -> None:
    signal = Signal("trend", "BTCUSDT", SignalSide.LONG, D("0.75"), "ema cross", START_MS, START_MS - 60_000)
    assert repo.record_signal(signal) is True
    before = dump(repo.engine)
    assert repo.record_signal(signal) is False
    assert repo.record_signal(replace(signal, strength=D("0.1"), reason="replayed")) is False
    assert dump(repo.engine) == before

    assert repo.record_signal(replace(signal, side=SignalSide.FLAT)) is True
    assert repo.record_signal(replace(signal, strategy="meanrev")) is True
    assert repo.signals(strategy="trend") == [signal, replace(signal, side=SignalSide.FLAT)]
    assert len(repo.signals(symbol="BTCUSDT", since_time=START_MS)) == 3


# --- candles ------------------------------------------------------------------------------------------------


def test_record_candles_is_bulk_and_idempotent(repo: Repository) -> None:
    minute = 60_000
    first = [candle(START_MS + i * minute) for i in range(3)]
    assert repo.record_candles(first) == 3
    before = dump(repo.engine)
    assert repo.record_candles(first) == 0
    assert repo.record_candles([replace(first[0], close=D("1"))]) == 0  # a stored candle is never rewritten
    assert repo.record_candles([]) == 0
    assert dump(repo.engine) == before

    # Overlapping batch with a duplicate inside it, across several internal batches, two symbols.
    last = candle(START_MS + 11_999 * minute)
    overlapping = [candle(START_MS + i * minute) for i in range(12_000)] + [last, candle(START_MS, "ETHUSDT")]
    assert repo.record_candles(overlapping) == 12_000 - 3 + 1
    assert repo.record_candles(overlapping) == 0
    assert len(repo.load_candles("BTCUSDT", 20_000)) == 12_000


def test_record_candles_refuses_open_or_other_interval_candles_and_writes_nothing(repo: Repository) -> None:
    good = candle(START_MS)
    with pytest.raises(ValueError, match="only closed 1m candles are stored; got BTCUSDT .* closed=False"):
        repo.record_candles([good, replace(candle(START_MS + 60_000), closed=False)])
    with pytest.raises(ValueError, match="interval=5m"):
        repo.record_candles([replace(good, interval="5m")])
    assert repo.load_candles("BTCUSDT", 10) == []


def test_load_candles_returns_the_latest_in_ascending_order(repo: Repository) -> None:
    minute = 60_000
    stored = [candle(START_MS + i * minute, close=f"{50000 + i}.5") for i in range(10)]
    repo.record_candles(reversed(stored))  # insertion order does not matter
    repo.record_candles([candle(START_MS + 5 * minute, "ETHUSDT")])

    assert repo.load_candles("BTCUSDT", 100) == stored
    assert repo.load_candles("BTCUSDT", 3) == stored[-3:]
    assert repo.load_candles("BTCUSDT", 3, before_open_time=START_MS + 5 * minute) == stored[2:5]
    assert repo.load_candles("BTCUSDT", 3, before_open_time=START_MS) == []
    assert repo.load_candles("BTCUSDT", 0) == []
    assert repo.load_candles("ETHUSDT", 5) == [candle(START_MS + 5 * minute, "ETHUSDT")]
    assert repo.load_candles("XRPUSDT", 5) == []
    with pytest.raises(ValueError, match="limit must be >= 0, got -1"):
        repo.load_candles("BTCUSDT", -1)


# --- risk state, funding, account -----------------------------------------------------------------------------


def test_risk_state_changes_only_when_something_differs(repo: Repository, clock: SimulatedClock) -> None:
    assert repo.get_risk_state("global") is None
    created = repo.set_risk_state("global", TradingState.ACTIVE, "start")
    assert (created.state, created.reason, created.consecutive_losses, created.updated_at, created.details) == (
        TradingState.ACTIVE, "start", 0, START_MS, None,
    )  # fmt: skip

    clock.advance(1_000)
    before = dump(repo.engine)
    assert repo.set_risk_state("global", TradingState.ACTIVE, "start") == created
    assert dump(repo.engine) == before

    clock.advance(1_000)
    halted = repo.set_risk_state(
        "strategy:trend",
        TradingState.HALTED,
        "3 losses in a row",
        consecutive_losses=3,
        details={"daily_loss": D("-152.25"), "limit": "150"},
    )
    assert halted.details == {"daily_loss": "-152.25", "limit": "150"}
    assert halted.updated_at == START_MS + 2_000
    assert repo.set_risk_state("strategy:trend", TradingState.HALTED, "3 losses in a row", consecutive_losses=3,
                               details={"limit": "150", "daily_loss": D("-152.25")}) == halted  # fmt: skip

    clock.advance(1_000)
    reducing = repo.set_risk_state("strategy:trend", TradingState.REDUCING, "cooling down")
    assert (reducing.state, reducing.consecutive_losses, reducing.details, reducing.updated_at) == (
        TradingState.REDUCING, 3, halted.details, START_MS + 3_000,
    )  # fmt: skip
    assert repo.get_risk_state("strategy:trend") == reducing
    assert repo.get_risk_state("global") == created


def test_funding_and_account_snapshots_are_idempotent(repo: Repository) -> None:
    assert repo.record_funding("BTCUSDT", START_MS, D("-0.12345678")) is True
    assert repo.record_funding("ETHUSDT", START_MS, D("0.5")) is True
    snapshot = {
        "wallet_balance": D("1000.5"),
        "available_balance": D("900.25"),
        "equity": D("998.75"),
        "unrealized_pnl": D("-1.75"),
    }
    assert repo.record_account_snapshot(START_MS, **snapshot) is True
    assert repo.record_account_snapshot(START_MS + 60_000, **{**snapshot, "equity": D("1001")}) is True
    before = dump(repo.engine)

    assert repo.record_funding("BTCUSDT", START_MS, D("-0.12345678")) is False
    assert repo.record_funding("BTCUSDT", START_MS, D("-99")) is False
    assert repo.record_account_snapshot(START_MS, **{**snapshot, "equity": D("1")}) is False
    assert dump(repo.engine) == before

    payments = [(payment.symbol, payment.amount) for payment in repo.funding_payments()]
    assert payments == [("BTCUSDT", D("-0.12345678")), ("ETHUSDT", D("0.5"))]
    assert repo.funding_payments("ETHUSDT", since_time=START_MS + 1) == []
    latest = repo.latest_account_snapshot()
    assert latest is not None and (latest.time, latest.equity) == (START_MS + 60_000, D("1001"))
    assert [snapshot.equity for snapshot in repo.account_snapshots()] == [D("998.75"), D("1001")]
    assert repo.latest_account_snapshot("BNB") is None


# --- whole-stream replay and concurrency --------------------------------------------------------------------


def _event_stream(repo: Repository) -> None:
    repo.save_order_intent(intent())
    repo.mark_intent("c-1", IntentState.SENT)
    repo.update_order(report())
    repo.record_fill(fill(1))
    repo.update_order(report(status=OrderStatus.PARTIALLY_FILLED, executed="0.004", update_time=START_MS + 2_000))
    repo.record_fill(fill(2, quantity=D("0.006"), time=START_MS + 3_000))
    repo.update_order(report(status=OrderStatus.FILLED, executed="0.01", update_time=START_MS + 3_000))
    repo.upsert_position(Position("BTCUSDT", amount=D("0.01"), entry_price=D("50000.1"), update_time=START_MS + 3_000))
    repo.record_signal(Signal("trend", "BTCUSDT", SignalSide.LONG, D("1"), "breakout", START_MS, START_MS - 60_000))
    repo.record_candles([candle(START_MS - 60_000), candle(START_MS)])
    repo.set_risk_state("global", TradingState.ACTIVE, "ok", consecutive_losses=0, details={"equity": D("1000")})
    repo.record_funding("BTCUSDT", START_MS + 10_000, D("-0.01"))
    repo.save_sim_account('{"version": 1}', START_MS)
    repo.upsert_round_trip(RoundTrip("alpha-1", "trend", "BTCUSDT", PositionSide.BOTH, Side.BUY, START_MS,
                                     quantity=D("0.002"), entry_value=D("60"), commission=D("0.012"), fills=1))
    repo.record_account_snapshot(
        START_MS + 10_000, wallet_balance=D("1000"), available_balance=D("500"), equity=D("999"), unrealized_pnl=D("-1")
    )


def test_replaying_the_whole_event_stream_changes_nothing(repo: Repository, clock: SimulatedClock) -> None:
    _event_stream(repo)
    before = dump(repo.engine)
    assert {name: len(rows) for name, rows in before.items()} == {
        "account_snapshots": 1, "candles_1m": 2, "fills": 2, "funding_payments": 1, "orders": 1,
        "positions": 1, "risk_state": 1, "round_trips": 1, "signals": 1, "sim_accounts": 1,
    }  # fmt: skip
    clock.advance(3_600_000)  # a restart an hour later replays everything
    _event_stream(repo)
    assert dump(repo.engine) == before


def test_concurrent_writers_agree(repo: Repository) -> None:
    """Four threads replay the same fills and shuffled order updates: each fill is new exactly once."""
    updates = [
        report(status=OrderStatus.NEW, update_time=START_MS + 1),
        report(status=OrderStatus.PARTIALLY_FILLED, executed="0.004", update_time=START_MS + 2),
        report(status=OrderStatus.FILLED, executed="0.01", update_time=START_MS + 3),
    ]
    new_fills: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(offset: int) -> None:
        try:
            for step in range(20):
                added = repo.record_fill(fill(step + 1))
                repo.update_order(updates[(step + offset) % len(updates)])
                with lock:
                    new_fills.append(added)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(new_fills) == 20 and len(new_fills) == 80
    stored = repo.get_order("c-1")
    assert stored is not None and stored.to_order() == updates[-1]


def test_a_triggered_stop_records_the_order_it_placed_even_under_its_own_id(repo: Repository) -> None:
    """Binance's algo ids and order ids are separate counters: the placed order may carry the algo's own number."""
    stop = OrderIntent("alph1234-BTCUSDT-1-enb-sl", "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, D("0"),
                       stop_price=D("29000"), close_position=True, strategy="alpha")
    repo.save_order_intent(stop)
    algo = Order("BTCUSDT", 5, stop.client_order_id, Side.SELL, OrderType.STOP_MARKET, OrderStatus.NEW, D("0"), D("0"),
                 TimeInForce.GTC, close_position=True, stop_price=D("29000"), update_time=1)
    repo.update_order(algo, is_algo=True)
    triggered = replace(algo, order_type=OrderType.MARKET, status=OrderStatus.FILLED, executed_quantity=D("0.01"),
                        update_time=2)
    repo.update_order(triggered, actual_order_id=5)  # the placed order's id is 5 as well
    record = repo.get_order(stop.client_order_id)
    assert record.order_id == 5 and record.actual_order_id == 5 and record.executed_quantity == D("0.01")
