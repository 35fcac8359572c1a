"""The appliers: carry out the execution core's commands against a journal and an exchange gateway.

Two shells share everything here but their loop:
* :class:`SyncApplier` (sim mode, backtests, tests): the in-process simulator answers at once, so each command's
  result goes straight back into the core before the next input; no event loop is needed.
* :class:`AsyncApplier` (live): inputs are handled one at a time in arrival order (at once when nothing else is
  waiting, else through one queue consumed by one task), so the core is never entered concurrently; each batch's
  exchange requests run, in order, in a task of their own, and their results come back as inputs.

For every batch of commands the core returns, the persist commands are written first, in one journal
transaction, and only then do the exchange commands leave ("persist before send"). Exceptions of the gateway
become result inputs (:func:`execute`), so the core sees outcomes, never exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from functools import partial
from typing import Any, Protocol

from executor.commands import (
    EXCHANGE_TYPES,
    PERSIST_TYPES,
    CancelOrder,
    CancelResult,
    Command,
    ExchangeCommand,
    ExchangeSnapshot,
    Input,
    Level,
    LookUpOrder,
    LookupResult,
    Notice,
    Outcome,
    PersistCommand,
    PersistIntent,
    PositionsResult,
    ReadPositions,
    Reconcile,
    ReconcileSnapshot,
    SignalInput,
    SubmitAlgoOrder,
    SubmitOrder,
    SubmitResult,
    Tick,
    UserEventInput,
)
from executor.core import AUTH_ERRORS, ORDER_NOT_FOUND, UNKNOWN_ORDER, ExecutionCore
from executor.gateway import ExchangeGateway, fills_since
from runtime import chaos
from utils.binance_parse import OrderUpdate, UserEvent
from utils.domain import Fill
from utils.errors import BinanceError, OutcomeUnknownError

#: Retrying a journal write the database refused: first after this many seconds, doubling up to the maximum.
DATABASE_RETRY_FIRST_SEC = 0.5
#: Reads a reconciliation snapshot has in flight at once.
SNAPSHOT_CONCURRENCY = 8
DATABASE_RETRY_MAX_SEC = 10.0

log = logging.getLogger("runtime.applier")

class Journal(Protocol):
    """Where persist commands go: durably, all of one batch together, before the batch's requests leave."""

    def apply(self, commands: Sequence[PersistCommand]) -> None: ...


class MemoryJournal:
    """A journal that keeps the commands in memory (backtests write their results once, at the end)."""

    def __init__(self) -> None:
        self.commands: list[PersistCommand] = []

    def apply(self, commands: Sequence[PersistCommand]) -> None:
        self.commands.extend(commands)


def log_notice(notice: Notice) -> None:
    level = {Level.INFO: logging.INFO, Level.WARNING: logging.WARNING, Level.ERROR: logging.ERROR}[notice.level]
    log.log(level, notice.event, extra=notice.fields)


# ================================================================================================ execution
def _error_fields(exc: BinanceError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.msg}


async def execute(command: ExchangeCommand, gateway: ExchangeGateway, now: Callable[[], int], *,
                  fresh_account: bool = False, concurrent: bool = False) -> Input:
    """Run one exchange command; its outcome (never an exception) as the result input for the core."""
    if isinstance(command, (SubmitOrder, SubmitAlgoOrder)):
        cid = command.intent.client_order_id
        try:
            if isinstance(command, SubmitAlgoOrder):
                algo = await gateway.place_algo_order(command.intent)
                return SubmitResult(cid, Outcome.ACCEPTED, now(), algo=algo)
            order = await gateway.place_order(command.intent)
            return SubmitResult(cid, Outcome.ACCEPTED, now(), order=order)
        except BinanceError as exc:
            outcome = Outcome.UNKNOWN if exc.outcome_unknown else Outcome.REJECTED
            return SubmitResult(cid, outcome, now(), **_error_fields(exc), retry_after_ms=exc.retry_after_ms)
        except OutcomeUnknownError as exc:
            return SubmitResult(cid, Outcome.UNKNOWN, now(), message=str(exc))
    if isinstance(command, CancelOrder):
        cid = command.client_order_id
        try:
            if command.is_algo:
                return CancelResult(cid, Outcome.ACCEPTED, now(), algo=await gateway.cancel_algo_order(cid))
            return CancelResult(cid, Outcome.ACCEPTED, now(), order=await gateway.cancel_order(command.symbol, cid))
        except BinanceError as exc:
            if exc.code in (UNKNOWN_ORDER, ORDER_NOT_FOUND):
                return CancelResult(cid, Outcome.NOT_FOUND, now(), **_error_fields(exc))
            outcome = Outcome.UNKNOWN if exc.outcome_unknown else Outcome.REJECTED
            return CancelResult(cid, outcome, now(), **_error_fields(exc))
        except OutcomeUnknownError as exc:
            return CancelResult(cid, Outcome.UNKNOWN, now(), message=str(exc))
    if isinstance(command, LookUpOrder):
        return await _look_up(command, gateway, now)
    if isinstance(command, ReadPositions):
        try:
            positions = await gateway.positions(command.symbol)
            return PositionsResult(command.symbol, now(), tuple(p for p in positions if p.symbol == command.symbol))
        except (BinanceError, OutcomeUnknownError) as exc:
            return PositionsResult(command.symbol, now(), ok=False, message=str(exc))
    if isinstance(command, Reconcile):
        try:
            snapshot = await fetch_snapshot(command, gateway, now, fresh_account=fresh_account,
                                            concurrent=concurrent)
            return ReconcileSnapshot(command.reason, now(), snapshot)
        except BinanceError as exc:
            return ReconcileSnapshot(command.reason, now(), None, error=str(exc), retryable=exc.code not in AUTH_ERRORS)
        except OutcomeUnknownError as exc:
            return ReconcileSnapshot(command.reason, now(), None, error=str(exc), retryable=True)
    raise TypeError(f"not an exchange command: {type(command).__name__}")


