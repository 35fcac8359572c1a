"""WebSocket connections as Binance runs them: one send queue each, server pings, pong deadline, the 24 h cut.

A ``StreamConnection`` wraps one aiohttp WebSocket: frames are queued without blocking the producer and written
by the connection's own task, in order; a client that lets its queue grow past ``max_queued`` frames is cut off,
as Binance drops slow consumers. ``ConnectionHub`` keeps every open connection and, on each tick, pings them
(every 3 min of real time by default), closes those that have not ponged for 10 min, counts incoming messages
(more than 10 a second closes the connection) and cuts connections open for 24 h of market time. Fault switches
drop connections abruptly (no close frame), or silence them (nothing sent, nothing closed).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from simulator.server.ws_control import ControlError, RequestId, read_control_frame, result_frame

logger = logging.getLogger("simulator.server.connections")

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class ConnectionRules:
    """Binance's connection rules (tests shorten the real-time ones)."""

    ping_interval_ms: int = 180_000        # real time
    pong_timeout_ms: int = 600_000         # real time
    max_lifetime_market_ms: int = 24 * HOUR_MS  # market time
    max_incoming_per_second: int = 10
    max_streams: int = 1024
    max_queued: int = 50_000


class SendGate:
    """Shared by every connection: closed while the server "stops answering altogether" (a blackout)."""

    __slots__ = ("paused",)

    def __init__(self) -> None:
        self.paused = False


class StreamConnection:
    """One open WebSocket: its route, its subscriptions, and an ordered send queue written by its own task."""

    __slots__ = ("id", "route", "combined", "ws", "opened_market_ms", "last_pong_ms", "last_ping_ms",
                 "incoming_second", "incoming_count", "subscriptions", "events_filter", "silent", "closed",
                 "_queue", "_wakeup", "_writer", "max_queued", "frames_sent", "_transport", "_gate")

    def __init__(self, connection_id: int, route: str, combined: bool, ws: web.WebSocketResponse,
                 transport: asyncio.BaseTransport | None, market_now: int, wall_now: int, max_queued: int,
                 gate: SendGate) -> None:
        self.id = connection_id
        self._gate = gate
        self._transport = transport
        self.route = route                  # market | public | private | unrouted
        self.combined = combined            # frames wrapped as {"stream": ..., "data": ...}
        self.ws = ws
        self.opened_market_ms = market_now
        self.last_pong_ms = wall_now
        self.last_ping_ms = wall_now
        self.incoming_second = -1
        self.incoming_count = 0
        self.subscriptions: dict[str, None] = {}  # stream names (or listenKeys), in subscription order
        self.events_filter: frozenset[str] | None = None
        self.silent = False
        self.closed = False
        self.max_queued = max_queued
        self.frames_sent = 0
        self._queue: deque[str] = deque()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def start_writer(self) -> None:
        """Start writing (once the handshake is done; frames queued before wait for it)."""
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def send(self, text: str) -> None:
        """Queue a text frame (dropped when the connection is silenced or closed)."""
        if self.silent or self.closed or self._gate.paused:
            return
        queue = self._queue
        queue.append(text)
        if len(queue) > self.max_queued:
            logger.warning("connection %s is not reading (%d frames queued): cut off", self.id, len(queue))
            self.drop()
            return
        self._wakeup.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def _write_loop(self) -> None:
        queue = self._queue
        ws = self.ws
        try:
            while not self.closed:
                await self._wakeup.wait()
                self._wakeup.clear()
                while queue and not self.closed:
                    await ws.send_str(queue.popleft())
                    self.frames_sent += 1
        except (ConnectionResetError, RuntimeError, asyncio.CancelledError):
            pass
        except Exception:  # noqa: BLE001 - a broken socket ends this writer, never the server
            logger.exception("writer of connection %s failed", self.id)

    async def drained(self) -> None:
        """Wait until every queued frame has been written (or the connection is gone)."""
        spins = 0
        while self._queue and not self.closed:
            spins += 1  # a client that reads slowly holds the writer: stop spinning after a while
            await asyncio.sleep(0 if spins < 100 else 0.005)

    def drop(self) -> None:
        """Cut the TCP connection without a close frame (what a network failure looks like)."""
        self.closed = True
        self._queue.clear()
        self._wakeup.set()
        if isinstance(self._transport, asyncio.Transport):
            self._transport.abort()

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        """Close with a close frame after the frames already queued."""
        if self.closed:
            return
        await self.drained()
        self.closed = True
        self._wakeup.set()
        try:
            await self.ws.close(code=code, message=message)
        except (ConnectionResetError, RuntimeError):
            pass

    async def stop_writer(self) -> None:
        self.closed = True
        self._wakeup.set()
        if self._writer is None:
            return
        self._writer.cancel()
        try:
            await self._writer
        except asyncio.CancelledError:
            pass

    def count_incoming(self, wall_now: int, limit: int) -> bool:
        """Count one incoming message; False once more than ``limit`` arrived within one second."""
        second = wall_now // 1000
        if second != self.incoming_second:
            self.incoming_second = second
            self.incoming_count = 0
        self.incoming_count += 1
        return self.incoming_count <= limit


