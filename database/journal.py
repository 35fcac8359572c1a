"""The execution core's persist commands written to the database, and the seed the core starts from.

:class:`RepositoryJournal` writes one batch of persist commands in one transaction (the shells apply a batch
before any of its requests leave). :func:`load_seed` reads what the core must hold in memory at start (every
client order id with its strategy, the orders that may still be live, every fill's key, the open round trips)
so that no decision afterwards needs a database read.
"""

from __future__ import annotations

from collections.abc import Sequence

from database.repository import Repository
from executor.commands import (
    PersistCommand,
    PersistFill,
    PersistFunding,
    PersistIntent,
    PersistIntentState,
    PersistOrder,
    PersistPosition,
    PersistRiskState,
    PersistRoundTrip,
    PersistSignal,
)
from executor.core import CoreSeed, TrackedOrder
from executor.risk import StateRecord
from utils.domain import ZERO, TripStatus


def persist_risk_record(repository: Repository, record: StateRecord) -> None:
    repository.set_risk_state(record.scope, record.state, record.reason,
                              consecutive_losses=record.consecutive_losses, details=record.to_dict())


class RepositoryJournal:
    """Persist commands into the database: one transaction per batch."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self.batches = 0
        self.decisions = 0  # batches written by the decision fast path

    def apply(self, commands: Sequence[PersistCommand]) -> None:
        repository = self.repository
        if self._decision(commands):
            self.batches += 1
            self.decisions += 1
            return
        with repository.transaction():
            # Fills are rows of their own (nothing else in the batch reads them): one statement for all of them.
            repository.record_fills([c.fill for c in commands if isinstance(c, PersistFill)])
            for command in _latest_trips(commands):
                if isinstance(command, PersistFill):
                    continue
                if isinstance(command, PersistOrder):
                    repository.update_order(command.order, is_algo=command.is_algo,
                                            actual_order_id=command.actual_order_id)
                elif isinstance(command, PersistIntent):
                    repository.save_order_intent(command.intent, state=command.state, time=command.time)
                elif isinstance(command, PersistIntentState):
                    repository.mark_intent(command.client_order_id, command.state, reject_code=command.reject_code,
                                           reject_message=command.reject_message, time=command.time)
                elif isinstance(command, PersistPosition):
                    repository.upsert_position(command.position)
                elif isinstance(command, PersistRoundTrip):
                    repository.upsert_round_trip(command.trip)
                elif isinstance(command, PersistSignal):
                    repository.record_signal(command.signal, command.outcome, command.detail,
                                             command.client_order_ids)
                elif isinstance(command, PersistRiskState):
                    persist_risk_record(repository, command.record)
                elif isinstance(command, PersistFunding):
                    repository.record_funding(command.symbol, command.time, command.amount)
                else:
                    raise TypeError(f"not a persist command: {type(command).__name__}")
        self.batches += 1


    def _decision(self, commands: Sequence[PersistCommand]) -> bool:
        """A decision's batch (its signal and its orders' intents, all new): written as new rows in one
        transaction (``Repository.insert_new``, the fast path on the live decision path). False, with nothing
        written, for any other batch or when a row is already stored (a replay): the regular path takes it."""
        if not commands:
            return False
        rows = []
        for command in commands:
            kind = type(command)
            if kind is PersistSignal:
                assert isinstance(command, PersistSignal)
                rows.append(self.repository.signal_row(command.signal, command.outcome, command.detail,
                                                       command.client_order_ids))
            elif kind is PersistIntent:
                assert isinstance(command, PersistIntent)
                rows.append(self.repository.intent_row(command.intent, state=command.state, time=command.time))
            else:
                return False
        return self.repository.insert_new(rows)


def load_seed(repository: Repository) -> CoreSeed:
    """What the database knows, in the form the execution core holds it."""
    attribution = repository.order_attribution()
    live = []
    for record in repository.open_orders():
        live.append(TrackedOrder(
            intent=record.to_intent(), is_algo=record.is_algo, create_time=record.create_time or record.intent_time,
            intent_state=record.intent_state, status=record.status, order_id=record.order_id,
            executed=record.executed_quantity,
            applied=sum((f.quantity for f in repository.fills_for_order(record.client_order_id)), ZERO),
            first_sent=record.intent_time))
    fills, last_trade_ids = repository.fill_digests()
    wallet = repository.latest_account_snapshot()
    return CoreSeed(
        known_client_order_ids=frozenset(attribution), attribution=attribution, live_orders=tuple(live),
        fills=fills, open_trips=tuple(repository.round_trips(status=TripStatus.OPEN)),
        last_trade_ids=last_trade_ids, wallet_balance=wallet.wallet_balance if wallet is not None else ZERO,
        order_ids=repository.order_ids(), first_order_times=repository.first_order_times())


def _latest_trips(commands: Sequence[PersistCommand]) -> list[PersistCommand]:
    """The batch with each round trip written once, in its final state (a reconciliation that books a thousand
    fills into one trip writes it once, not a thousand times). A closed trip stays closed, as the repository's
    upsert has it: a later OPEN report of it in the same batch does not replace it."""
    latest: dict[str, PersistRoundTrip] = {}
    for command in commands:
        if isinstance(command, PersistRoundTrip):
            kept = latest.get(command.trip.trip_id)
            if kept is None or kept.trip.status is TripStatus.OPEN or command.trip.status is not TripStatus.OPEN:
                latest[command.trip.trip_id] = command
    if not latest:
        return list(commands)
    result: list[PersistCommand] = []
    for command in commands:
        if isinstance(command, PersistRoundTrip):
            chosen = latest.pop(command.trip.trip_id, None)
            if chosen is not None:
                result.append(chosen)
        else:
            result.append(command)
    return result
