"""Synchronous, idempotent reads and writes of the bot's state, taking and returning domain objects.

Every write is safe to repeat: replaying the same event changes nothing (same rows, same values), and order
updates that arrive out of order never undo progress. Each call is its own short transaction on a pooled
connection. Writes that read before they write lock first (``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR
UPDATE`` on PostgreSQL), so two processes sharing a database cannot interleave them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from decimal import Decimal
from itertools import islice
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Dialect, Engine, Row, String, Table, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, StatementError

from database.checkpoint import WalCheckpointer
from database.engine import (
    SQLITE_BEGIN_OPTION,
    execute_on_sqlite_driver,
    json_default,
    make_engine,
    sqlite_file,
)
from database.mapping import row_to, to_columns
from database.models import (
    AccountSnapshotRecord,
    AccountSnapshotRow,
    CandleRow,
    FillRow,
    FundingPaymentRecord,
    FundingPaymentRow,
    OrderRecord,
    OrderRow,
    PositionRow,
    RiskStateRecord,
    RiskStateRow,
    RoundTripRow,
    SignalRecord,
    SignalRow,
    SimAccountRow,
)
from database.types import decimal_to_text, storable_decimal
from utils.clock import Clock, SystemClock
from utils.domain import (
    ZERO,
    Candle,
    Fill,
    IntentState,
    Order,
    OrderIntent,
    OrderPurpose,
    OrderStatus,
    Position,
    RoundTrip,
    Side,
    Signal,
    SignalOutcome,
    TradingState,
    TripStatus,
)

ORDERS = cast(Table, OrderRow.__table__)
FILLS = cast(Table, FillRow.__table__)
POSITIONS = cast(Table, PositionRow.__table__)
SIGNALS = cast(Table, SignalRow.__table__)
CANDLES = cast(Table, CandleRow.__table__)
RISK_STATE = cast(Table, RiskStateRow.__table__)
ACCOUNT_SNAPSHOTS = cast(Table, AccountSnapshotRow.__table__)
FUNDING_PAYMENTS = cast(Table, FundingPaymentRow.__table__)
ROUND_TRIPS = cast(Table, RoundTripRow.__table__)
SIM_ACCOUNTS = cast(Table, SimAccountRow.__table__)

CANDLE_INTERVAL = "1m"
_CANDLE_BATCH_ROWS = 5_000
_CANDLE_COLUMNS = tuple(column.name for column in CANDLES.columns)
_CANDLE_ROW_ORDER = (  # the order _candle_storage_row builds its tuples in
    "symbol", "open_time", "close_time", "open", "high", "low", "close",
    "volume", "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume",
)  # fmt: skip
if _CANDLE_COLUMNS != _CANDLE_ROW_ORDER:
    raise RuntimeError(f"candles_1m columns {_CANDLE_COLUMNS} differ from the bulk insert's order {_CANDLE_ROW_ORDER}")
# Which candle columns hold free text (quoted in a PostgreSQL array literal) rather than numbers.
_CANDLE_TEXT_COLUMNS = tuple(isinstance(column.type, String) for column in CANDLES.columns)
_CANDLE_KEY = ("symbol", "open_time")
_SQLITE_CANDLE_INSERT = (
    f"INSERT INTO {CANDLES.name} ({', '.join(_CANDLE_COLUMNS)}) VALUES ({', '.join('?' for _ in _CANDLE_COLUMNS)}) "
    f"ON CONFLICT ({', '.join(_CANDLE_KEY)}) DO NOTHING"
)


def _postgres_type(column: Any) -> str:
    compiled: str = column.type.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    return compiled


_POSTGRES_CANDLE_INSERT = (
    f"INSERT INTO {CANDLES.name} ({', '.join(_CANDLE_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"%s::{_postgres_type(column)}[]" for column in CANDLES.columns)
    + f") ON CONFLICT ({', '.join(_CANDLE_KEY)}) DO NOTHING"
)
_OPEN_STATUSES = (OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value)
#: An order row's columns that neither an OrderIntent nor an Order fills in, with their starting values.
_ORDER_ROW_DEFAULTS: dict[str, Any] = {
    "status": None, "time_in_force": None, "price": None, "stop_price": None, "executed_quantity": ZERO,
    "cum_quote": ZERO, "avg_price": ZERO, "order_id": None, "actual_order_id": None, "strategy": "",
    "purpose": OrderPurpose.EXTERNAL.value, "signal_time": 0, "reject_code": None, "reject_message": None,
    "create_time": 0, "update_time": 0,
}
_SIGNAL_KEY = ("strategy", "symbol", "time", "side")
_SIGNAL_OUTCOME_COLUMNS = ("outcome", "outcome_detail", "client_order_ids")
_UNRESOLVED_INTENT_STATES = tuple(state.value for state in IntentState if state.is_unresolved)


def _same(stored: Any, new: Any) -> bool:
    """Whether writing ``new`` over ``stored`` would leave the column as it is (Decimals as they will be stored)."""
    if isinstance(new, Decimal):
        return stored is not None and stored == storable_decimal(new)
    return bool(stored == new) and (stored is None) == (new is None)


def _changed(row: Row[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if not _same(getattr(row, name), value)}


def _chunks[Item](items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _plain_json(details: Any) -> Any:
    """``details`` as the plain JSON value it will be read back as (Decimals become strings)."""
    return json.loads(json.dumps(details, default=json_default))


class Repository:
    """The bot's only door to its database."""

    def __init__(self, engine: Engine, clock: Clock | None = None, *, owns_engine: bool = False,
                 hold_connection: bool = False) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database backend {engine.dialect.name!r} ({engine.url!r})")
        self.engine = engine
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._owns_engine = owns_engine
        self._postgres = engine.dialect.name == "postgresql"
        self._transaction: Connection | None = None
        self._inserts_if_absent: dict[tuple[str, tuple[str, ...], tuple[str, ...]], _CompiledInsert] = {}
        self._hold = hold_connection
        self._local = threading.local()  # the held connection is per thread: .connection and .begin
        self._held_lock = threading.Lock()
        self._held_all: set[Connection] = set()  # every thread's, for close()
        self.checkpointer: WalCheckpointer | None = None

    @classmethod
    def open(cls, db_url: str | URL, clock: Clock | None = None, *, apply_migrations: bool = True,
             hold_connection: bool = False, background_checkpoint: bool = False) -> Repository:
        """Connect to ``db_url`` (migrating it to the newest schema first, unless told not to).

        ``hold_connection``: every call uses its thread's connection, kept open (for a process's writer, the live
        shell): no pool checkout and reset per call, and SQLite's page cache stays warm, since SQLite drops a
        connection's cache whenever another connection has written (docs/benchmarks.md, live decision
        latency). The connection is dropped after any error and opened again by the next call.

        ``background_checkpoint`` (a SQLite file): commits never checkpoint the WAL themselves; a thread does it
        every second (``database/checkpoint.py``), so no commit carries a checkpoint's fsync.
        """
        engine = make_engine(db_url, wal_autocheckpoint=not background_checkpoint)
        try:
            if apply_migrations:
                from database.migrate import migrate  # imported here: migrate's env.py imports the models

                migrate(engine)
            repository = cls(engine, clock, owns_engine=True, hold_connection=hold_connection)
        except BaseException:
            engine.dispose()
            raise
        path = sqlite_file(engine.url) if engine.dialect.name == "sqlite" else None
        if background_checkpoint and path is not None:
            repository.checkpointer = WalCheckpointer(path)
            repository.checkpointer.start()
        return repository

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
            self.checkpointer = None
        self.release_connection()
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        if self._transaction is not None:
            yield self._transaction
            return
        if self._hold:
            with self._held_transaction("DEFERRED") as connection:
                yield connection
            return
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction that holds SQLite's write lock from its start (PostgreSQL locks rows as it goes)."""
        if self._transaction is not None:
            yield self._transaction  # part of the caller's transaction()
            return
        with self._connection_for_write() as connection:
            yield connection

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every read and write inside the block in one transaction: all of it is stored, or none of it.

        For one thread at a time (the shell's single consumer); blocks do not nest.
        """
        if self._transaction is not None:
            raise RuntimeError("Repository.transaction() blocks do not nest")
        with self._connection_for_write() as connection:
            self._transaction = connection
            try:
                yield
            finally:
                self._transaction = None

    @contextmanager
    def _connection_for_write(self) -> Iterator[Connection]:
        if self._hold:
            with self._held_transaction("IMMEDIATE") as connection:
                yield connection
            return
        with self.engine.connect() as connection:
            connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            with connection.begin():
                yield connection

    @contextmanager
    def _held_transaction(self, begin: str) -> Iterator[Connection]:
        """A transaction on this thread's held connection (opened if there is none); an error drops it."""
        local = self._local
        connection = self._held_connection()
        try:
            if local.begin != begin:  # an execution option costs a dict merge: set it only when it changes
                connection.execution_options(**{SQLITE_BEGIN_OPTION: begin})
                local.begin = begin
            with connection.begin():
                yield connection
        except BaseException:
            self._drop_held(connection)
            raise

    def _held_connection(self) -> Connection:
        local = self._local
        connection: Connection | None = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = self.engine.connect()
            local.begin = None
            with self._held_lock:
                self._held_all.add(connection)
        return connection

    def release_connection(self) -> None:
        """Close every held connection; the next call opens a new one (with the engine's settings then)."""
        with self._held_lock:
            connections, self._held_all = self._held_all, set()
        for connection in connections:
            self._release(connection)
        self._local = threading.local()

    def _drop_held(self, connection: Connection) -> None:
        """This thread's held connection failed: closed, and the next call opens another."""
        self._release(connection)
        self._local.connection = None

    def _release(self, connection: Connection) -> None:
        with self._held_lock:
            self._held_all.discard(connection)
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - a broken connection may not close cleanly; it is discarded anyway
            with suppress(Exception):
                connection.invalidate()

    def _insert(self, table: Table) -> PostgresInsert | SqliteInsert:
        return postgresql.insert(table) if self._postgres else sqlite.insert(table)

    def _insert_if_absent(self, connection: Connection, table: Table, key: list[str], values: dict[str, Any]) -> bool:
        """Insert a row unless its key is stored; True if inserted.

        The statement is compiled once per table and column set by SQLAlchemy (the same SQL, and the same
        column types' bind processors, as ``connection.execute`` would use) and run on the connection's DBAPI
        cursor: SQLAlchemy's per-execution setup cost more than the write itself, and these inserts are on the
        live decision path (docs/benchmarks.md, live decision latency). Errors are raised as SQLAlchemy's would
        be: ``StatementError`` for a value no column accepts, ``DBAPIError`` subclasses from the driver.
        """
        return self._compiled_insert(table, key, values).run(connection.connection, values) == 1

    def _compiled_insert(self, table: Table, key: Sequence[str], values: Mapping[str, Any]) -> _CompiledInsert:
        names = tuple(values)
        cache_key = (table.name, tuple(key), names)
        insert = self._inserts_if_absent.get(cache_key)
        if insert is None:
            insert = self._inserts_if_absent[cache_key] = _CompiledInsert.build(
                self._insert(table).on_conflict_do_nothing(index_elements=list(key)), table, names,
                self.engine.dialect)
        return insert

    def insert_new(self, rows: Sequence[NewRow]) -> bool:
        """Insert all ``rows`` in one transaction if none of their keys is stored yet (True); if any is, store
        nothing (False: the caller takes the regular path, which knows what a stored row means).

        The journal's path for a decision (its signal and its order's intent, two new rows). With a held SQLite
        connection the transaction runs on the DBAPI connection itself (BEGIN IMMEDIATE, the inserts, COMMIT),
        without SQLAlchemy's transaction machinery: the same statements and bind processors, a third of the
        time on the live decision path (docs/benchmarks.md, live decision latency).
        """
        if self._transaction is not None:
            raise RuntimeError("insert_new() does not run inside Repository.transaction()")
        prepared = [(self._compiled_insert(row.table, row.key, row.values), row.values) for row in rows]
        if self._hold and not self._postgres:
            return self._insert_new_on_driver(prepared)
        try:
            with self.transaction():
                connection = self._transaction
                assert connection is not None
                for insert, values in prepared:
                    if insert.run(connection.connection, values) != 1:
                        raise _KeyStored
        except _KeyStored:
            return False
        return True

    def _insert_new_on_driver(self, prepared: list[tuple[_CompiledInsert, Mapping[str, Any]]]) -> bool:
        connection = self._held_connection()
        driver = connection.connection.driver_connection
        try:
            execute_on_sqlite_driver(driver, "BEGIN IMMEDIATE")
            for insert, values in prepared:
                if insert.run(driver, values) != 1:
                    execute_on_sqlite_driver(driver, "ROLLBACK")
                    return False
            execute_on_sqlite_driver(driver, "COMMIT")
            return True
        except BaseException:
            if driver.in_transaction:
                with suppress(Exception):
                    driver.execute("ROLLBACK")
            self._drop_held(connection)
            raise

    # --- orders -----------------------------------------------------------------------------------------------

    def intent_row(self, intent: OrderIntent, *, state: IntentState = IntentState.PENDING_SEND,
                   is_algo: bool | None = None, time: int | None = None) -> NewRow:
        """The orders row :meth:`save_order_intent` stores for a new intent."""
        now = self.clock.now_ms() if time is None else time
        return NewRow(ORDERS, ("client_order_id",), {
            **_ORDER_ROW_DEFAULTS,
            **to_columns(intent),
            "is_algo": intent.order_type.is_conditional if is_algo is None else is_algo,
            "intent_state": state.value,
            "intent_time": now,
            "intent_state_time": now,
        })

    def save_order_intent(
        self,
        intent: OrderIntent,
        *,
        state: IntentState = IntentState.PENDING_SEND,
        is_algo: bool | None = None,
        time: int | None = None,
    ) -> bool:
        """Store an order the bot is about to send; True if stored now, False if it was already there.

        An existing row is never touched (its progress stands). ``is_algo`` defaults to whether the order type
        is conditional (those go through Binance's algo-order service). A different order under the same
        client_order_id (other symbol or side) is a bug and raises ValueError.
        """
        values = self.intent_row(intent, state=state, is_algo=is_algo, time=time).values
        with self._write() as connection:
            if self._insert_if_absent(connection, ORDERS, ["client_order_id"], values):
                return True
            existing = self._select_order(connection, intent.client_order_id, for_update=False)
        if existing is None:  # the insert conflicted on client_order_id, so the row must be there
            raise RuntimeError(f"order {intent.client_order_id!r} conflicted on insert but cannot be read back")
        _check_same_order(existing, intent.client_order_id, intent.symbol, intent.side)
        return False

    def mark_intent(
        self,
        client_order_id: str,
        state: IntentState,
        *,
        reject_code: int | None = None,
        reject_message: str | None = None,
        time: int | None = None,
    ) -> bool:
        """Move an order's intent state forward (e.g. SENT, UNKNOWN, REJECTED); True if it changed.

        States only advance (PENDING_SEND < SENT < UNKNOWN < REJECTED/NOT_FOUND < ACKNOWLEDGED); a late or
        repeated call that would move it back or sideways changes nothing. Unknown client_order_id: KeyError.
        """
        with self._write() as connection:
            row = self._select_order(connection, client_order_id, for_update=True)
            if row is None:
                raise KeyError(f"no order with client_order_id {client_order_id!r} to mark {state}")
            current = IntentState(row.intent_state)
            if state.rank <= current.rank:
                return False
            when = self.clock.now_ms() if time is None else time
            values: dict[str, Any] = {"intent_state": state.value, "intent_state_time": when}
            if reject_code is not None:
                values["reject_code"] = reject_code
            if reject_message is not None:
                values["reject_message"] = reject_message
            connection.execute(update(ORDERS).where(ORDERS.c.id == row.id).values(values))
            return True

    def update_order(self, order: Order, *, is_algo: bool | None = None, actual_order_id: int | None = None) -> bool:
        """Merge the exchange's report of an order into its row (creating it if new); True if anything changed.

        Reports may arrive late or out of order, so: the status only moves forward (NEW < PARTIALLY_FILLED <
        final; a final status never changes), executed_quantity never decreases (cum_quote and avg_price move
        with it), and price/quantity/etc. are taken only from a report at least as new (``update_time``) as the
        last one applied. Any report marks the intent ACKNOWLEDGED. A report for the same client_order_id but
        another symbol, side or (non-algo) exchange order id raises ValueError.
        """
        with self._write() as connection:
            row = self._select_order(connection, order.client_order_id, for_update=True)
            if row is None:
                values = self._new_order_values(order, is_algo)
                if actual_order_id is not None:
                    values["actual_order_id"] = actual_order_id
                if self._insert_if_absent(connection, ORDERS, ["client_order_id"], values):
                    return True
                # Another writer inserted it between our select and our insert: merge into theirs.
                row = self._select_order(connection, order.client_order_id, for_update=True)
                if row is None:
                    raise RuntimeError(f"order {order.client_order_id!r} conflicted on insert but cannot be read back")
            changes = self._merge_order(row, order, is_algo)
            if actual_order_id is not None and row.actual_order_id is None:
                changes["actual_order_id"] = actual_order_id
            if not changes:
                return False
            connection.execute(update(ORDERS).where(ORDERS.c.id == row.id).values(changes))
            return True

    def _new_order_values(self, order: Order, is_algo: bool | None) -> dict[str, Any]:
        now = self.clock.now_ms()
        return {
            **_ORDER_ROW_DEFAULTS,
            **to_columns(order),
            "is_algo": order.order_type.is_conditional if is_algo is None else is_algo,
            "purpose": OrderPurpose.EXTERNAL.value,
            "intent_state": IntentState.ACKNOWLEDGED.value,
            "intent_time": now,
            "intent_state_time": now,
        }

    def _merge_order(self, row: Row[Any], order: Order, is_algo: bool | None) -> dict[str, Any]:
        _check_same_order(row, order.client_order_id, order.symbol, order.side)
        changes: dict[str, Any] = {}

        if row.order_id is None:
            changes["order_id"] = order.order_id
        elif row.order_id != order.order_id and row.is_algo:
            # A conditional order keeps its algoId; the order it places when triggered has its own orderId.
            if row.actual_order_id is None:
                changes["actual_order_id"] = order.order_id
        elif row.order_id != order.order_id:
            raise ValueError(
                f"order {order.client_order_id} ({order.symbol}) is stored with exchange order id {row.order_id} "
                f"but a report says {order.order_id}"
            )

        current_status = OrderStatus(row.status) if row.status is not None else None
        if current_status is None or order.status.rank > current_status.rank:
            changes["status"] = order.status.value

        if order.executed_quantity > row.executed_quantity or (
            order.executed_quantity == row.executed_quantity and row.avg_price == 0 and order.avg_price != 0
        ):
            changes["executed_quantity"] = order.executed_quantity
            changes["cum_quote"] = order.cum_quote
            changes["avg_price"] = order.avg_price

        if order.update_time >= row.update_time:
            changes.update(
                {
                    "order_type": order.order_type.value,
                    "position_side": order.position_side.value,
                    "time_in_force": order.time_in_force.value,
                    "working_type": order.working_type.value,
                    "quantity": order.quantity,
                    "price": order.price,
                    "stop_price": order.stop_price,
                    "reduce_only": order.reduce_only,
                    "close_position": order.close_position,
                    "update_time": order.update_time,
                }
            )
        if row.create_time == 0 and order.create_time:
            changes["create_time"] = order.create_time
        if is_algo is not None:
            changes["is_algo"] = is_algo
        changes = _changed(row, changes)

        if IntentState(row.intent_state) is not IntentState.ACKNOWLEDGED:
            changes["intent_state"] = IntentState.ACKNOWLEDGED.value
        if "intent_state" in changes:
            changes["intent_state_time"] = self.clock.now_ms()
        return changes

    def _select_order(self, connection: Connection, client_order_id: str, *, for_update: bool) -> Row[Any] | None:
        statement = select(ORDERS).where(ORDERS.c.client_order_id == client_order_id)
        if for_update:
            statement = statement.with_for_update()  # PostgreSQL row lock; SQLite already holds the write lock
        return connection.execute(statement).one_or_none()

    def get_order(self, client_order_id: str) -> OrderRecord | None:
        with self._read() as connection:
            row = self._select_order(connection, client_order_id, for_update=False)
        return _order_record(row) if row is not None else None

    def get_order_by_exchange_id(self, symbol: str, order_id: int) -> OrderRecord | None:
        statement = select(ORDERS).where(ORDERS.c.symbol == symbol, ORDERS.c.order_id == order_id)
        with self._read() as connection:
            row = connection.execute(statement).first()
        return _order_record(row) if row is not None else None

    def open_orders(self, symbol: str | None = None) -> list[OrderRecord]:
        """Orders working on the exchange (NEW, PARTIALLY_FILLED) and intents not yet resolved (possibly live).

        Oldest first (by the time the bot saved them).
        """
        statement = select(ORDERS).where(
            or_(
                ORDERS.c.status.in_(_OPEN_STATUSES),
                and_(ORDERS.c.status.is_(None), ORDERS.c.intent_state.in_(_UNRESOLVED_INTENT_STATES)),
            )
        )
        if symbol is not None:
            statement = statement.where(ORDERS.c.symbol == symbol)
        statement = statement.order_by(ORDERS.c.intent_time, ORDERS.c.id)
        with self._read() as connection:
            return [_order_record(row) for row in connection.execute(statement)]

    def all_orders(self, symbol: str | None = None) -> list[OrderRecord]:
        """Every stored order, oldest first (by the time the bot saved it)."""
        statement = select(ORDERS)
        if symbol is not None:
            statement = statement.where(ORDERS.c.symbol == symbol)
        statement = statement.order_by(ORDERS.c.intent_time, ORDERS.c.id)
        with self._read() as connection:
            return [_order_record(row) for row in connection.execute(statement)]

    def count_candles(self, symbol: str | None = None) -> int:
        statement = select(func.count()).select_from(CANDLES)
        if symbol is not None:
            statement = statement.where(CANDLES.c.symbol == symbol)
        with self._read() as connection:
            return int(connection.execute(statement).scalar_one())

    # --- fills --------------------------------------------------------------------------------------------------

    def record_fill(self, fill: Fill) -> bool:
        """Store a trade; True if new, False if (symbol, trade_id) was already stored (which is left as it is)."""
        values = to_columns(fill)
        with self._write() as connection:
            return self._insert_if_absent(connection, FILLS, ["symbol", "trade_id"], values)

    def record_fills(self, fills: Sequence[Fill]) -> None:
        """Store many trades in one statement (those already stored are left as they are)."""
        if not fills:
            return
        statement = self._insert(FILLS).on_conflict_do_nothing(index_elements=["symbol", "trade_id"])
        with self._write() as connection:
            connection.execute(statement, [to_columns(fill) for fill in fills])

    def fills_for_order(self, client_order_id: str) -> list[Fill]:
        """The trades of one order, in the order they happened."""
        statement = (
            select(FILLS)
            .where(FILLS.c.client_order_id == client_order_id)
            .order_by(FILLS.c.time, FILLS.c.symbol, FILLS.c.trade_id)
        )
        with self._read() as connection:
            return [_fill(row) for row in connection.execute(statement)]

    def all_fills(self, symbol: str | None = None, since_time: int | None = None) -> list[Fill]:
        """Every stored trade (optionally of one symbol, at or after ``since_time``), oldest first."""
        statement = select(FILLS)
        if symbol is not None:
            statement = statement.where(FILLS.c.symbol == symbol)
        if since_time is not None:
            statement = statement.where(FILLS.c.time >= since_time)
        statement = statement.order_by(FILLS.c.time, FILLS.c.symbol, FILLS.c.trade_id)
        with self._read() as connection:
            return [_fill(row) for row in connection.execute(statement)]

    # --- positions ----------------------------------------------------------------------------------------------

    def upsert_position(self, position: Position) -> bool:
        """Store the latest state of a position; True if anything changed.

        A report older (``update_time``) than the stored one is ignored; an equal or newer one replaces it.
        """
        values = to_columns(position)
        key = (POSITIONS.c.symbol == position.symbol, POSITIONS.c.position_side == position.position_side.value)
        with self._write() as connection:
            row = connection.execute(select(POSITIONS).where(*key).with_for_update()).one_or_none()
            if row is None:
                if self._insert_if_absent(connection, POSITIONS, ["symbol", "position_side"], values):
                    return True
                row = connection.execute(select(POSITIONS).where(*key).with_for_update()).one()
            if position.update_time < row.update_time:
                return False
            changes = _changed(row, values)
            if not changes:
                return False
            connection.execute(update(POSITIONS).where(*key).values(changes))
            return True

    def positions(self, symbol: str | None = None) -> list[Position]:
        """Every stored position (flat ones included), by symbol then position side."""
        statement = select(POSITIONS)
        if symbol is not None:
            statement = statement.where(POSITIONS.c.symbol == symbol)
        statement = statement.order_by(POSITIONS.c.symbol, POSITIONS.c.position_side)
        with self._read() as connection:
            return [_position(row) for row in connection.execute(statement)]

    # --- round trips --------------------------------------------------------------------------------------------

    def upsert_round_trip(self, trip: RoundTrip) -> bool:
        """Store a round trip's latest state (keyed by ``trip_id``); True if anything changed.

        A closed or abandoned trip is final: a later OPEN report for it changes nothing.
        """
        values = to_columns(trip)
        key = ROUND_TRIPS.c.trip_id == trip.trip_id
        with self._write() as connection:
            row = connection.execute(select(ROUND_TRIPS).where(key).with_for_update()).one_or_none()
            if row is None:
                if self._insert_if_absent(connection, ROUND_TRIPS, ["trip_id"], values):
                    return True
                row = connection.execute(select(ROUND_TRIPS).where(key).with_for_update()).one()
            if row.status != TripStatus.OPEN.value and trip.status is TripStatus.OPEN:
                return False
            changes = _changed(row, values)
            if not changes:
                return False
            connection.execute(update(ROUND_TRIPS).where(key).values(changes))
            return True

    def round_trips(
        self,
        *,
        status: TripStatus | None = None,
        strategy: str | None = None,
        symbol: str | None = None,
        since_time: int | None = None,
        limit: int | None = None,
    ) -> list[RoundTrip]:
        """Stored round trips, oldest opened first (with ``limit``: the newest ``limit`` of them)."""
        statement = select(ROUND_TRIPS)
        if status is not None:
            statement = statement.where(ROUND_TRIPS.c.status == status.value)
        if strategy is not None:
            statement = statement.where(ROUND_TRIPS.c.strategy == strategy)
        if symbol is not None:
            statement = statement.where(ROUND_TRIPS.c.symbol == symbol)
        if since_time is not None:
            statement = statement.where(ROUND_TRIPS.c.open_time >= since_time)
        if limit is not None:
            statement = statement.order_by(ROUND_TRIPS.c.open_time.desc(), ROUND_TRIPS.c.trip_id.desc()).limit(limit)
        else:
            statement = statement.order_by(ROUND_TRIPS.c.open_time, ROUND_TRIPS.c.trip_id)
        with self._read() as connection:
            trips = [_round_trip(row) for row in connection.execute(statement)]
        if limit is not None:
            trips.reverse()
        return trips

    # --- what the execution core is seeded with at start -----------------------------------------------------------

    def order_attribution(self) -> dict[str, tuple[str, OrderPurpose]]:
        """Every stored client order id with the strategy and purpose it was placed for."""
        statement = select(ORDERS.c.client_order_id, ORDERS.c.strategy, ORDERS.c.purpose)
        with self._read() as connection:
            return {row.client_order_id: (row.strategy, _purpose(row.purpose)) for row in connection.execute(statement)}

    def order_ids(self) -> dict[tuple[str, int], str]:
        """(symbol, exchange order id) -> client order id: every plain order stored, and every order a triggered
        conditional order placed (it carries the conditional order's client id)."""
        plain = select(ORDERS.c.symbol, ORDERS.c.order_id, ORDERS.c.client_order_id).where(
            ORDERS.c.order_id.is_not(None), ORDERS.c.is_algo.is_(False))
        triggered = select(ORDERS.c.symbol, ORDERS.c.actual_order_id, ORDERS.c.client_order_id).where(
            ORDERS.c.actual_order_id.is_not(None))
        with self._read() as connection:
            found = {(symbol, order_id): cid for symbol, order_id, cid in connection.execute(plain)}
            found.update({(symbol, order_id): cid for symbol, order_id, cid in connection.execute(triggered)})
        return found

    def first_order_times(self) -> dict[str, int]:
        """symbol -> the earliest time an order intent of ours on it was stored."""
        statement = select(ORDERS.c.symbol, func.min(ORDERS.c.intent_time)).group_by(ORDERS.c.symbol)
        with self._read() as connection:
            return {symbol: int(first) for symbol, first in connection.execute(statement) if first is not None}

    def fill_digests(self) -> tuple[dict[tuple[str, int], tuple[int, Side, Decimal, Decimal]], dict[str, int]]:
        """Every stored fill as (symbol, trade id) -> (order id, side, price, quantity), and the highest trade id
        stored per symbol."""
        digests: dict[tuple[str, int], tuple[int, Side, Decimal, Decimal]] = {}
        last: dict[str, int] = {}
        columns = (FILLS.c.symbol, FILLS.c.trade_id, FILLS.c.order_id, FILLS.c.side, FILLS.c.price, FILLS.c.quantity)
        with self._read() as connection:
            for symbol, trade_id, order_id, side, price, quantity in connection.execute(select(*columns)):
                digests[(symbol, trade_id)] = (order_id, Side(side), price, quantity)
                if trade_id > last.get(symbol, -1):
                    last[symbol] = trade_id
        return digests, last

    # --- signals ------------------------------------------------------------------------------------------------

    @staticmethod
    def signal_row(signal: Signal, outcome: SignalOutcome | None = None, detail: str = "",
                   client_order_ids: tuple[str, ...] = ()) -> NewRow:
        """The signals row :meth:`record_signal` stores for a new signal."""
        return NewRow(SIGNALS, _SIGNAL_KEY, {
            **to_columns(signal),
            "outcome": outcome.value if outcome is not None else None,
            "outcome_detail": detail or None,
            "client_order_ids": ",".join(client_order_ids) or None,
        })

    def record_signal(
        self,
        signal: Signal,
        outcome: SignalOutcome | None = None,
        detail: str = "",
        client_order_ids: tuple[str, ...] = (),
    ) -> bool:
        """Store a signal and what came of it; True if new, False if (strategy, symbol, time, side) was stored.

        A stored signal keeps its fields and its outcome, except an outcome still WAITING (a reversal whose entry
        waits for its exit), which the final one replaces: so a replayed signal (which finds its orders already sent,
        or its position already taken) never overwrites the record of what really happened.
        """
        values = self.signal_row(signal, outcome, detail, client_order_ids).values
        outcome_values = {name: values[name] for name in _SIGNAL_OUTCOME_COLUMNS}
        key = list(_SIGNAL_KEY)
        with self._write() as connection:
            if self._insert_if_absent(connection, SIGNALS, key, values):
                return True
            if outcome is None:
                return False
            where = [SIGNALS.c[name] == values[name] for name in key]
            row = connection.execute(select(SIGNALS).where(*where)).one()
            if row.outcome not in (None, SignalOutcome.WAITING.value):
                return False
            changes = _changed(row, outcome_values)
            if changes:
                connection.execute(update(SIGNALS).where(*where).values(changes))
            return False

    def signal_records(
        self, strategy: str | None = None, symbol: str | None = None, since_time: int | None = None
    ) -> list[SignalRecord]:
        """Stored signals with their outcomes, optionally filtered, oldest first."""
        statement = select(SIGNALS)
        if strategy is not None:
            statement = statement.where(SIGNALS.c.strategy == strategy)
        if symbol is not None:
            statement = statement.where(SIGNALS.c.symbol == symbol)
        if since_time is not None:
            statement = statement.where(SIGNALS.c.time >= since_time)
        statement = statement.order_by(SIGNALS.c.time, SIGNALS.c.id)
        with self._read() as connection:
            return [SignalRecord(_signal(row), SignalOutcome(row.outcome) if row.outcome else None,
                                 row.outcome_detail or "", tuple(filter(None, (row.client_order_ids or "").split(","))))
                    for row in connection.execute(statement)]

    # --- the simulated exchange's account (sim mode) ---------------------------------------------------------

    def save_sim_account(self, document: str, saved_at: int, name: str = "default") -> None:
        """Store the simulated exchange's snapshot (JSON text), replacing the previous one."""
        key = SIM_ACCOUNTS.c.name == name
        with self._write() as connection:
            if not self._insert_if_absent(connection, SIM_ACCOUNTS, ["name"],
                                          {"name": name, "saved_at": saved_at, "document": document}):
                connection.execute(update(SIM_ACCOUNTS).where(key).values(saved_at=saved_at, document=document))

    def load_sim_account(self, name: str = "default") -> tuple[str, int] | None:
        """The stored snapshot (JSON text) and when it was taken, or None."""
        with self._read() as connection:
            row = connection.execute(select(SIM_ACCOUNTS).where(SIM_ACCOUNTS.c.name == name)).one_or_none()
        return (row.document, row.saved_at) if row is not None else None

    def delete_sim_account(self, name: str = "default") -> bool:
        with self._write() as connection:
            result = connection.execute(SIM_ACCOUNTS.delete().where(SIM_ACCOUNTS.c.name == name))
            return bool(result.rowcount)

    def highest_exchange_ids(self) -> tuple[int, int]:
        """The highest exchange order id (algo ids included) and trade id stored: a new account starts above them."""
        with self._read() as connection:
            order_id = connection.execute(select(func.max(ORDERS.c.order_id))).scalar_one()
            actual = connection.execute(select(func.max(ORDERS.c.actual_order_id))).scalar_one()
            trade_id = connection.execute(select(func.max(FILLS.c.trade_id))).scalar_one()
        return max(order_id or 0, actual or 0), trade_id or 0

    def signals(
        self, strategy: str | None = None, symbol: str | None = None, since_time: int | None = None
    ) -> list[Signal]:
        """Stored signals, optionally filtered, oldest first (:meth:`signal_records` without the outcomes)."""
        return [record.signal for record in self.signal_records(strategy, symbol, since_time)]

    # --- candles ------------------------------------------------------------------------------------------------

    def record_candles(self, candles: Iterable[Candle]) -> int:
        """Store closed 1m candles in bulk, skipping any (symbol, open_time) already stored; returns how many were new.

        Only closed candles of interval 1m belong here: anything else raises ValueError before anything is
        written. All candles go in one transaction, in batches of one INSERT ... ON CONFLICT DO NOTHING each
        (an executemany on SQLite; on PostgreSQL one statement per batch that unnests one array per column).
        """
        rows = [_candle_storage_row(candle) for candle in candles]
        if not rows:
            return 0
        inserted = 0
        with self._write() as connection:
            for chunk in _chunks(rows, _CANDLE_BATCH_ROWS):
                if self._postgres:
                    arrays = tuple(
                        _postgres_array_literal(values, quoted)
                        for values, quoted in zip(zip(*chunk, strict=True), _CANDLE_TEXT_COLUMNS, strict=True)
                    )
                    result = connection.exec_driver_sql(_POSTGRES_CANDLE_INSERT, arrays)
                else:
                    result = connection.exec_driver_sql(_SQLITE_CANDLE_INSERT, chunk)
                inserted += result.rowcount
        return inserted

    def load_candles(self, symbol: str, limit: int, before_open_time: int | None = None) -> list[Candle]:
        """The latest ``limit`` stored candles of ``symbol`` opening before ``before_open_time``, oldest first."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if limit == 0:
            return []
        statement = select(CANDLES).where(CANDLES.c.symbol == symbol)
        if before_open_time is not None:
            statement = statement.where(CANDLES.c.open_time < before_open_time)
        statement = statement.order_by(CANDLES.c.open_time.desc()).limit(limit)
        with self._read() as connection:
            candles = [_candle(row) for row in connection.execute(statement)]
        candles.reverse()
        return candles

    # --- risk state ---------------------------------------------------------------------------------------------

    def get_risk_state(self, scope: str) -> RiskStateRecord | None:
        with self._read() as connection:
            row = connection.execute(select(RISK_STATE).where(RISK_STATE.c.scope == scope)).one_or_none()
        return _risk_state(row) if row is not None else None

    def set_risk_state(
        self,
        scope: str,
        state: TradingState,
        reason: str,
        *,
        consecutive_losses: int | None = None,
        details: Any | None = None,
    ) -> RiskStateRecord:
        """Set a scope's trading state; returns the stored record.

        ``consecutive_losses`` and ``details`` (any JSON value; Decimals are stored as strings) keep their
        stored values when None (0 and NULL for a new scope). If nothing differs, nothing is written and
        ``updated_at`` keeps marking the last real change.
        """
        values: dict[str, Any] = {"state": state.value, "reason": reason}
        if consecutive_losses is not None:
            values["consecutive_losses"] = consecutive_losses
        if details is not None:
            values["details"] = _plain_json(details)
        key = RISK_STATE.c.scope == scope
        with self._write() as connection:
            row = connection.execute(select(RISK_STATE).where(key).with_for_update()).one_or_none()
            if row is None:
                new_row = {
                    "scope": scope,
                    "consecutive_losses": 0,
                    "details": None,
                    **values,
                    "updated_at": self.clock.now_ms(),
                }
                if self._insert_if_absent(connection, RISK_STATE, ["scope"], new_row):
                    return _risk_state(connection.execute(select(RISK_STATE).where(key)).one())
                row = connection.execute(select(RISK_STATE).where(key).with_for_update()).one()
            changes = _changed(row, values)
            if changes:
                changes["updated_at"] = self.clock.now_ms()
                connection.execute(update(RISK_STATE).where(key).values(changes))
                row = connection.execute(select(RISK_STATE).where(key)).one()
            return _risk_state(row)

    # --- funding and account --------------------------------------------------------------------------------------

    def record_funding(self, symbol: str, time: int, amount: Decimal, asset: str = "USDT") -> bool:
        """Store a funding payment (negative: paid); True if new, False if (symbol, time) was already stored.

        ``amount`` is the symbol's total at that funding time (in hedge mode, both sides summed).
        """
        values = {"symbol": symbol, "time": time, "amount": amount, "asset": asset}
        with self._write() as connection:
            return self._insert_if_absent(connection, FUNDING_PAYMENTS, ["symbol", "time"], values)

    def funding_payments(self, symbol: str | None = None, since_time: int | None = None) -> list[FundingPaymentRecord]:
        statement = select(FUNDING_PAYMENTS)
        if symbol is not None:
            statement = statement.where(FUNDING_PAYMENTS.c.symbol == symbol)
        if since_time is not None:
            statement = statement.where(FUNDING_PAYMENTS.c.time >= since_time)
        statement = statement.order_by(FUNDING_PAYMENTS.c.time, FUNDING_PAYMENTS.c.symbol)
        with self._read() as connection:
            return [
                FundingPaymentRecord(symbol=row.symbol, time=row.time, amount=row.amount, asset=row.asset)
                for row in connection.execute(statement)
            ]

    def record_account_snapshot(
        self,
        time: int,
        *,
        wallet_balance: Decimal,
        available_balance: Decimal,
        equity: Decimal,
        unrealized_pnl: Decimal,
        asset: str = "USDT",
    ) -> bool:
        """Store the account's balance for ``asset`` at ``time``; True if new, False if already stored."""
        values = {
            "asset": asset,
            "time": time,
            "wallet_balance": wallet_balance,
            "available_balance": available_balance,
            "equity": equity,
            "unrealized_pnl": unrealized_pnl,
        }
        with self._write() as connection:
            return self._insert_if_absent(connection, ACCOUNT_SNAPSHOTS, ["asset", "time"], values)

    def account_snapshots(self, asset: str = "USDT", since_time: int | None = None) -> list[AccountSnapshotRecord]:
        statement = select(ACCOUNT_SNAPSHOTS).where(ACCOUNT_SNAPSHOTS.c.asset == asset)
        if since_time is not None:
            statement = statement.where(ACCOUNT_SNAPSHOTS.c.time >= since_time)
        statement = statement.order_by(ACCOUNT_SNAPSHOTS.c.time)
        with self._read() as connection:
            return [_account_snapshot(row) for row in connection.execute(statement)]

    def latest_account_snapshot(self, asset: str = "USDT") -> AccountSnapshotRecord | None:
        statement = (
            select(ACCOUNT_SNAPSHOTS)
            .where(ACCOUNT_SNAPSHOTS.c.asset == asset)
            .order_by(ACCOUNT_SNAPSHOTS.c.time.desc())
            .limit(1)
        )
        with self._read() as connection:
            row = connection.execute(statement).one_or_none()
        return _account_snapshot(row) if row is not None else None


# --- rows to domain objects -----------------------------------------------------------------------------------


class NewRow(NamedTuple):
    """A row for :meth:`Repository.insert_new`: its table, the columns of its unique key, its column values."""

    table: Table
    key: tuple[str, ...]
    values: dict[str, Any]


class _KeyStored(Exception):
    """One of the rows given to insert_new is already stored."""


class _CompiledInsert:
    """One INSERT compiled for a dialect: its SQL text, the order of its parameters and their bind processors."""

    __slots__ = ("sql", "names", "processors", "positional", "dbapi_error")

    def __init__(self, sql: str, names: tuple[str, ...], processors: tuple[Callable[[Any], Any] | None, ...],
                 positional: bool, dbapi_error: type[Exception]) -> None:
        self.sql = sql
        self.names = names
        self.processors = processors
        self.positional = positional
        self.dbapi_error = dbapi_error

    @classmethod
    def build(cls, statement: Any, table: Table, columns: tuple[str, ...], dialect: Dialect) -> _CompiledInsert:
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        positional = bool(compiled.positional)
        names = tuple(compiled.positiontup) if positional else columns
        if set(names) != set(columns):
            raise RuntimeError(f"{table.name}: the compiled insert binds {names}, not the columns {columns}")
        processors = tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
        return cls(compiled.string, names, processors, positional, dialect.loaded_dbapi.Error)

    def run(self, connection: Any, values: Mapping[str, Any]) -> int:
        """Execute on a cursor of the DBAPI ``connection`` (inside its transaction); the row count."""
        try:
            bound = [value if process is None else process(value)
                     for process, value in zip(self.processors, map(values.__getitem__, self.names), strict=True)]
        except (TypeError, ValueError) as error:
            raise StatementError(str(error), self.sql, dict(values), error) from error
        parameters: Any = tuple(bound) if self.positional else dict(zip(self.names, bound, strict=True))
        cursor = connection.cursor()
        try:
            cursor.execute(self.sql, parameters)
            return int(cursor.rowcount)
        except self.dbapi_error as error:
            raise DBAPIError.instance(self.sql, parameters, error, self.dbapi_error) from error
        finally:
            cursor.close()


def _check_same_order(row: Row[Any], client_order_id: str, symbol: str, side: Side) -> None:
    if row.symbol != symbol or row.side != side.value:
        raise ValueError(
            f"client_order_id {client_order_id!r} is already stored for {row.side} {row.symbol}, "
            f"not {side.value} {symbol}"
        )


def _purpose(value: str) -> OrderPurpose:
    return OrderPurpose(value) if value else OrderPurpose.EXTERNAL


def _order_record(row: Row[Any]) -> OrderRecord:
    return row_to(OrderRecord, row, {"purpose": _purpose})


def _fill(row: Row[Any]) -> Fill:
    return row_to(Fill, row)


def _position(row: Row[Any]) -> Position:
    return row_to(Position, row)


def _signal(row: Row[Any]) -> Signal:
    return row_to(Signal, row)


def _round_trip(row: Row[Any]) -> RoundTrip:
    return row_to(RoundTrip, row)


def _candle_storage_row(candle: Candle) -> tuple[str | int, ...]:
    """A candle as the values its row holds, in column order, Decimals already as their canonical text."""
    if candle.interval != CANDLE_INTERVAL or not candle.closed:
        raise ValueError(
            f"only closed {CANDLE_INTERVAL} candles are stored; got {candle.symbol} open_time={candle.open_time} "
            f"interval={candle.interval} closed={candle.closed}"
        )
    return (
        candle.symbol,
        _integer(candle.open_time, "open_time"),
        _integer(candle.close_time, "close_time"),
        decimal_to_text(candle.open),
        decimal_to_text(candle.high),
        decimal_to_text(candle.low),
        decimal_to_text(candle.close),
        decimal_to_text(candle.volume),
        decimal_to_text(candle.quote_volume),
        _integer(candle.trades, "trades"),
        decimal_to_text(candle.taker_buy_volume),
        decimal_to_text(candle.taker_buy_quote_volume),
    )


def _integer(value: object, name: str) -> int:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return value


def _postgres_array_literal(values: tuple[str | int, ...], quoted: bool) -> str:
    """A PostgreSQL array literal of one column's values: text quoted and escaped, numbers as they are."""
    if quoted:
        return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"
    return "{" + ",".join(map(str, values)) + "}"


def _candle(row: Row[Any]) -> Candle:
    return row_to(Candle, row, {"interval": lambda _: CANDLE_INTERVAL, "closed": lambda _: True})


def _risk_state(row: Row[Any]) -> RiskStateRecord:
    return row_to(RiskStateRecord, row)


def _account_snapshot(row: Row[Any]) -> AccountSnapshotRecord:
    return row_to(AccountSnapshotRecord, row)
