"""The live shell (``MODE=testnet`` / ``MODE=mainnet``): the same strategies, core and database as sim mode, fed by
Binance's streams and carrying out the core's commands over Binance's REST API.

Start-up, in this order (each step that fails stops the start with one line naming what and why):
1. settings and keys checked (mainnet only with ``MAINNET_CONFIRM``; the key's permissions read where Binance
   exposes them, withdrawals enabled warned about loudly);
2. server time (the offset of the local clock, used only to sign and time requests);
3. exchangeInfo (every configured symbol must be listed; its filters and the rate limits come from here);
4. the account brought to the settings: position mode (``POSITION_MODE``; refused while positions or orders are
   open and the mode differs), leverage and margin type per symbol;
5. the strategies warmed up on the latest closed candles (REST);
6. reconciliation: the core's ``Reconcile`` command, fetched by ``runtime/applier.fetch_snapshot``;
7. the user-data stream (listenKey), then the market streams (closed candles missed since the warm-up are
   back-filled first);
8. trading.

Two times are kept apart: the core's "now" is market time (the latest candle close, mark-price or user-event time,
never going backwards: :class:`MarketTime`), so decisions are the same at any replay speed; the local clock plus
the server offset only signs requests (``utils/timesync.py``). The core's timers are driven by a task that feeds
``Tick`` inputs when market time passes ``next_wakeup()`` (and by the applier's own timer, so a lookup still
happens while the market is silent). Every user-stream reconnect or listenKey expiry becomes a
``StreamInterrupted`` input (the core reconciles). exchangeInfo is read again every
``EXCHANGE_INFO_REFRESH_SEC``: changed filters apply from then on, a symbol that stops TRADING gets no new entries.

Ctrl-C / SIGTERM: signals are no longer taken, the market streams close, in-flight requests resolve, the user
stream closes (its listenKey deleted), candles are flushed and the heartbeat is written as stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from config import AppConfig, Mode
from database.journal import RepositoryJournal, load_seed
from database.repository import Repository
from executor.commands import (
    CandleInput,
    Command,
    FiltersUpdate,
    MarkPriceInput,
    OperatorChange,
    SignalInput,
    StreamInterrupted,
    SubmitAlgoOrder,
    SubmitOrder,
    Tick,
    UserEventInput,
)
from executor.core import ExecutionCore
from executor.risk import GLOBAL_SCOPE
from live.gateway import BinanceGateway, ExchangeInfo
from live.market_stream import MarketStream
from live.user_stream import UserStream
from runtime.applier import AsyncApplier
from runtime.assembly import (
    add_core_sections,
    execution_policy,
    execution_settings,
    operator_changes,
    risk_engine,
    strategy_runner,
)
from runtime.heartbeat import HEARTBEAT_FILE, Heartbeat, write_atomically
from utils.binance_parse import AccountUpdate, AlgoUpdate, OrderUpdate, UserEvent
from utils.bus import Event, EventBus, consume
from utils.domain import Candle, MarkPrice, Signal
from utils.errors import AuthError, BinanceError, OutcomeUnknownError
from utils.filters import SymbolFilters
from utils.rest import RestClient
from utils.signing import make_signer
from utils.websocket import ConnectionStatus

log = logging.getLogger("runtime.live")

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
#: Real seconds between looks at the database for trading states an operator changed (`main.py risk clear`).
OPERATOR_POLL_SEC = 2.0
#: Real seconds between checks of the core's timers against market time.
TICK_EVERY_SEC = 0.05
#: Candles are written in batches, this often (real seconds) when the core is idle, and at shutdown ...
CANDLE_FLUSH_SEC = 2.0
CANDLE_FLUSH_MAX = 5_000  # ... or at once when this many wait (the core busy for that long)
#: How long the start waits for a stream's first connection, and the shutdown for in-flight requests.
CONNECT_TIMEOUT_SEC = 30.0
SHUTDOWN_TIMEOUT_SEC = 15.0


#: Printed once trading has begun (tests and scripts wait for it before they send SIGINT / SIGTERM).
LIVE_READY_LINE = "Trading. Ctrl-C stops: no new signals, in-flight requests resolve, streams close."


class StartupError(Exception):
    """The live start cannot go on: the message is one line naming what and what to do."""


class _StoppedDuringStart(Exception):
    """Ctrl-C / SIGTERM came while the bot was still starting: it stops before the next step."""


class MarketTime:
    """The core's clock in live mode: the latest market time seen (candle close, mark or event time).

    It never goes backwards; ``updated_at`` is the monotonic wall time of the last step (for the heartbeat).
    """

    __slots__ = ("_now", "updated_at")

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms
        self.updated_at = time.monotonic()

    def observe(self, ms: int) -> bool:
        if ms <= self._now:
            return False
        self._now = ms
        self.updated_at = time.monotonic()
        return True

    def now_ms(self) -> int:
        return self._now


@dataclass
class LiveSummary:
    """What a live run did, for the closing printout."""

    mode: str
    candles: int
    signals: int
    orders_sent: int
    fills: int
    closed_trades: int
    reconciliations: int
    trading_states: dict[str, str]
    open_positions: list[str]
    open_orders: int

    def render(self) -> str:
        lines = [
            f"Live run ({self.mode}) stopped",
            f"  candles         {self.candles}",
            f"  signals         {self.signals}",
            f"  orders sent     {self.orders_sent}",
            f"  fills           {self.fills}   closed trades: {self.closed_trades}",
            f"  reconciliations {self.reconciliations}",
            f"  open orders     {self.open_orders} (left working on the exchange)",
            "  open positions  " + ("; ".join(self.open_positions) if self.open_positions else "none"),
            "  trading state   " + ", ".join(f"{k}: {v}" for k, v in self.trading_states.items()),
        ]
        return "\n".join(lines)


def startup_problem(config: AppConfig) -> str | None:
    """Why the live shell must not start with these settings (checked before anything is sent), or None."""
    settings = config.settings
    if settings.mode is Mode.SIM:
        return "the live shell runs MODE=testnet or MODE=mainnet, not MODE=sim"
    if settings.mode is Mode.MAINNET and not settings.mainnet_confirmed:
        return ("MODE=mainnet trades REAL MONEY and needs MAINNET_CONFIRM=I-UNDERSTAND-REAL-MONEY in the settings "
                "(environment or .env); see docs/runbook.md. Use MODE=testnet to try it first.")
    if config.api_keys is None:
        return (f"MODE={settings.mode.value} needs API keys: BINANCE_API_KEY and BINANCE_API_SECRET in "
                f"{settings.apikey_file} (chmod 600) or the environment")
    if not (settings.rest_base_url and settings.ws_market_url and settings.ws_private_url):
        return "the REST and WebSocket URLs are not set for this mode"
    return None


class LiveTrader:
    """One live run: start up in order, trade until stopped, shut down cleanly."""

    def __init__(self, config: AppConfig, *, heartbeat_path: Path | None = None,
                 on_progress: Callable[[str], None] | None = None) -> None:
        problem = startup_problem(config)
        if problem:
            raise StartupError(problem)
        settings = config.settings
        rest_url = settings.rest_base_url
        assert config.api_keys is not None and rest_url is not None
        self.config = config
        self.mode = settings.mode
        self.symbols = [symbol.symbol for symbol in config.symbols]
        self.position_mode = settings.position_mode
        self.on_progress = on_progress or (lambda line: None)
        self.market_time = MarketTime()
        self.repository = Repository.open(settings.db_url, self.market_time, hold_connection=True,
                                          background_checkpoint=True)
        self.bus = EventBus()
        self.runner = strategy_runner(config)
        self.risk, self._risk_scopes = risk_engine(config, self.repository)
        keys = config.api_keys
        self.rest = RestClient(rest_url, api_key=keys.api_key.get_secret_value(),
                               signer=make_signer(keys.api_secret.get_secret_value()),
                               recv_window_ms=settings.recv_window_ms, timeout_sec=settings.rest_timeout_sec,
                               on_auth_error=self._on_auth_error)
        self.gateway = BinanceGateway(self.rest, sapi_base_url=settings.sapi_base_url)
        self.heartbeat = Heartbeat(heartbeat_path or settings.status_dir / HEARTBEAT_FILE,
                                   settings.heartbeat_interval_sec)
        self.core: ExecutionCore | None = None
        self.applier: AsyncApplier | None = None
        self.market: MarketStream | None = None
        self.user: UserStream | None = None
        self.exchange_info: ExchangeInfo | None = None
        self._info_read_at: float | None = None
        self._phase = "starting"
        self._process_state = "running"
        self._accepting_signals = True
        self._signals_dropped = 0
        self._candles = 0
        self._pending_candles: list[Candle] = []
        self._candles_flushed_at = time.monotonic()
        self._database_error: str | None = None
        self._auth_error: str | None = None
        self._key_permissions: dict[str, Any] | str = "not read yet"
        self._last_snapshot_hour = -1
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._heartbeat_write: asyncio.Future[None] | None = None
        self._setup_heartbeat()

    # =============================================================================================== run
    def stop(self) -> None:
        """Ask the run to stop (Ctrl-C / SIGTERM): no new signals, in-flight requests resolve, streams close."""
        self._stopping.set()

    async def run(self) -> LiveSummary:
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="heartbeat"))
        try:
            try:
                await self._start()
            except _StoppedDuringStart:
                return self.summary()
            except AuthError as error:
                raise StartupError(f"the exchange refused the API key at the start-up step '{self._phase}' "
                                   f"({error.code} {error.msg}): check the key, its futures permission and its IP "
                                   "whitelist") from None
            except (BinanceError, OutcomeUnknownError, aiohttp.ClientError, OSError) as error:
                raise StartupError(f"the start-up step '{self._phase}' failed: {type(error).__name__}: "
                                   f"{error}") from None
            if not self._stopping.is_set():
                # What the start-up built (modules, the schema, exchangeInfo, the warmed-up strategies: about 110k
                # objects) lives as long as the process: collected once and frozen, a later full collection does
                # not walk it again (60 ms -> 0.1 ms: a full collection lands inside some decision).
                gc.collect()
                gc.freeze()
                self._phase = "trading"
                self.on_progress(f"Started: {', '.join(self.symbols)} on {self.config.settings.rest_base_url} "
                                 f"({self.mode.value}).")
                self.on_progress(LIVE_READY_LINE)
                await self._stopping.wait()
        finally:
            await self._shutdown()
        return self.summary()

    async def _start(self) -> None:
        settings = self.config.settings
        await self.rest.start()
        self._step("server time")
        try:
            sample = await self.rest.time_sync.sync()
        except (BinanceError, OutcomeUnknownError, OSError) as error:
            raise StartupError(f"the exchange at {settings.rest_base_url} cannot be reached for its time "
                               f"({type(error).__name__}: {error}); check REST_BASE_URL and the network") from None
        log.info("server time read", extra={"offset_ms": sample.offset_ms, "round_trip_ms": sample.round_trip_ms})
        self._step("exchangeInfo")
        info = await self.gateway.exchange_info()
        self._take_exchange_info(info)
        missing = [symbol for symbol in self.symbols if symbol not in info.symbols]
        if missing:
            raise StartupError(f"{', '.join(missing)} (in {settings.symbols_file}) is not listed in the exchange's "
                               "exchangeInfo: remove it from the symbols file")
        await self._check_key_permissions()
        self._step("account settings")
        await self._configure_account()
        self._step("warm-up")
        last_closed = await self._warm_up()
        self._step("reconciliation")
        filters = {symbol: info.symbols[symbol] for symbol in self.symbols}
        self.core = ExecutionCore(
            risk=self.risk, filters=filters, settings=execution_settings(self.config),
            position_mode=self.position_mode, seed=load_seed(self.repository),
            policy=execution_policy(self.config),
            leverage={symbol.symbol: symbol.leverage for symbol in self.config.symbols})
        self.applier = AsyncApplier(self.core, self.gateway, RepositoryJournal(self.repository),
                                    now=self.market_time.now_ms, on_command=self._on_command)
        add_core_sections(self.heartbeat, self.core, self.risk, self.runner)
        await self.applier.start()
        await self.applier.idle()
        live_at_start = len(self.core.open_orders_by_id())
        self._start_consumers()
        self._step("user stream")
        self.user = UserStream(self.gateway, settings.ws_private_url or "", on_event=self._on_user_event,
                               on_interrupted=self._on_user_stream_interrupted,
                               max_backoff_sec=settings.ws_max_backoff_sec)
        self._tasks.append(asyncio.create_task(self.user.run(), name="user-stream"))
        await self._connected(self.user.wait_connected, "the user-data stream", settings.ws_private_url)
        if live_at_start:  # its events between the start-up snapshot and the connection: read them again
            self._submit(StreamInterrupted(self.market_time.now_ms(), "user stream connected after the start"))
        self._step("market streams")
        self.market = MarketStream(settings.ws_market_url or "", self.symbols, fetch_klines=self.gateway.klines,
                                   on_candle=self._on_candle, on_mark_price=self._on_mark_price,
                                   last_closed_open_time=last_closed, max_backoff_sec=settings.ws_max_backoff_sec,
                                   silence_timeout_sec=settings.ws_silence_sec)
        self._tasks.append(asyncio.create_task(self.market.run(), name="market-stream"))
        await self._connected(self.market.wait_connected, "the market-data stream", settings.ws_market_url)
        self._tasks.extend([
            asyncio.create_task(self.rest.time_sync.run(), name="time-sync"),
            asyncio.create_task(self._tick_loop(), name="core-timers"),
            asyncio.create_task(self._exchange_info_loop(), name="exchange-info"),
            asyncio.create_task(self._operator_loop(), name="operator-changes"),
        ])

    def _step(self, phase: str) -> None:
        if self._stopping.is_set():
            raise _StoppedDuringStart
        self._phase = phase
        log.info("live start-up", extra={"step": phase})

    async def _connected(self, wait: Callable[..., Any], what: str, url: str | None) -> None:
        try:
            await asyncio.wait_for(wait(), timeout=CONNECT_TIMEOUT_SEC)
        except TimeoutError:
            raise StartupError(f"{what} did not connect within {CONNECT_TIMEOUT_SEC:g} s ({url}); check the URL "
                               "and the network (the log has each attempt)") from None

    # ---------------------------------------------------------------------------------------- start-up steps
    async def _check_key_permissions(self) -> None:
        try:
            permissions = await self.gateway.key_permissions()
        except (BinanceError, OutcomeUnknownError, OSError) as error:
            self._key_permissions = f"could not be read: {error}"
            log.warning("the API key's permissions could not be read", extra={"error": str(error)})
            return
        if permissions is None:
            self._key_permissions = "not checked (this exchange does not expose them)"
            return
        self._key_permissions = {"futures": permissions.enable_futures, "withdrawals": permissions.enable_withdrawals,
                                 "reading": permissions.enable_reading, "ip_restricted": permissions.ip_restrict}
        if permissions.enable_withdrawals:
            message = ("THE API KEY ALLOWS WITHDRAWALS. A trading bot never needs that: anyone who gets this key can "
                       "empty the account. Create a key with futures trading only (and an IP whitelist).")
            log.critical(message)
            self.on_progress(f"WARNING: {message}")
        if not permissions.enable_futures:
            raise StartupError("the API key is not enabled for futures trading (Binance API management: enable "
                               "Futures on the key)")

    async def _configure_account(self) -> None:
        want = self.position_mode
        have = await self.gateway.position_mode()
        if have is not want:
            positions = [p for p in await self.gateway.positions() if p.amount]
            orders = await self.gateway.open_orders()
            algo = await self.gateway.open_algo_orders()
            if positions or orders or algo:
                raise StartupError(
                    f"the account is in {have.value} position mode but POSITION_MODE={want.value}, and Binance "
                    f"cannot change it while {len(positions)} position(s) and {len(orders) + len(algo)} order(s) "
                    f"are open: close them, or set POSITION_MODE={have.value}")
            await self._setting(self.gateway.set_position_mode(want), f"position mode {want.value} (POSITION_MODE)")
            log.info("position mode changed", extra={"from": have.value, "to": want.value})
        for symbol in self.config.symbols:
            name = self.config.settings.symbols_file
            got = await self._setting(self.gateway.set_leverage(symbol.symbol, symbol.leverage),
                                      f"{symbol.symbol} leverage {symbol.leverage} ({name})")
            if got != symbol.leverage:
                raise StartupError(f"{symbol.symbol}: the exchange set leverage {got}, not {symbol.leverage} "
                                   f"({name}); use a leverage Binance allows for the symbol")
            await self._setting(self.gateway.set_margin_type(symbol.symbol, symbol.margin_type),
                                f"{symbol.symbol} margin type {symbol.margin_type.value} ({name})")

    @staticmethod
    async def _setting(call: Any, what: str) -> Any:
        try:
            return await call
        except BinanceError as error:
            hint = {-4047: ": cancel the symbol's open orders first", -4048: ": close the symbol's position first",
                    -4067: ": cancel the open orders first", -4068: ": close the positions first"}.get(error.code, "")
            raise StartupError(f"{what} cannot be set: Binance {error.code} {error.msg}{hint}") from None

    async def _warm_up(self) -> dict[str, int]:
        """The strategies get the latest closed candles (REST); returns each symbol's last closed open time."""
        last_closed: dict[str, int] = {}
        for symbol in self.symbols:
            needed = self.runner.warmup_candles(symbol)
            rows = await self.gateway.klines(symbol, limit=min(needed + 2, 1500))
            closed = [replace(c, closed=True) for c in rows[:-1]]  # the last row is the forming candle
            if not closed:
                continue
            for strategy in self.runner.strategies:
                if strategy.symbol == symbol:
                    self.runner.warm_up(strategy, closed[-needed:] if needed else [])
            self.market_time.observe(closed[-1].close_time)
            last_closed[symbol] = closed[-1].open_time
            self._pending_candles.extend(closed)
            log.info("strategies warming up", extra={"symbol": symbol, "candles": len(closed), "source": "rest"})
        self._flush_candles()
        return last_closed

    def _take_exchange_info(self, info: ExchangeInfo) -> None:
        self.exchange_info = info
        self._info_read_at = time.monotonic()

    # ============================================================================================ inputs
    def _submit(self, item: Any) -> None:
        assert self.applier is not None
        self.applier.submit(item)

    def _start_consumers(self) -> None:
        # The decision path is direct (called during publish, no task hop): candle -> strategies -> signal -> core
        # (docs/benchmarks.md, live decision latency). The bus delivers direct events first in, first out, so the
        # core sees each candle before the signals the strategies make of it.
        self.bus.subscribe_direct(("market.*", "signal.*", "order.update", "algo.update", "account.update"),
                                  self._on_core_input, name="execution-core")
        self.bus.subscribe_direct(("market.kline", "market.mark"), self._on_market_for_strategies,
                                  name="strategies")
        recorder = self.bus.subscribe("market.kline", name="recorder")
        self._tasks.append(asyncio.create_task(consume(recorder, self._on_candle_for_recorder),
                                               name=f"consume:{recorder.name}"))

    async def _on_candle(self, candle: Candle) -> None:
        self.market_time.observe(candle.close_time)
        self._candles += 1
        await self.bus.publish("market.kline", candle)

    async def _on_mark_price(self, mark: MarkPrice) -> None:
        self.market_time.observe(mark.event_time)
        await self.bus.publish("market.mark", mark)

    async def _on_user_event(self, event: UserEvent) -> None:
        self.market_time.observe(event.event_time)
        if isinstance(event, OrderUpdate):
            await self.bus.publish("order.update", event)
        elif isinstance(event, AlgoUpdate):
            await self.bus.publish("algo.update", event)
        elif isinstance(event, AccountUpdate):
            await self.bus.publish("account.update", event)

    def _on_user_stream_interrupted(self, reason: str) -> None:
        log.warning("user-data stream interrupted; reconciling", extra={"reason": reason})
        self._submit(StreamInterrupted(self.market_time.now_ms(), reason))

    def _on_market_for_strategies(self, event: Event) -> None:
        if event.channel == "market.kline":
            signals = self.runner.on_candle(event.payload)
        else:
            signals = self.runner.on_mark_price(event.payload)
        for signal in signals:
            if not self._accepting_signals:
                self._signals_dropped += 1
                continue
            self.bus.publish_nowait(f"signal.{signal.strategy}", signal)

    def _on_core_input(self, event: Event) -> None:
        """The execution core's single consumer on the bus: every input goes to the applier's queue, in order."""
        payload = event.payload
        if event.channel == "market.kline":
            self._submit(CandleInput(payload))
        elif event.channel == "market.mark":
            self._submit(MarkPriceInput(payload))
        elif isinstance(payload, Signal):
            if self._accepting_signals:
                self._submit(SignalInput(payload))
            else:
                self._signals_dropped += 1
        else:
            self._submit(UserEventInput(payload, self.market_time.now_ms()))

    def _on_command(self, command: Command) -> None:
        if isinstance(command, (SubmitOrder, SubmitAlgoOrder)):
            self.bus.publish_nowait("order.request", command.intent)

    def _on_auth_error(self, error: BinanceError) -> None:
        self._auth_error = f"{error.code} {error.msg}"
        log.critical("the exchange refused the API key; orders are halted until it is fixed",
                     extra={"code": error.code, "reason": error.msg})

    async def _on_candle_for_recorder(self, event: Event) -> None:
        # Written by the timer task when the core is idle, not here: a candle arrives just as a decision is being
        # made, and the write would sit in its path (docs/benchmarks.md, live decision latency).
        self._pending_candles.append(event.payload)
        if len(self._pending_candles) >= CANDLE_FLUSH_MAX:
            self._flush_candles()

    def _flush_candles(self) -> None:
        self._candles_flushed_at = time.monotonic()
        if not self._pending_candles:
            return
        batch, self._pending_candles = self._pending_candles, []
        try:
            self.repository.record_candles(batch)
            self._database_error = None
        except Exception as exc:
            self._database_error = f"{type(exc).__name__}: {exc}"
            self._pending_candles = batch + self._pending_candles  # tried again at the next flush
            log.exception("candles could not be written")

    # ============================================================================================ loops
    async def _tick_loop(self) -> None:
        """The core's timers, against market time: a Tick whenever market time has passed ``next_wakeup()``."""
        assert self.core is not None
        last_due: int | None = None
        while True:
            await asyncio.sleep(TICK_EVERY_SEC)
            due = self.core.next_wakeup()
            now = self.market_time.now_ms()
            if due is not None and due <= now and due != last_due:
                last_due = due
                self._submit(Tick(now))
            if (self._pending_candles and time.monotonic() - self._candles_flushed_at >= CANDLE_FLUSH_SEC
                    and not (self.applier is not None and self.applier.busy)):
                self._flush_candles()
            if now // HOUR_MS != self._last_snapshot_hour:
                self._last_snapshot_hour = now // HOUR_MS
                await self._record_account_snapshot()

    async def _exchange_info_loop(self) -> None:
        every = self.config.settings.exchange_info_refresh_sec
        while True:
            await asyncio.sleep(every)
            try:
                info = await self.gateway.exchange_info()
            except (BinanceError, OutcomeUnknownError, OSError) as error:
                log.warning("exchangeInfo could not be read again; the last one stays in use",
                            extra={"error": str(error)})
                continue
            self._take_exchange_info(info)
            self._submit(FiltersUpdate(self._configured_filters(info), self.market_time.now_ms()))

    def _configured_filters(self, info: ExchangeInfo) -> tuple[SymbolFilters, ...]:
        """Each configured symbol's new filters; one that left exchangeInfo keeps its filters with no TRADING."""
        assert self.core is not None
        result = []
        for symbol in self.symbols:
            new = info.symbols.get(symbol)
            result.append(new if new is not None else replace(self.core.filters[symbol], status="NOT_LISTED"))
        return tuple(result)

    async def _operator_loop(self) -> None:
        assert self.applier is not None
        while True:
            await asyncio.sleep(OPERATOR_POLL_SEC)
            if self.applier.busy:
                continue  # the core's own changes may not be stored yet
            try:
                changed = operator_changes(self.repository, self.risk, self._risk_scopes)
            except Exception:
                log.exception("trading states could not be read from the database")
                continue
            for record in changed:
                self._submit(OperatorChange(record, self.market_time.now_ms()))

    async def _record_account_snapshot(self) -> None:
        try:
            account = await self.gateway.account()
            self.repository.record_account_snapshot(
                self.market_time.now_ms(), wallet_balance=account.wallet_balance,
                available_balance=account.available_balance, equity=account.equity,
                unrealized_pnl=account.unrealized_pnl)
        except (BinanceError, OutcomeUnknownError, OSError) as error:
            log.warning("account snapshot skipped", extra={"error": str(error)})

    async def _heartbeat_loop(self) -> None:
        while True:
            try:  # built here, written (with its fsync) in a thread: the loop never waits for the disk
                self._heartbeat_write = asyncio.ensure_future(
                    asyncio.to_thread(write_atomically, self.heartbeat.path, self.heartbeat.build()))
                await asyncio.shield(self._heartbeat_write)
            except Exception:
                log.exception("heartbeat write failed")
            await asyncio.sleep(self.heartbeat.interval_sec)

    # ========================================================================================== shutdown
    async def _shutdown(self) -> None:
        self._phase = "stopping"
        self._accepting_signals = False
        if self.market is not None:
            with contextlib.suppress(Exception):
                await self.market.stop()
        if self.applier is not None:
            try:
                await asyncio.wait_for(self._settle(), timeout=SHUTDOWN_TIMEOUT_SEC)
            except (TimeoutError, Exception) as error:
                log.warning("stopping with requests still unresolved", extra={"error": repr(error)})
        if self.user is not None:
            with contextlib.suppress(Exception):
                await self.user.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._heartbeat_write is not None:  # a write still running in its thread must not land after the last
            with contextlib.suppress(Exception):
                await self._heartbeat_write
        if self.applier is not None:
            await self.applier.stop()
        self._flush_candles()
        with contextlib.suppress(Exception):
            await self.rest.close()
        self._process_state = "stopped"
        self._phase = "stopped"
        try:
            self.heartbeat.write()
        except OSError as error:
            log.error("the final heartbeat could not be written", extra={"error": str(error)})
        log.info("live run stopped", extra={"mode": self.mode.value, "candles": self._candles})

    async def _settle(self) -> None:
        """Until every queued input is handled and every request has its answer."""
        assert self.applier is not None
        for _ in range(3):
            await self.bus.drain()
            await self.applier.idle()

    def close(self) -> None:
        self.repository.close()

    def summary(self) -> LiveSummary:
        core = self.core
        states = {scope: record.state.value for scope, record in sorted(self.risk.states().items())}
        positions = [] if core is None else [
            f"{s} {side.value} {h.amount} ({h.owner or 'external'})" for (s, side), h in core.holdings.items()
            if h.amount]
        return LiveSummary(
            mode=self.mode.value, candles=self._candles, signals=core.stats.signals if core else 0,
            orders_sent=core.stats.sent if core else 0, fills=core.stats.fills if core else 0,
            closed_trades=core.stats.closed_trades if core else 0,
            reconciliations=core.stats.reconciliations if core else 0,
            trading_states=states or {GLOBAL_SCOPE: "ACTIVE"}, open_positions=positions,
            open_orders=len(core.open_orders_by_id()) if core else 0)

    def blocked_scopes(self) -> list[str]:
        return [f"{scope} is {record.state.value}: {record.reason}"
                for scope, record in sorted(self.risk.states().items()) if record.state.value != "ACTIVE"]

    # ========================================================================================= heartbeat
    def _setup_heartbeat(self) -> None:
        hb = self.heartbeat
        hb.section("process", lambda: {"state": self._process_state, "phase": self._phase,
                                       "signals_dropped_while_stopping": self._signals_dropped})
        hb.section("mode", lambda: {"mode": self.mode.value, "position_mode": self.position_mode.value,
                                    "rest": self.config.settings.rest_base_url,
                                    "market_stream": self.config.settings.ws_market_url,
                                    "user_stream": self.config.settings.ws_private_url,
                                    "key_permissions": self._key_permissions})
        hb.section("market_time", lambda: {
            "time_ms": self.market_time.now_ms() or None,
            "last_step_age_sec": round(time.monotonic() - self.market_time.updated_at, 3)})
        hb.section("streams", self._stream_status)
        hb.section("rest", self._rest_status)
        hb.section("exchange_info", self._exchange_info_status)
        hb.section("database", self._database_status)
        hb.section("bus", self.bus.stats)
        hb.section("core", lambda: {"started": self.core is not None,
                                    "requests_in_flight": bool(self.applier and self.applier.busy)})

    def _stream_status(self) -> dict[str, Any]:
        result: dict[str, Any] = {"market": {"state": "not started"}, "user": {"state": "not started"}}
        if self.market is not None:
            stats = self.market.stats()
            result["market"] = {
                "connections": [_connection(status) for status in self.market.status()],
                "candles": stats.candles, "mark_prices": stats.mark_prices,
                "missed_candle_backfills": stats.backfills, "candles_backfilled": stats.candles_backfilled,
                "backfill_failures": stats.backfill_failures, "duplicates_dropped": stats.duplicates_dropped,
                "malformed_frames": stats.malformed_frames}
        if self.user is not None:
            status = self.user.status()
            result["user"] = {**_connection(status.connection),
                              "listen_key_age_sec": _rounded(status.listen_key_age_sec),
                              "listen_keys_created": status.listen_keys_created, "keepalives": status.keepalives,
                              "interruptions": status.interruptions, "events": status.events}
        return result

    def _rest_status(self) -> dict[str, Any]:
        snapshot = dict(self.rest.snapshot())
        if self._auth_error:
            snapshot["auth_error"] = self._auth_error
        return snapshot

    def _exchange_info_status(self) -> dict[str, Any]:
        age = None if self._info_read_at is None else round(time.monotonic() - self._info_read_at, 1)
        not_trading = self.core.symbols_not_trading() if self.core is not None else {}
        return {"read_age_sec": age, "refresh_every_sec": self.config.settings.exchange_info_refresh_sec,
                "symbols_not_trading": not_trading}

    def _database_status(self) -> dict[str, Any]:
        url = self.repository.engine.url.render_as_string(hide_password=True)
        journal = self.applier.database_status() if self.applier is not None else {"state": "ok"}
        error = (journal.get("error") or self._database_error
                 or (repr(self.applier.error) if self.applier and self.applier.error else None))
        state = "unavailable" if journal["state"] == "unavailable" else "error" if error else "ok"
        return {"url": url, "backend": self.repository.engine.dialect.name, "state": state, "error": error,
                "trading": "held: nothing is sent until the database takes the core's writes again"
                if state == "unavailable" else "normal",
                "outages": journal.get("outages", 0), "signals_dropped": journal.get("signals_dropped", 0),
                "down_sec": journal.get("down_sec"), "pending_candles": len(self._pending_candles)}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _connection(status: ConnectionStatus) -> dict[str, Any]:
    return {"name": status.name, "state": str(status.state), "connects": status.connects,
            "reconnects": status.reconnects, "last_message_age_sec": _rounded(status.last_message_age_sec),
            "connected_for_sec": _rounded(status.connected_for_sec), "malformed_frames": status.malformed_frames,
            "last_error": status.last_error}


