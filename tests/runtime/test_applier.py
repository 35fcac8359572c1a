"""The appliers: the async one, with a gateway that really suspends and inputs arriving concurrently, keeps the
same books as the synchronous one on the same data; persist-before-send holds for both; a coroutine that
suspends is refused by the synchronous driver."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from executor.commands import (
    CandleInput,
    MarkPriceInput,
    PersistIntent,
    SignalInput,
    SubmitOrder,
    UserEventInput,
)
from executor.core import ExecutionCore
from executor.risk import RiskEngine, RiskLimits
from marketdata.synthetic import synthetic_candles
from runtime.applier import AsyncApplier, MemoryJournal, SyncApplier, run_sync
from simulator.engine import SimExchange
from simulator.exchange_info import load_symbol_filters
from simulator.gateway import SimGateway
from tests.executor.harness import START, settings
from utils.clock import SimulatedClock
from utils.domain import Candle, MarkPrice, PositionMode, Signal, SignalSide

SYMBOLS = ("BTCUSDT", "ETHUSDT")
MINUTES = 240


class Flipper:
    """A test strategy that trades often: it changes side every ``every`` candles, FLAT in between."""

    def __init__(self, symbol: str, every: int) -> None:
        self.symbol, self.every, self.count = symbol, every, 0

    def on_candle(self, candle: Candle) -> Signal | None:
        self.count += 1
        if self.count % self.every:
            return None
        side = (SignalSide.LONG, SignalSide.FLAT, SignalSide.SHORT)[(self.count // self.every) % 3]
        return Signal("alpha", candle.symbol, side, Decimal(1), "flip", candle.close_time)


def _data() -> list[list[Candle]]:
    streams = {s: synthetic_candles(s, start_ms=START, count=MINUTES, seed=3 + i) for i, s in enumerate(SYMBOLS)}
    return [list(group) for group in zip(*streams.values(), strict=True)]


def _parts(clock: SimulatedClock) -> tuple[SimExchange, ExecutionCore, MemoryJournal]:
    filters = load_symbol_filters()
    filters = {s: filters[s] for s in SYMBOLS}
    exchange = SimExchange(filters, clock=clock, initial_balance=Decimal("10000"))
    strategies = [settings(symbol=s, stop_loss_pct=Decimal("0.5"), take_profit_pct=Decimal("0.8"),
                           sizing_value=Decimal("400")) for s in SYMBOLS]
    core = ExecutionCore(risk=RiskEngine(RiskLimits(order_ttl_sec=120)), filters=filters, settings=strategies,
                         position_mode=PositionMode.ONEWAY)
    return exchange, core, MemoryJournal()


def _mark(exchange: SimExchange, symbol: str, now: int) -> MarkPrice:
    mark = exchange.mark_price(symbol)
    return MarkPrice(symbol, now, mark, mark, exchange.funding_rate(symbol), exchange.next_funding_time(symbol))


def _books(exchange: SimExchange, core: ExecutionCore) -> dict[str, Any]:
    fills = {s: [(f.side, f.price, f.quantity, f.realized_pnl, f.commission, f.time)
                 for f in exchange.user_trades(s, limit=1000)] for s in SYMBOLS}
    holdings = {key: (h.amount, h.owner) for key, h in core.holdings.items() if h.amount}
    return {"fills": fills, "holdings": holdings, "wallet": exchange.account().wallet_balance,
            "core_wallet": core.wallet_balance, "closed": core.stats.closed_trades,
            "positions": {(p.symbol, p.position_side): p.amount for p in exchange.positions()},
            "mismatches": core.position_mismatches()}


def run_synchronously() -> dict[str, Any]:
    clock = SimulatedClock(START)
    exchange, core, journal = _parts(clock)
    gateway = SimGateway(exchange, clock)
    applier = SyncApplier(core, gateway, journal, now=clock.now_ms, user_events=gateway.take_user_events)
    applier.start()
    strategies = {s: Flipper(s, 7 + i) for i, s in enumerate(SYMBOLS)}
    for group in _data():
        clock.set(group[0].close_time)
        for candle in group:
            exchange.on_candle(candle)
        applier.deliver_user_events()
        for candle in group:
            applier.feed(CandleInput(candle))
            applier.feed(MarkPriceInput(_mark(exchange, candle.symbol, clock.now_ms())))
        for candle in group:
            signal = strategies[candle.symbol].on_candle(candle)
            if signal is not None:
                applier.feed(SignalInput(signal))
    assert core.stats.closed_trades > 20, "the test strategy must trade often"
    return _books(exchange, core)


class SuspendingGateway:
    """The simulated exchange behind a network: every call suspends a random while before and after it runs."""

    def __init__(self, inner: SimGateway, rng: random.Random) -> None:
        self.inner, self.rng = inner, rng

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(self.rng.uniform(0, 0.002))
            result = await method(*args, **kwargs)
            await asyncio.sleep(self.rng.uniform(0, 0.002))
            return result

        return call


async def run_asynchronously(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    clock = SimulatedClock(START)
    exchange, core, journal = _parts(clock)
    inner = SimGateway(exchange, clock)
    applier = AsyncApplier(core, SuspendingGateway(inner, rng), journal, now=clock.now_ms)
    await applier.start()
    in_flight: set[asyncio.Task[None]] = set()

    def later(item: Any) -> None:
        """Deliver an input after a random delay, from a task of its own (inputs race each other)."""
        async def deliver() -> None:
            await asyncio.sleep(rng.uniform(0, 0.003))
            applier.submit(item)

        task = asyncio.create_task(deliver())
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    undelivered = [0]

    async def stream_user_events() -> None:  # the user-data stream: events trickle in while requests run
        while True:
            events = inner.take_user_events()
            undelivered[0] += len(events)
            for event in events:
                await asyncio.sleep(rng.uniform(0, 0.001))
                applier.submit(UserEventInput(event, clock.now_ms()))
                undelivered[0] -= 1
            await asyncio.sleep(0.0005)

    stream = asyncio.create_task(stream_user_events())

    async def settle() -> None:
        while True:
            await applier.idle()
            while in_flight:
                await asyncio.gather(*in_flight)
            await asyncio.sleep(0.003)  # one more pass of the stream
            if not in_flight and inner.pending_events == 0 and undelivered[0] == 0 and not applier.busy:
                return

    strategies = {s: Flipper(s, 7 + i) for i, s in enumerate(SYMBOLS)}
    try:
        await settle()
        for group in _data():
            clock.set(group[0].close_time)
            for candle in group:
                exchange.on_candle(candle)
            for candle in group:  # market data, then the signals it caused, each from its own task
                applier.submit(CandleInput(candle))
                applier.submit(MarkPriceInput(_mark(exchange, candle.symbol, clock.now_ms())))
            for candle in group:
                signal = strategies[candle.symbol].on_candle(candle)
                if signal is not None:
                    later(SignalInput(signal))
            await settle()
    finally:
        stream.cancel()
        await applier.stop()
    return _books(exchange, core)


def test_the_async_applier_keeps_the_books_of_the_synchronous_run() -> None:
    expected = run_synchronously()
    for seed in (1, 2):
        assert asyncio.run(run_asynchronously(seed)) == expected


def test_persist_comes_before_send_in_both_appliers() -> None:
    order: list[str] = []

    class Journal:
        def apply(self, commands: Any) -> None:
            order.extend(f"persist {c.intent.client_order_id}" for c in commands if isinstance(c, PersistIntent))

    clock = SimulatedClock(START)
    exchange, core, _ = _parts(clock)
    gateway = SimGateway(exchange, clock)
    sent = gateway.place_order

    async def spy(intent: Any) -> Any:
        order.append(f"send {intent.client_order_id}")
        return await sent(intent)

    gateway.place_order = spy  # type: ignore[method-assign]
    applier = SyncApplier(core, gateway, Journal(), now=clock.now_ms, user_events=gateway.take_user_events,
                          on_command=lambda c: order.append("command") if isinstance(c, SubmitOrder) else None)
    applier.start()
    candle = next(iter(synthetic_candles("BTCUSDT", start_ms=START, count=1)))
    clock.set(candle.close_time)
    exchange.on_candle(candle)
    applier.feed(CandleInput(candle))
    applier.feed(SignalInput(Signal("alpha", "BTCUSDT", SignalSide.LONG, Decimal(1), "t", candle.close_time)))
    cid = next(line.split()[1] for line in order if line.startswith("send"))
    assert order.index(f"persist {cid}") < order.index(f"send {cid}")


def test_the_sync_driver_refuses_a_coroutine_that_suspends() -> None:
    async def suspends() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspended"):
        run_sync(suspends())


class FlakyDatabase:
    """A journal whose database refuses writes while ``down`` (what a lost connection or a full disk does)."""

    def __init__(self) -> None:
        self.inner = MemoryJournal()
        self.down = False
        self.refused = 0

    def apply(self, commands: Any) -> None:
        if self.down:
            self.refused += 1
            raise OSError("database is unreachable")
        self.inner.apply(commands)


async def test_while_the_database_refuses_writes_nothing_is_sent_and_new_signals_are_dropped(monkeypatch) -> None:
    monkeypatch.setattr("runtime.applier.DATABASE_RETRY_FIRST_SEC", 0.01)
    journal = FlakyDatabase()
    applier, _, gateway, candle = await _applier_after_one_candle(journal)
    journal.down = True
    applier.submit(SignalInput(Signal("alpha", "BTCUSDT", SignalSide.LONG, Decimal(1), "t", candle.close_time)))
    await asyncio.sleep(0.1)
    assert journal.refused >= 2 and applier.database_status()["state"] == "unavailable"
    assert gateway.sent_client_order_ids == []  # the entry's intent is not stored: it does not leave
    applier.submit(SignalInput(Signal("alpha", "ETHUSDT", SignalSide.LONG, Decimal(1), "t", candle.close_time)))
    assert applier.signals_dropped == 1
    journal.down = False
    await applier.idle()
    status = applier.database_status()
    assert (status["state"], status["outages"], status["signals_dropped"]) == ("ok", 1, 1)
    (sent,) = gateway.sent_client_order_ids  # the held batch went out once it was written
    intents = [c for c in journal.inner.commands if isinstance(c, PersistIntent)]
    assert [i.intent.client_order_id for i in intents] == [sent] and "BTCUSDT" in sent
    await applier.stop()


class RecordingGateway:
    """The simulated exchange behind a network that notes when each call starts, then suspends before it runs."""

    def __init__(self, inner: SimGateway, log: list[str]) -> None:
        self.inner, self.log = inner, log

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if name == "place_order":
                self.log.append(f"send {args[0].client_order_id}")
            await asyncio.sleep(0.001)
            return await method(*args, **kwargs)

        return call


async def _applier_after_one_candle(journal: Any, wrap: Callable[[SimGateway], Any] = lambda gateway: gateway,
                                    **options: Any) -> tuple[AsyncApplier, ExecutionCore, SimGateway, Candle]:
    """A started async applier (``wrap`` puts something around its gateway) that has seen one BTCUSDT candle."""
    clock = SimulatedClock(START)
    exchange, core, _ = _parts(clock)
    gateway = SimGateway(exchange, clock)
    applier = AsyncApplier(core, wrap(gateway), journal, now=clock.now_ms, **options)
    await applier.start()
    await applier.idle()
    candle = next(iter(synthetic_candles("BTCUSDT", start_ms=START, count=1)))
    clock.set(candle.close_time)
    exchange.on_candle(candle)
    applier.submit(CandleInput(candle))
    await applier.idle()
    return applier, core, gateway, candle


async def _started_applier(log: list[str], **options: Any) -> tuple[AsyncApplier, ExecutionCore, Candle]:
    class Journal:
        def apply(self, commands: Any) -> None:
            log.extend(f"persist {c.intent.client_order_id}" for c in commands if isinstance(c, PersistIntent))

    applier, core, _, candle = await _applier_after_one_candle(
        Journal(), lambda gateway: RecordingGateway(gateway, log), **options)
    return applier, core, candle


async def test_an_input_submitted_while_nothing_waits_is_decided_written_and_sent_within_submit() -> None:
    """The live decision path has no event-loop hop: by the time ``submit`` returns, the intent is written and
    the request task has started its call to the exchange (eagerly), in that order."""
    log: list[str] = []
    applier, core, candle = await _started_applier(log)
    applier.submit(SignalInput(Signal("alpha", "BTCUSDT", SignalSide.LONG, Decimal(1), "t", candle.close_time)))
    # no await between submit and these checks
    assert [line.split()[0] for line in log] == ["persist", "send"]
    assert log[0].split()[1] == log[1].split()[1]
    assert core.stats.intents == 1 and core.stats.sent == 0 and applier.busy  # in flight: its answer is an input
    await applier.idle()
    assert core.stats.sent == 1 and applier.handled_inline >= 3  # the candle, the signal, the answer
    await applier.stop()


@pytest.mark.parametrize("inline", [True, False])
async def test_inputs_submitted_while_one_is_being_handled_wait_their_turn(inline: bool) -> None:
    """Never two inputs in the core at once: one submitted from inside the handling of another (a callback of
    the core's commands) is queued and handled after it, by the consumer task; without inline handling every
    input goes through the queue and the books are the same."""
    log: list[str] = []
    applier, core, candle = await _started_applier(log, inline=inline)
    handle = core.handle
    depth = [0]
    order: list[str] = []

    def guarded(item: Any) -> Any:
        depth[0] += 1
        assert depth[0] == 1, "the core was entered while it was handling another input"
        try:
            order.append(type(item).__name__)
            return handle(item)
        finally:
            depth[0] -= 1

    core.handle = guarded  # type: ignore[method-assign]
    again = MarkPriceInput(MarkPrice("BTCUSDT", candle.close_time, candle.close, candle.close, Decimal(0),
                                     candle.close_time + 3_600_000))
    applier.on_command = lambda command: applier.submit(again) if isinstance(command, SubmitOrder) else None
    applier.submit(SignalInput(Signal("alpha", "BTCUSDT", SignalSide.LONG, Decimal(1), "t", candle.close_time)))
    if inline:
        assert order == ["SignalInput"]  # the mark price waits in the queue
        assert [line.split()[0] for line in log] == ["persist", "send"]
    else:
        assert order == [] and log == []  # everything waits for the consumer
    await applier.idle()
    assert order[:2] == ["SignalInput", "MarkPriceInput"] and "SubmitResult" in order
    assert core.stats.sent == 1 and applier.error is None
    await applier.stop()
