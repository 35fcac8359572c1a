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
from executor.commands import PersistCommand, PersistFill, PersistRoundTrip
from utils.domain import Fill, PositionSide, RoundTrip, Side, TripStatus

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
