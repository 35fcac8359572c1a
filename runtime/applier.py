"""The appliers: carry out the execution core's commands against a journal and an exchange gateway.

Two shells share everything here but their loop:
* :class:`SyncApplier` (sim mode, backtests, tests): the in-process simulator answers at once, so each command's
  result goes straight back into the core before the next input; no event loop is needed.
* :class:`AsyncApplier` (live): every input passes through one queue consumed by one task, so the core is never
  entered concurrently; each batch's exchange requests run, in order, in a task of their own, and their results
  come back through the queue.

For every batch of commands the core returns, the persist commands are written first, in one journal
transaction, and only then do the exchange commands leave ("persist before send"). Exceptions of the gateway
become result inputs (:func:`execute`), so the core sees outcomes, never exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
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
    PositionsResult,
    ReadPositions,
    Reconcile,
    ReconcileSnapshot,
    SubmitAlgoOrder,
    SubmitOrder,
    SubmitResult,
    Tick,
    UserEventInput,
)
from executor.core import AUTH_ERRORS, ORDER_NOT_FOUND, UNKNOWN_ORDER, ExecutionCore
from executor.gateway import ExchangeGateway, fills_since
from utils.binance_parse import UserEvent
from utils.errors import BinanceError, OutcomeUnknownError

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
                  fresh_account: bool = False) -> Input:
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
            snapshot = await fetch_snapshot(command, gateway, now, fresh_account=fresh_account)
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
                         fresh_account: bool = False) -> ExchangeSnapshot:
    """Everything reconciliation compares, read from the exchange (errors propagate: no partial snapshot)."""
    open_orders = await gateway.open_orders()
    open_algo_orders = await gateway.open_algo_orders()
    positions = await gateway.positions()
    account = await gateway.account()
    fills = []
    for symbol, last_trade_id, since in command.fills_from:
        if last_trade_id is None and since is None:
            continue
        fills.extend(await fills_since(gateway.user_trades, symbol,
                                       from_id=None if last_trade_id is None else last_trade_id + 1,
                                       start_time=since if last_trade_id is None else None, now=now()))
    lookups = [await _look_up(LookUpOrder(symbol, cid, is_algo), gateway, now)
               for symbol, cid, is_algo in command.lookups]
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
class AsyncApplier:
    """One queue, one consumer task: the core's inputs in arrival order; requests run concurrently as tasks."""

    def __init__(self, core: ExecutionCore, gateway: ExchangeGateway, journal: Journal, *,
                 now: Callable[[], int], on_command: Callable[[Command], None] | None = None,
                 on_notice: Callable[[Notice], None] = log_notice) -> None:
        self.core = core
        self.gateway = gateway
        self.journal = journal
        self.now = now
        self.on_command = on_command
        self.on_notice = on_notice
        self.inputs: asyncio.Queue[Input] = asyncio.Queue()
        self._requests: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._consumer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: int | None = None
        self._pending = 0  # inputs queued or being handled
        self.error: BaseException | None = None

    def submit(self, item: Input) -> None:
        """Queue an input for the core (from any task of the loop)."""
        self._pending += 1
        self._idle.clear()
        self.inputs.put_nowait(item)

    async def start(self) -> None:
        """Run the consumer and hand the core its start-up input (reconciliation before trading)."""
        self._consumer = asyncio.create_task(self._consume(), name="execution-core")
        self._idle.clear()
        await self._carry_out(self.core.start(self.now()))
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

    async def _consume(self) -> None:
        while True:
            item = await self.inputs.get()
            try:
                await self._carry_out(self.core.handle(item))
            except Exception as exc:  # a journal failure: nothing of this batch was sent
                self.error = exc
                log.exception("execution core input failed; its commands were not carried out")
            finally:
                self._pending -= 1
                self._check_idle()

    async def _carry_out(self, commands: list[Command]) -> None:
        persists, requests, notices = _split(commands)
        if persists:
            self.journal.apply(persists)
        for notice in notices:
            self.on_notice(notice)
        if requests:
            # One task per batch, its requests in the core's order (an exit before the orders that follow it);
            # batches run concurrently, and the core keeps taking inputs meanwhile.
            task = asyncio.create_task(self._requests_in_order(requests), name="requests")
            self._requests.add(task)
            task.add_done_callback(self._request_done)
        if self.on_command is not None:
            for command in (*persists, *requests):
                self.on_command(command)
        self._arm_timer()

    async def _requests_in_order(self, commands: list[ExchangeCommand]) -> None:
        for command in commands:
            self.submit(await execute(command, self.gateway, self.now))

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
