"""RepositoryJournal writes a batch the way one-by-one repository calls would, on both databases.

It stores a batch's fills in one statement and each round trip once, in its final state: these tests hold it to
the result of applying every command in order, one call each."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from database.journal import RepositoryJournal
from database.repository import Repository
from executor.commands import PersistCommand, PersistFill, PersistIntent, PersistRoundTrip, PersistSignal
from utils.domain import (
    Fill,
    OrderIntent,
    OrderType,
    PositionSide,
    RoundTrip,
    Side,
    Signal,
    SignalOutcome,
    SignalSide,
    TripStatus,
)

START = 1_681_948_800_000


def fill(trade_id: int, side: Side = Side.BUY) -> Fill:
    return Fill("BTCUSDT", trade_id, 10 + trade_id, f"c{trade_id}", side, PositionSide.BOTH, D("30000.1"),
                D("0.001"), D("30.0001"), D("0.012"), "USDT", D("0.5") if side is Side.SELL else D(0), False,
                START + trade_id)


def trip(trip_id: str, fills: int, status: TripStatus = TripStatus.OPEN) -> RoundTrip:
    return RoundTrip(trip_id, "alpha", "BTCUSDT", PositionSide.BOTH, Side.BUY, START, status=status,
                     close_time=START + fills if status is not TripStatus.OPEN else None,
                     quantity=D("0.001") * fills, fills=fills, commission=D("0.012") * fills)


def one_by_one(repository: Repository, commands: list[PersistCommand]) -> None:
    with repository.transaction():
        for command in commands:
            if isinstance(command, PersistFill):
                repository.record_fill(command.fill)
            elif isinstance(command, PersistRoundTrip):
                repository.upsert_round_trip(command.trip)


def contents(repository: Repository) -> tuple[list[Fill], list[RoundTrip]]:
    return repository.all_fills(), sorted(repository.round_trips(), key=lambda t: t.trip_id)


def test_a_thousand_fills_and_their_trip_in_one_batch(db_url: str, tmp_path) -> None:
    commands: list[PersistCommand] = []
    for index in range(1_000):
        commands.append(PersistFill(fill(index, Side.BUY if index % 2 == 0 else Side.SELL)))
        commands.append(PersistRoundTrip(trip("t1", index + 1)))
    commands.append(PersistRoundTrip(trip("t1", 1_000, TripStatus.CLOSED)))
    commands.append(PersistRoundTrip(trip("t1", 1_000)))  # a late OPEN report of a closed trip changes nothing
    batched = Repository.open(db_url)
    reference = Repository.open(f"sqlite:///{tmp_path / 'reference.db'}")
    try:
        RepositoryJournal(batched).apply(commands)
        RepositoryJournal(batched).apply(commands[:10])  # the same reports again: stored once
        one_by_one(reference, commands)
        assert contents(batched) == contents(reference)
        (stored,) = batched.round_trips()
        assert stored.status is TripStatus.CLOSED and stored.fills == 1_000
        assert len(batched.all_fills()) == 1_000
    finally:
        batched.close()
        reference.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["fill", "trip"]), st.integers(0, 5), st.sampled_from(["a", "b"]),
                          st.sampled_from(list(TripStatus))), max_size=25))
def test_any_batch_ends_like_the_one_by_one_writes(tmp_path_factory, steps) -> None:
    folder = tmp_path_factory.mktemp("journal")
    commands: list[PersistCommand] = []
    for kind, number, trip_id, status in steps:
        if kind == "fill":
            commands.append(PersistFill(fill(number)))
        else:
            commands.append(PersistRoundTrip(replace(trip(trip_id, number + 1, status))))
    batched = Repository.open(f"sqlite:///{folder / 'batched.db'}")
    reference = Repository.open(f"sqlite:///{folder / 'reference.db'}")
    try:
        RepositoryJournal(batched).apply(commands)
        one_by_one(reference, commands)
        assert contents(batched) == contents(reference)
    finally:
        batched.close()
        reference.close()


# ------------------------------------------------------------------------- a decision's batch (the fast path)
def decision(minute: int, outcome: SignalOutcome, orders: int) -> list[PersistCommand]:
    """What the core persists for a signal: the signal with its outcome, then its orders' intents."""
    time = START + minute * 60_000
    cids = tuple(f"alph1234-BTCUSDT-{time // 1000}-en{'bs'[n]}" for n in range(orders))
    intents = [PersistIntent(OrderIntent(cid, "BTCUSDT", Side.BUY if n == 0 else Side.SELL, OrderType.MARKET,
                                         D("0.004") + n, strategy="alpha", signal_time=time), time)
               for n, cid in enumerate(cids)]
    signal = Signal("alpha", "BTCUSDT", SignalSide.LONG, D("0.5"), "cross", time)
    return [PersistSignal(signal, outcome, "why" if outcome is not SignalOutcome.ORDERED else "", cids), *intents]