async def _look_up(command: LookUpOrder, gateway: ExchangeGateway, now: Callable[[], int]) -> LookupResult:
    cid = command.client_order_id
    try:
        if command.is_algo:
            return LookupResult(cid, Outcome.ACCEPTED, now(), algo=await gateway.query_algo_order(cid))
        return LookupResult(cid, Outcome.ACCEPTED, now(), order=await gateway.query_order(command.symbol, cid))
    except BinanceError as exc:
        if exc.code == ORDER_NOT_FOUND:
            return LookupResult(cid, Outcome.NOT_FOUND, now(), **_error_fields(exc))
        outcome = Outcome.UNKNOWN if exc.outcome_unknown else Outcome.REJECTED
        return LookupResult(cid, outcome, now(), **_error_fields(exc))
    except OutcomeUnknownError as exc:
        return LookupResult(cid, Outcome.UNKNOWN, now(), message=str(exc))


async def fetch_snapshot(command: Reconcile, gateway: ExchangeGateway, now: Callable[[], int], *,
                         fresh_account: bool = False, concurrent: bool = False) -> ExchangeSnapshot:
    """Everything reconciliation compares, read from the exchange (errors propagate: no partial snapshot).

    With ``concurrent`` (the asynchronous applier), the reads go out together, at most
    :data:`SNAPSHOT_CONCURRENCY` at a time (a restart with 50 live orders looks them up in a few round trips, not
    50); without, one after the other (the synchronous applier drives coroutines without an event loop). Either
    way the snapshot keeps the core's order of symbols and lookups.
    """

    async def symbol_fills(symbol: str, last_trade_id: int | None, since: int | None) -> list[Fill]:
        if last_trade_id is None and since is None:
            return []
        return await fills_since(gateway.user_trades, symbol,
                                 from_id=None if last_trade_id is None else last_trade_id + 1,
                                 start_time=since if last_trade_id is None else None, now=now())

    # Factories, not coroutines: a read that fails first leaves no coroutine behind that was never awaited.
    reads: list[Callable[[], Coroutine[Any, Any, Any]]] = [
        gateway.open_orders, gateway.open_algo_orders, gateway.positions, gateway.account]
    fill_reads = [partial(symbol_fills, *entry) for entry in command.fills_from]
    lookup_reads = [partial(_look_up, LookUpOrder(symbol, cid, is_algo), gateway, now)
                    for symbol, cid, is_algo in command.lookups]
    everything = [*reads, *fill_reads, *lookup_reads]
    if concurrent:
        limit = asyncio.Semaphore(SNAPSHOT_CONCURRENCY)

        async def bounded(read: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
            async with limit:
                return await read()

        tasks = [asyncio.ensure_future(bounded(read)) for read in everything]
        try:
            answers = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    else:
        answers = [await read() for read in everything]
    open_orders, open_algo_orders, positions, account = answers[:4]
    fills = [fill for rows in answers[4:4 + len(fill_reads)] for fill in rows]
    lookups = answers[4 + len(fill_reads):]
    return ExchangeSnapshot(
        time=now(), open_orders=tuple(open_orders), open_algo_orders=tuple(open_algo_orders),
        positions=tuple(positions), wallet_balance=account.wallet_balance, fills=tuple(fills),
        lookups=tuple(lookups), fresh_account=fresh_account)


def run_sync[Result](coroutine: Coroutine[Any, Any, Result]) -> Result:
    """Run a coroutine that never suspends (an in-process gateway's), without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("the gateway suspended: the synchronous applier needs one that answers at once")


def _split(commands: Iterable[Command]) -> tuple[list[PersistCommand], list[ExchangeCommand], list[Notice]]:
    persists: list[PersistCommand] = []
    requests: list[ExchangeCommand] = []
    notices: list[Notice] = []
    for command in commands:
        if isinstance(command, PERSIST_TYPES):
            persists.append(command)
        elif isinstance(command, EXCHANGE_TYPES):
            requests.append(command)
        else:
            notices.append(command)
    return persists, requests, notices


# ============================================================================================ synchronous
class SyncApplier:
    """Feeds inputs to the core and carries out its commands at once against a gateway that never suspends.

    ``user_events`` returns the exchange's user-data events produced since the last call; after each command they
    are handed to ``on_user_events`` (e.g. published on the bus) or, by default, fed to the core right away.
    ``on_command`` sees every command after it was carried out (for publishing what the core did).
    """

    def __init__(self, core: ExecutionCore, gateway: ExchangeGateway, journal: Journal, *,
                 now: Callable[[], int], user_events: Callable[[], list[UserEvent]] | None = None,
                 on_user_events: Callable[[list[UserEvent]], None] | None = None,
                 on_command: Callable[[Command], None] | None = None,
                 on_notice: Callable[[Notice], None] = log_notice, fresh_account: bool = False) -> None:
        self.core = core
        self.gateway = gateway
        self.journal = journal
        self.now = now
        self.user_events = user_events
        self.on_user_events = on_user_events
        self.on_command = on_command
        self.on_notice = on_notice
        self.fresh_account = fresh_account
        self._queue: deque[Input] = deque()
        self._feeding = False

    def feed(self, item: Input) -> None:
        """Process ``item`` and everything it leads to (results, user events) until nothing is left."""
        self._queue.append(item)
        if self._feeding:
            return  # called from a callback: the running loop picks it up
        self._feeding = True
        try:
            while self._queue:
                self._apply(self.core.handle(self._queue.popleft()))
        finally:
            self._feeding = False

    def start(self) -> None:
        """Reconcile with the exchange before trading (the core's first input)."""
        self._feeding = True
        try:
            self._apply(self.core.start(self.now()))
            while self._queue:
                self._apply(self.core.handle(self._queue.popleft()))
        finally:
            self._feeding = False

    def deliver_user_events(self) -> int:
        """Hand over the exchange's pending user-data events (after it matched a candle, say)."""
        if self.user_events is None:
            return 0
        events = self.user_events()
        if not events:
            return 0
        if self.on_user_events is not None:
            self.on_user_events(events)
        else:
            for event in events:
                self.feed(UserEventInput(event, self.now()))
        return len(events)

    def tick_until(self, until: int, set_time: Callable[[int], None] | None = None) -> None:
        """Let the core's timers that fall due up to ``until`` fire, in time order (moving the clock to each)."""
        while (due := self.core.next_wakeup()) is not None and due <= until:
            if set_time is not None and due > self.now():
                set_time(due)
            self.feed(Tick(max(due, self.now())))

    def _apply(self, commands: list[Command]) -> None:
        persists, requests, notices = _split(commands)
        if persists:
            self.journal.apply(persists)
        for notice in notices:
            self.on_notice(notice)
        for request in requests:
            result = run_sync(execute(request, self.gateway, self.now, fresh_account=self.fresh_account))
            if isinstance(request, Reconcile):
                self.fresh_account = False  # only the start-up reconciliation can meet a fresh account
            if self.on_command is not None:
                self.on_command(request)
            self._queue.append(result)
            self._after_request()
        if self.on_command is not None:
            for command in persists:
                self.on_command(command)

    def _after_request(self) -> None:
        if self.user_events is None:
            return
        events = self.user_events()
        if not events:
            return
        if self.on_user_events is not None:
            self.on_user_events(events)
        else:
            now = self.now()
            self._queue.extend(UserEventInput(event, now) for event in events)


# ================================================================================================== async
_HELD = object()  # queued to wake the consumer: a batch handled inline could not be written


class AsyncApplier:
    """The core's inputs one at a time, in arrival order; each batch's requests run concurrently as a task.

    An input submitted while nothing else is queued or being handled is handled at once, in the caller's stack
    (the live decision path: the candle's frame, the strategies, the signal, the core, the journal and the signed
    request all in one call, no event-loop hop: docs/benchmarks.md, live decision latency). Anything submitted
    meanwhile (a request's answer, a user event, a timer) waits in the queue for the consumer task, so the core is
    never entered twice at once. A request task starts eagerly: it runs up to its first real wait (the request on
    the wire) before ``submit`` returns.
    """

    def __init__(self, core: ExecutionCore, gateway: ExchangeGateway, journal: Journal, *,
                 now: Callable[[], int], on_command: Callable[[Command], None] | None = None,
                 on_notice: Callable[[Notice], None] = log_notice, inline: bool = True) -> None:
        self.core = core
        self.gateway = gateway
        self.journal = journal
        self.now = now
        self.on_command = on_command
        self.on_notice = on_notice
        self.inline = inline
        self.inputs: asyncio.Queue[Any] = asyncio.Queue()
        self._requests: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._consumer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: int | None = None
        self._pending = 0  # inputs queued or being handled
        self._handling = False  # an input is being handled (inline, or by the consumer across its awaits)
        self._held: list[Command] | None = None  # a batch handled inline whose journal write failed
        self.handled_inline = 0
        self.error: BaseException | None = None
        #: Why the last journal write failed, while it is being retried (``None``: the database is fine).
        self.database_error: str | None = None
        self.database_down_since: float | None = None  # monotonic
        self.database_outages = 0
        self.signals_dropped = 0

    def submit(self, item: Input) -> None:
        """Hand an input to the core (from any task of the loop): at once if nothing else is queued or being
        handled, else queued behind what is.

        While the database is unavailable, new signals are dropped (logged): the bot does not open positions on
        state it cannot persist. Everything else (answers, user events, candles, timers) waits its turn.
        """
        if self.database_error is not None and isinstance(item, SignalInput):
            self.signals_dropped += 1
            log.warning("signal dropped: the database is unavailable", extra={
                "strategy": item.signal.strategy, "symbol": item.signal.symbol, "side": item.signal.side.value})
            return
        self._pending += 1
        self._idle.clear()
        if (self.inline and not self._handling and self._held is None and self._consumer is not None
                and self.inputs.empty()):
            self._handle_inline(item)
        else:
            self.inputs.put_nowait(item)

    async def start(self) -> None:
        """Run the consumer and hand the core its start-up input (reconciliation before trading)."""
        self._consumer = asyncio.create_task(self._consume(), name="execution-core")
        self._idle.clear()
        self._handling = True
        try:
            self._apply_batch(self.core.start(self.now()))
            await self._write_held()
        finally:
            self._handling = False
        self._check_idle()

    @property
    def busy(self) -> bool:
        """An input is queued or being handled, or a request is in flight."""
        return self._pending > 0 or bool(self._requests)

    async def idle(self) -> None:
        """Wait until no input is queued, none is being handled and no request is in flight."""
        while True:
            await self._idle.wait()
            await asyncio.sleep(0)
            if self._idle.is_set():
                if self.error is not None:
                    raise self.error
                return

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._requests):
            task.cancel()
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer

    def _handle_inline(self, item: Input) -> None:
        self._handling = True
        self.handled_inline += 1
        try:
            self._handle(item)
        finally:
            self._handling = False
            if self._held is not None:
                self.inputs.put_nowait(_HELD)  # the queue was empty: the consumer writes it before anything else
            else:
                self._pending -= 1  # a held batch stays pending until the consumer has written it
            self._check_idle()

    async def _consume(self) -> None:
        while True:
            item = await self.inputs.get()
            self._handling = True
            try:
                if item is not _HELD:
                    self._handle(item)
                await self._write_held()
            except Exception as exc:
                self.error = exc
                log.exception("execution core input failed; its commands were not carried out")
            finally:
                self._handling = False
                self._pending -= 1
                self._check_idle()

    def _handle(self, item: Input) -> None:
        """The core's answer to one input, carried out at once (or held: see :meth:`_apply_batch`)."""
        try:
            if chaos.switch is not None:
                _chaos_before(item)
            self._apply_batch(self.core.handle(item))
        except Exception as exc:
            self.error = exc
            log.exception("execution core input failed; its commands were not carried out")

    def _apply_batch(self, commands: list[Command]) -> None:
        """Write the batch, then send its requests; a batch the database refuses is held (nothing of it sent)
        for :meth:`_write_held`, which the consumer runs before anything else."""
        persists, requests, notices = _split(commands)
        if persists:
            try:
                self.journal.apply(persists)
            except Exception as exc:  # noqa: BLE001 - any failure of the database: held and tried again
                self._database_failed(exc)
                self._held = commands
                return
            self._database_ok()
        self._dispatch(persists, requests, notices)

    async def _write_held(self) -> None:
        """Write the held batch (0.5 s after it failed, doubling to 10 s), then carry it out; everything after it
        waits: none of its requests leaves before its intents are stored."""
        if self._held is None:
            return
        persists, requests, notices = _split(self._held)
        delay = DATABASE_RETRY_FIRST_SEC
        while True:
            await asyncio.sleep(delay)
            try:
                self.journal.apply(persists)
            except Exception as exc:  # noqa: BLE001 - any failure of the database: wait and try again
                self._database_failed(exc)
                delay = min(delay * 2, DATABASE_RETRY_MAX_SEC)
                continue
            break
        self._held = None
        self._database_ok()
        self._dispatch(persists, requests, notices)

    def _dispatch(self, persists: list[PersistCommand], requests: list[ExchangeCommand],
                  notices: list[Notice]) -> None:
        """After the batch is written: its notices, then its requests (one task, the core's order)."""
        for notice in notices:
            self.on_notice(notice)
        if requests:
            if chaos.switch is not None and any(isinstance(c, PersistIntent) for c in persists):
                chaos.kill_point("intent_persisted")
            # One task per batch, its requests in the core's order (an exit before the orders that follow it);
            # batches run concurrently, and the core keeps taking inputs meanwhile. Started eagerly: signed and
            # sent before this returns, not one loop iteration later.
            task = asyncio.Task(self._requests_in_order(requests), loop=asyncio.get_running_loop(),
                                name="requests", eager_start=True)
            self._requests.add(task)
            task.add_done_callback(self._request_done)
        if self.on_command is not None:
            for command in (*persists, *requests):
                self.on_command(command)
        self._arm_timer()

    def _database_failed(self, exc: Exception) -> None:
        if self.database_error is None:
            self.database_outages += 1
            self.database_down_since = time.monotonic()
            log.error("database unavailable: the batch is held (nothing of it is sent) and new signals "
                      "are dropped until it is written", extra={"error": f"{type(exc).__name__}: {exc}"})
        self.database_error = f"{type(exc).__name__}: {exc}"

    def _database_ok(self) -> None:
        if self.database_error is not None:
            down = time.monotonic() - (self.database_down_since or time.monotonic())
            log.warning("database available again; the held batch is written and trading goes on",
                        extra={"down_sec": round(down, 1), "signals_dropped": self.signals_dropped})
            self.database_error = None
            self.database_down_since = None

    def database_status(self) -> dict[str, Any]:
        """For the heartbeat: is the database taking the core's writes?"""
        if self.database_error is None:
            return {"state": "ok", "outages": self.database_outages, "signals_dropped": self.signals_dropped}
        return {"state": "unavailable", "error": self.database_error, "outages": self.database_outages,
                "down_sec": round(time.monotonic() - (self.database_down_since or time.monotonic()), 1),
                "signals_dropped": self.signals_dropped}

    async def _requests_in_order(self, commands: list[ExchangeCommand]) -> None:
        for command in commands:
            result = await execute(command, self.gateway, self.now, concurrent=True)
            chaos.kill_point("request_answered")
            self.submit(result)

    def _request_done(self, task: asyncio.Task[None]) -> None:
        self._requests.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.error = task.exception()
        self._check_idle()

    def _check_idle(self) -> None:
        if self._pending == 0 and not self._requests:
            self._idle.set()

    def _arm_timer(self) -> None:
        due = self.core.next_wakeup()
        if due == self._timer_due:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_due = due
        if due is None:
            return
        delay = max(0.0, (due - self.now()) / 1000)
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire_timer, due)

    def _fire_timer(self, due: int) -> None:
        self._timer = None
        self._timer_due = None
        self.submit(Tick(max(due, self.now())))


def _chaos_before(item: Input) -> None:
    if isinstance(item, UserEventInput) and isinstance(item.event, OrderUpdate) and item.event.fill is not None:
        chaos.kill_point("fill_received")
    elif isinstance(item, ReconcileSnapshot) and item.snapshot is not None:
        chaos.kill_point("reconcile_read")