class ConnectionHub:
    """Every open connection, the timed rules that apply to them, and the connection fault switches."""

    def __init__(self, rules: ConnectionRules) -> None:
        self.rules = rules
        self._ids = itertools.count(1)
        self.connections: dict[int, StreamConnection] = {}
        self.silenced_routes: set[str] = set()
        self.gate = SendGate()

    def open(self, route: str, combined: bool, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None,
             market_now: int, wall_now: int) -> StreamConnection:
        connection = StreamConnection(next(self._ids), route, combined, ws, transport, market_now, wall_now,
                                      self.rules.max_queued, self.gate)
        if route in self.silenced_routes or "*" in self.silenced_routes:
            connection.silent = True
        self.connections[connection.id] = connection
        return connection

    def forget(self, connection: StreamConnection) -> None:
        self.connections.pop(connection.id, None)

    def select(self, route: str | None = None, connection_id: int | None = None) -> list[StreamConnection]:
        return [c for c in self.connections.values()
                if (route is None or c.route == route) and (connection_id is None or c.id == connection_id)]

    # ----------------------------------------------------------------------------------------- fault switches
    def drop(self, route: str | None = None, connection_id: int | None = None, only_one: bool = False) -> int:
        """Cut connections abruptly; returns how many."""
        chosen = self.select(route, connection_id)
        if only_one:
            chosen = chosen[:1]
        for connection in chosen:
            connection.drop()
        return len(chosen)

    def silence(self, route: str | None = None, connection_id: int | None = None, only_one: bool = False,
                *, new_ones_too: bool = False) -> int:
        """Stop sending on connections without closing them (no frames, no pings); returns how many."""
        chosen = self.select(route, connection_id)
        if only_one:
            chosen = chosen[:1]
        for connection in chosen:
            connection.silent = True
            connection._queue.clear()  # noqa: SLF001 - what was not yet sent is never sent
        if new_ones_too:
            self.silenced_routes.add(route or "*")
        return len(chosen)

    def unsilence(self) -> None:
        self.silenced_routes.clear()
        for connection in self.connections.values():
            connection.silent = False

    # ----------------------------------------------------------------------------------------- timed rules
    def tick(self, wall_now: int, market_now: int, *, pings_allowed: bool = True) -> list[StreamConnection]:
        """Ping, enforce the pong deadline and the 24 h cut; returns the connections to close."""
        rules = self.rules
        to_close = []
        for connection in list(self.connections.values()):
            if connection.closed:
                continue
            if market_now - connection.opened_market_ms >= rules.max_lifetime_market_ms:
                to_close.append(connection)
                continue
            if wall_now - connection.last_pong_ms > rules.pong_timeout_ms:
                logger.info("connection %s has not answered a ping for %d ms: closed", connection.id,
                            wall_now - connection.last_pong_ms)
                to_close.append(connection)
                continue
            due = wall_now - connection.last_ping_ms >= rules.ping_interval_ms
            if due and pings_allowed and not connection.silent and not self.gate.paused:
                connection.last_ping_ms = wall_now
                asyncio.get_running_loop().create_task(_ping(connection))
        return to_close

    def all(self) -> Iterable[StreamConnection]:
        return list(self.connections.values())


async def _ping(connection: StreamConnection) -> None:
    try:
        await connection.ws.ping()
    except (ConnectionResetError, RuntimeError):
        pass


