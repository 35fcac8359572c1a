"""``SimServer``: the simulated exchange behind Binance USD-M's wire protocol, as one aiohttp application.

It owns the accounts (one ``SimExchange`` per API key pair, all on one market), the market replay and its clock,
the gateway clock, the REST gateway, the market and user-data streams, the connection hub, the fault switches and
the admin endpoint. Everything time-driven happens in ``tick``: a background task calls it every 50 ms of real
time, and ``advance`` calls it after stepping a stepped clock, so tests move time without sleeping.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from simulator.engine import SimConfig, SimExchange
from simulator.exchange_info import load_exchange_info
from simulator.server import admin, errors, persistence
from simulator.server.auth import Credentials
from simulator.server.clock import GatewayClock, MarketClock
from simulator.server.connections import ConnectionHub, ConnectionRules, StreamConnection, serve_connection
from simulator.server.faults import Faults
from simulator.server.gateway import Gateway, error_response
from simulator.server.market_streams import MarketStreams
from simulator.server.order_log import OrderLog
from simulator.server.ratelimit import IpLimiter, OrderLimiter, RateLimitConfig
from simulator.server.replay import MINUTE_MS, MarketReplay
from simulator.server.user_streams import LISTEN_KEY_LIFETIME_MS, UserStreams
from utils.clock import Clock, SimulatedClock
from utils.domain import Candle
from utils.errors import BinanceError

logger = logging.getLogger("simulator.server")


@dataclass
class Account:
    """One API key pair and the exchange account behind it."""

    credentials: Credentials
    exchange: SimExchange
    orders: OrderLimiter
    alias: str

    @property
    def api_key(self) -> str:
        return self.credentials.api_key


@dataclass(frozen=True)
class ServerConfig:
    """How the server is set up; every field is described in docs/simulator.md ("The wire server")."""

    candles: Mapping[str, Sequence[Candle]] = field(default_factory=dict)
    speed: float = 0.0                      # 0: stepped (moves only when told); N: N x real time
    credentials: Sequence[Credentials] = ()  # none: one random HMAC key pair
    balance: Decimal = Decimal("10000")
    sim_config: SimConfig = SimConfig()
    exchange_info: Mapping[str, Any] | None = None
    history_minutes: int = 1                # candles already closed when the server starts
    start_now: bool = False                 # shift the data so the replay starts at the current minute
    state_file: Path | None = None
    order_log: Path | None = None           # every new-order request, one JSON line each (chaos tests' proof)
    admin_token: str | None = None
    rate_limits: RateLimitConfig = RateLimitConfig()
    connection_rules: ConnectionRules = ConnectionRules()
    listen_key_lifetime_ms: int = LISTEN_KEY_LIFETIME_MS
    tick_interval_ms: int = 50
    save_interval_ms: int = 1000


def _shift(candles: Mapping[str, Sequence[Candle]], shift_ms: int) -> dict[str, list[Candle]]:
    return {symbol: [dataclasses.replace(c, open_time=c.open_time + shift_ms, close_time=c.close_time + shift_ms)
                     for c in series] for symbol, series in candles.items()}


class SimServer:
    """The wire-compatible exchange. ``await start()``, point clients at ``rest_url`` / ``ws_url``, ``await stop()``."""

    def __init__(self, config: ServerConfig, *, wall_clock: Clock | None = None,
                 elapsed_clock: Clock | None = None) -> None:
        if config.history_minutes < 0:
            raise ValueError("history_minutes must not be negative")
        self.config = config
        self.gateway = GatewayClock(wall_clock)
        document = dict(config.exchange_info) if config.exchange_info is not None else load_exchange_info()
        self.exchange_info_document = document
        candles: Mapping[str, Sequence[Candle]] = config.candles
        if not candles:
            raise ValueError("the server needs candles to replay (give --data files)")
        known = {entry["symbol"] for entry in document.get("symbols", [])}
        unknown = sorted(set(candles) - known)
        if unknown:
            raise ValueError(f"no exchangeInfo entry for {', '.join(unknown)}: the server trades only "
                             f"{', '.join(sorted(known))}")
        credentials = list(config.credentials) or [Credentials.generate()]
        if len({c.api_key for c in credentials}) != len(credentials):
            raise ValueError("every API key must be different")
        saved = None
        if config.state_file is not None and config.state_file.exists():
            saved = persistence.read(config.state_file, {c.api_key for c in credentials})
        first = min(series[0].open_time for series in candles.values() if series)
        if saved is not None:
            self.data_shift_ms = int(saved["data_shift_ms"])
        elif config.start_now:
            now_minute = self.gateway.now_ms() // MINUTE_MS * MINUTE_MS
            self.data_shift_ms = now_minute - config.history_minutes * MINUTE_MS - first
        else:
            self.data_shift_ms = 0
        if self.data_shift_ms:
            candles = _shift(candles, self.data_shift_ms)
        first_open = first + self.data_shift_ms
        self.exchange_clock = SimulatedClock(int(saved["exchange_time"]) if saved is not None else first_open)
        self.accounts: dict[str, Account] = {}
        for number, credential in enumerate(credentials, start=1):
            snapshot = saved["accounts"].get(credential.api_key) if saved is not None else None
            if snapshot is not None:
                exchange = SimExchange.restore(snapshot, clock=self.exchange_clock)
            else:
                exchange = SimExchange.from_exchange_info(document, clock=self.exchange_clock,
                                                          config=config.sim_config, initial_balance=config.balance)
            self.accounts[credential.api_key] = Account(credential, exchange, OrderLimiter(config.rate_limits),
                                                        f"account{number}")
        self.replay = MarketReplay(candles, [a.exchange for a in self.accounts.values()], self.exchange_clock)
        start = int(saved["market_time"]) if saved is not None else first_open + config.history_minutes * MINUTE_MS
        self.market_clock = MarketClock(start, config.speed, elapsed_clock)
        self.hub = ConnectionHub(config.connection_rules)
        self.user_streams = UserStreams(wall_now=self.gateway.now_ms, market_now=self.market_clock.now_ms,
                                        lifetime_ms=config.listen_key_lifetime_ms)
        self.market_streams = MarketStreams(self.replay, lambda: self.reference_exchange,
                                            max_streams=config.connection_rules.max_streams,
                                            market_now=self.market_clock.now_ms, wall_now=self.gateway.now_ms)
        self.faults = Faults(self.gateway, self.hub, self.user_streams, self.gateway.now_ms)
        self.orders_received = OrderLog(config.order_log)
        self.ip_limiter = IpLimiter(config.rate_limits)
        self._gateway = Gateway(self)
        for account in self.accounts.values():
            account.exchange.add_listener(partial(self.user_streams.publish, account.api_key))
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()
        self._last_save_ms = 0
        self._dirty = False
        self.host = "127.0.0.1"
        self.port = 0
        if saved is not None:
            self.replay.skip_to(self.market_clock.now_ms())
            self.user_streams.restore(saved.get("listen_keys", []))
            self.replay.restore_funding(saved.get("funding", {}))
            logger.info("state restored from %s: market time %d, %d account(s)", config.state_file,
                        self.market_clock.now_ms(), len(saved["accounts"]))
        else:
            self.replay.advance_to(self.market_clock.now_ms())

    # ---------------------------------------------------------------------------------------------- views
    @property
    def reference_exchange(self) -> SimExchange:
        """The first account's exchange: market-wide figures (mark, funding) are the same in every account."""
        return next(iter(self.accounts.values())).exchange

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.reference_exchange.symbols

    @property
    def sim_config(self) -> SimConfig:
        return self.config.sim_config

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def market_ws_url(self) -> str:
        return f"{self.ws_url}/market"

    @property
    def private_ws_url(self) -> str:
        return f"{self.ws_url}/private"

    def account(self, api_key: str | None = None) -> Account:
        """The account of ``api_key`` (the first one when None)."""
        if api_key is None:
            return next(iter(self.accounts.values()))
        return self.accounts[api_key]

    def exchange(self, api_key: str | None = None) -> SimExchange:
        return self.account(api_key).exchange

    # ---------------------------------------------------------------------------------------------- lifecycle
    def application(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        for route in ("market", "public"):
            app.router.add_get(f"/{route}/ws", partial(self._market_socket, route=route, combined=False))
            app.router.add_get(f"/{route}/ws/{{streams:.+}}", partial(self._market_socket, route=route,
                                                                      combined=False))
            app.router.add_get(f"/{route}/stream", partial(self._market_socket, route=route, combined=True))
        app.router.add_get("/ws", partial(self._market_socket, route="unrouted", combined=False))
        app.router.add_get("/ws/{streams:.+}", partial(self._market_socket, route="unrouted", combined=False))
        app.router.add_get("/stream", partial(self._market_socket, route="unrouted", combined=True))
        app.router.add_get("/private/ws", partial(self._private_socket, combined=False))
        app.router.add_get("/private/ws/{listen_key}", partial(self._private_socket, combined=False))
        app.router.add_get("/private/stream", partial(self._private_socket, combined=True))
        admin.add_routes(app, self)
        app.router.add_route("*", "/{tail:.*}", self._gateway.handle)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host``:``port`` (0: a free port; see ``port`` afterwards) and start the ticker."""
        self._runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.host = host
        self.port = int(self._runner.addresses[0][1]) if self._runner.addresses else port
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
        logger.info("simulator server listening on %s (market clock %s)", self.rest_url,
                    "stepped" if self.market_clock.stepped else f"{self.market_clock.speed:g} x real time")

    async def stop(self) -> None:
        """Stop the ticker, save the state (with ``state_file``), close every connection and the listener."""
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        if self.config.state_file is not None:
            self.save_state()
        self.orders_received.close()
        for connection in self.hub.all():
            connection.drop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _tick_loop(self) -> None:
        interval = self.config.tick_interval_ms / 1000
        while True:
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the ticker must survive any single failure
                logger.exception("server tick failed")
            await asyncio.sleep(interval)

    # ---------------------------------------------------------------------------------------------- time
    def sync_market(self) -> None:
        """Bring the exchanges up to the market clock (every candle closed by now fed), before a request runs."""
        self.replay.advance_to(self.market_clock.now_ms())
        self._dirty = True

    def tick(self) -> None:
        """Everything due now: candles closing, stream frames, listenKey expiry, pings, cuts, state saves."""
        market_now = self.market_clock.now_ms()
        self.replay.advance_to(market_now)
        self.market_streams.tick()
        self.user_streams.tick()
        blackout = self.faults.blackout_active()
        for connection in self.hub.tick(self.gateway.now_ms(), market_now, pings_allowed=not blackout):
            self._close_later(connection)
        if self.config.state_file is not None and self._dirty:
            now = self.gateway.now_ms()
            if now - self._last_save_ms >= self.config.save_interval_ms:
                self.save_state()

    def _close_later(self, connection: StreamConnection) -> None:
        task = asyncio.get_running_loop().create_task(connection.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def advance(self, delta_ms: int) -> int:
        """Stepped clock: move market time forward by ``delta_ms``, do what is due, wait until frames are out."""
        now = self.market_clock.advance(delta_ms)
        self.tick()
        await self.drain()
        return now

    async def advance_to(self, market_ms: int) -> int:
        return await self.advance(market_ms - self.market_clock.now_ms())

    async def drain(self) -> None:
        """Wait until every connection has written what it has queued (and pending closes are done)."""
        for connection in self.hub.all():
            await connection.drained()
        if self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    # ---------------------------------------------------------------------------------------------- faults
    async def wait_out_blackout(self) -> None:
        while self.faults.blackout_active() and not self._stopping.is_set():
            await asyncio.sleep(0.01)

    async def hold(self, request: web.Request, hold_ms: int) -> None:
        """Keep a request unanswered for ``hold_ms`` of real time, or until the client or the server gives up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + hold_ms / 1000
        while loop.time() < deadline and not self._stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(0.01)

    # ---------------------------------------------------------------------------------------------- sockets
    async def _blocked_handshake(self, request: web.Request) -> web.StreamResponse | None:
        if not self.faults.blackout_active():
            return None
        await self.wait_out_blackout()
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=204)

    async def _market_socket(self, request: web.Request, *, route: str, combined: bool) -> web.StreamResponse:
        blocked = await self._blocked_handshake(request)
        if blocked is not None:
            return blocked
        if combined:
            initial = [name for name in request.query.get("streams", "").split("/") if name]
        else:
            initial = [name for name in request.match_info.get("streams", "").split("/") if name]
        return await self._serve(request, self.market_streams, route, combined, initial, None)

    async def _private_socket(self, request: web.Request, *, combined: bool) -> web.StreamResponse:
        blocked = await self._blocked_handshake(request)
        if blocked is not None:
            return blocked
        key = request.query.get("listenKey") or request.match_info.get("listen_key")
        if key is not None and not self.user_streams.is_active(key):
            return error_response(errors.invalid_listen_key())
        events_text = request.query.get("events")
        events = frozenset(e for e in events_text.split("/") if e) if events_text else None
        return await self._serve(request, self.user_streams, "private", combined, [key] if key else [], events)

    async def _serve(self, request: web.Request, handler: MarketStreams | UserStreams, route: str, combined: bool,
                     initial: list[str], events: frozenset[str] | None) -> web.StreamResponse:
        if len(initial) > self.config.connection_rules.max_streams:
            return error_response(BinanceError(-1101, "Too many streams in one connection."))
        try:
            return await serve_connection(self.hub, handler, request, route, combined, initial,
                                          market_now=self.market_clock.now_ms(), wall_now=self.gateway.now_ms(),
                                          clock_now=self.gateway.now_ms, events=events)
        except web.HTTPException as exc:  # not a WebSocket handshake at all
            return error_response(BinanceError(-1000, f"WebSocket handshake refused: {exc.reason}",
                                                      http_status=400))

    # ---------------------------------------------------------------------------------------------- state
    def save_state(self) -> None:
        """Write the state file now (the ticker does it at most every ``save_interval_ms``, and ``stop`` does)."""
        if self.config.state_file is not None:
            persistence.save(self, self.config.state_file)
            self._last_save_ms = self.gateway.now_ms()
            self._dirty = False