def decisions_stored(repository: Repository) -> tuple[list[object], list[object]]:
    signals = [(r.signal, r.outcome, r.outcome_detail, r.client_order_ids) for r in repository.signal_records()]
    orders = [(o.client_order_id, o.to_intent(), o.intent_state, o.intent_time, o.is_algo)
              for o in repository.all_orders()]
    return signals, orders


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from([SignalOutcome.ORDERED, SignalOutcome.WAITING,
                                                             SignalOutcome.NO_ACTION]), st.integers(0, 2)),
                min_size=1, max_size=12))
def test_decision_batches_end_like_the_one_by_one_writes(tmp_path_factory, steps) -> None:
    """New signals and intents take the journal's fast path (``Repository.insert_new``, on the driver with a held
    SQLite connection); a replayed one (its key already stored) falls back to the regular path. Either way the
    database ends as the one-by-one repository calls leave it, WAITING outcomes replaced as they are there."""
    folder = tmp_path_factory.mktemp("decisions")
    batches = [decision(minute, outcome, orders) for minute, outcome, orders in steps]
    journaled = {hold: Repository.open(f"sqlite:///{folder / f'journal-{hold}.db'}", hold_connection=hold)
                 for hold in (True, False)}
    reference = Repository.open(f"sqlite:///{folder / 'reference.db'}")
    try:
        journals = [RepositoryJournal(repository) for repository in journaled.values()]
        for batch in batches:
            for journal in journals:
                journal.apply(batch)
            with reference.transaction():
                for command in batch:
                    if isinstance(command, PersistSignal):
                        reference.record_signal(command.signal, command.outcome, command.detail,
                                                command.client_order_ids)
                    elif isinstance(command, PersistIntent):
                        reference.save_order_intent(command.intent, state=command.state, time=command.time)
        expected = decisions_stored(reference)
        for repository in journaled.values():
            assert decisions_stored(repository) == expected
        first_times = len({minute for minute, _, _ in steps})  # a minute's first batch is all new rows
        assert all(journal.decisions == first_times for journal in journals)
    finally:
        for repository in (*journaled.values(), reference):
            repository.close()


def test_a_decision_is_all_or_nothing_on_both_databases(db_url: str) -> None:
    """insert_new stores every row of a decision, or none when one of them is already stored."""
    for hold in (True, False):
        repository = Repository.open(db_url, hold_connection=hold)
        try:
            minute = 100 if hold else 200  # the two repositories share a database
            first = decision(minute, SignalOutcome.ORDERED, 2)
            journal = RepositoryJournal(repository)
            journal.apply(first)
            assert journal.decisions == 1  # new rows: the fast path
            rows = [repository.signal_row(first[0].signal, first[0].outcome, "", first[0].client_order_ids),
                    repository.intent_row(first[1].intent, time=first[1].time)]
            assert repository.insert_new(rows) is False  # both stored already: nothing changes
            fresh = decision(minute + 1, SignalOutcome.ORDERED, 1)
            mixed = [repository.signal_row(fresh[0].signal, fresh[0].outcome, "", fresh[0].client_order_ids),
                     repository.intent_row(first[2].intent, time=first[2].time)]  # a new signal, a stored intent
            assert repository.insert_new(mixed) is False
            stored_signals, stored_orders = decisions_stored(repository)
            assert [s[0].time for s in stored_signals if s[0].time >= START + minute * 60_000] == [
                START + minute * 60_000]  # the fresh signal was rolled back with the stored intent
            assert len([o for o in stored_orders if f"-{(START + minute * 60_000) // 1000}-" in o[0]]) == 2
        finally:
            repository.close()