def deliver(subscribers: Mapping[int, StreamConnection], stream: str, data: str,
            event_type: str | None = None) -> None:
    """Send one serialized payload to ``subscribers``: raw, or wrapped ``{"stream": ..., "data": ...}`` on combined
    connections (built once); with ``event_type``, connections whose ``events`` filter excludes it are skipped."""
    wrapped = None
    for connection in list(subscribers.values()):
        wanted = connection.events_filter
        if event_type is not None and wanted is not None and event_type not in wanted:
            continue
        if connection.combined:
            if wrapped is None:
                wrapped = f'{{"stream":"{stream}","data":{data}}}'
            connection.send(wrapped)
        else:
            connection.send(data)


class StreamHandler:
    """What a route does with its connections (market streams, user data); the hub runs the read loop and this
    base answers the control frames both routes share."""

    def opened(self, connection: StreamConnection) -> None:
        """A connection was accepted (its initial subscriptions, from the URL, are in ``subscriptions``)."""

    def closed(self, connection: StreamConnection) -> None:
        """The connection is gone: forget its subscriptions."""

    def subscribe(self, connection: StreamConnection, names: list[str], request_id: RequestId) -> ControlError | None:
        """Add ``names`` to the connection (or say why not)."""
        raise NotImplementedError

    def unsubscribed(self, connection: StreamConnection, name: str) -> None:
        """``name`` was removed from the connection's subscriptions."""

    def control(self, connection: StreamConnection, text: str) -> str | None:
        """A text frame from the client; returns the answer frame."""
        try:
            request = read_control_frame(text)
        except ControlError as error:
            return error.frame()
        method = request.method
        if method == "SUBSCRIBE":
            names = [name for name in request.params if name not in connection.subscriptions]
            refused = self.subscribe(connection, names, request.request_id)
            return refused.frame() if refused is not None else result_frame(None, request.request_id)
        if method == "UNSUBSCRIBE":
            for name in request.params:
                if name in connection.subscriptions:
                    del connection.subscriptions[name]
                    self.unsubscribed(connection, name)
            return result_frame(None, request.request_id)
        if method == "LIST_SUBSCRIPTIONS":
            return result_frame(list(connection.subscriptions), request.request_id)
        if method == "SET_PROPERTY":
            connection.combined = bool(request.params[1])
            return result_frame(None, request.request_id)
        return result_frame(connection.combined, request.request_id)


async def serve_connection(hub: ConnectionHub, handler: StreamHandler, request: web.Request, route: str,
                           combined: bool, initial: Iterable[str], *, market_now: int, wall_now: int,
                           clock_now: Callable[[], int], events: frozenset[str] | None = None
                           ) -> web.WebSocketResponse:
    """Accept the WebSocket, subscribe ``initial``, then read the client's frames until it goes."""
    ws = web.WebSocketResponse(autoping=False, max_msg_size=65_536)
    # Subscribed before the handshake completes, so a client that has connected is already subscribed.
    connection = hub.open(route, combined, ws, request.transport, market_now, wall_now)
    connection.events_filter = events
    for name in initial:
        connection.subscriptions[name] = None
    handler.opened(connection)
    try:
        await ws.prepare(request)
    except BaseException:
        handler.closed(connection)
        hub.forget(connection)
        raise
    connection.start_writer()
    rules = hub.rules
    try:
        async for message in ws:
            now = clock_now()
            if not connection.count_incoming(now, rules.max_incoming_per_second):
                logger.info("connection %s sent more than %d messages in a second: closed", connection.id,
                            rules.max_incoming_per_second)
                await connection.close(code=1008, message=b"Too many messages")
                break
            if message.type is WSMsgType.TEXT:
                answer = handler.control(connection, message.data)
                if answer is not None:
                    connection.send(answer)
            elif message.type is WSMsgType.PING:
                if not connection.silent and not hub.gate.paused:
                    await ws.pong(message.data)
            elif message.type is WSMsgType.PONG:
                connection.last_pong_ms = now
            elif message.type is WSMsgType.BINARY:
                await connection.close(code=1003, message=b"Binary frames are not supported")
                break
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        handler.closed(connection)
        hub.forget(connection)
        await connection.stop_writer()
        if not ws.closed:
            try:
                await ws.close()
            except (ConnectionResetError, RuntimeError):
                pass
    return ws
