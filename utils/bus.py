"""An asyncio event bus: named channels, pattern subscriptions, bounded queues with a defined overflow policy.

Channels are dotted names (``signal.ema_crossover``, ``order.request``, ``order.update``, ``market.kline``,
``market.mark``, ``account.update``). A subscription names a glob pattern (``signal.*``, ``market.*``, ``*``)
and gets its own bounded queue. What happens when that queue is full depends on the channel:

* **Lossless** channels (everything by default, and always ``order.*``, ``signal.*``, ``account.*``):
  ``publish`` waits until the slow consumer makes room (back-pressure). Nothing is ever dropped.
* **Lossy** channels (patterns given in ``lossy``, typically ``market.*`` for a live feed that cannot be
  paused): the oldest queued event of that subscription is dropped to make room for the newest, and the drop
  is counted per subscription (``stats()``). A consumer that falls behind sees fresh data and a gap, never a
  stalled feed. Replays use no lossy channels, so a backtest is never lossy.

A **direct** subscription (``subscribe_direct``) has no queue and no task: its synchronous handler is called while
the event is published. The live shell wires its decision path this way (candle -> strategies -> signal -> the
execution core), so a decision is not four event-loop hops away from its candle (docs/benchmarks.md, live decision
latency). Direct delivery is first in, first out across the whole bus: an event published by a direct handler
(a strategy's signal, say) is delivered after every direct handler has seen the event being handled (the
candle), so each handler sees events in publish order whatever the order of subscription. A handler that raises
is logged and the others still get the event.
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("utils.bus")

#: Channel patterns that may never lose an event, whatever the bus is told.
NEVER_LOSSY = ("order.*", "signal.*", "account.*")
_PROTECTED_SAMPLES = ("order.request", "order.update", "order.cancel", "signal.strategy", "account.update")


@dataclass(frozen=True, slots=True)
class Event:
    channel: str
    payload: Any
    sequence: int


class _Subscriber:
    """What every subscription has: a name, its channel patterns, a delivery count, and a way out."""

    __slots__ = ("name", "patterns", "delivered", "closed", "_bus")

    def __init__(self, bus: EventBus, name: str, patterns: tuple[str, ...]) -> None:
        self._bus = bus
        self.name = name
        self.patterns = patterns
        self.delivered = 0
        self.closed = False

    @property
    def pattern(self) -> str:
        return ",".join(self.patterns)

    def matches(self, channel: str) -> bool:
        return any(fnmatch.fnmatchcase(channel, pattern) for pattern in self.patterns)

    def close(self) -> None:
        self._bus.unsubscribe(self)


class Subscription(_Subscriber):
    """One consumer's bounded queue on the channels matching any of its patterns, in publish order."""

    __slots__ = ("_queue", "dropped", "_in_hand")

    def __init__(self, bus: EventBus, name: str, patterns: tuple[str, ...], maxsize: int) -> None:
        super().__init__(bus, name, patterns)
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0
        self._in_hand = False

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def maxsize(self) -> int:
        return self._queue.maxsize

    async def get(self) -> Event:
        """Next event. Taking it acknowledges the previous one (see :meth:`ack`)."""
        self.ack()
        event = await self._queue.get()
        self._in_hand = True
        return event

    def get_nowait(self) -> Event | None:
        self.ack()
        try:
            event = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        self._in_hand = True
        return event

    def ack(self) -> None:
        """Mark the event in hand as fully handled (``join``/``EventBus.drain`` wait for this)."""
        if self._in_hand:
            self._in_hand = False
            self._queue.task_done()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    async def join(self) -> None:
        """Wait until everything queued so far has been taken and acknowledged by the consumer."""
        await self._queue.join()


class DirectSubscription(_Subscriber):
    """A synchronous handler called during ``publish`` for every channel matching one of its patterns."""

    __slots__ = ("handler", "failures")

    def __init__(self, bus: EventBus, name: str, patterns: tuple[str, ...], handler: Callable[[Event], None]) -> None:
        super().__init__(bus, name, patterns)
        self.handler = handler
        self.failures = 0


type _Route = tuple[tuple[Subscription, ...], tuple[DirectSubscription, ...], bool]


class EventBus:
    """Routes published events to every subscription whose pattern matches the channel."""

    def __init__(self, *, default_maxsize: int = 10_000, lossy: tuple[str, ...] = ()) -> None:
        for pattern in lossy:
            for sample in _PROTECTED_SAMPLES:
                if fnmatch.fnmatchcase(sample, pattern):
                    raise ValueError(f"channel pattern {pattern!r} would make {sample} lossy; order, signal "
                                     "and account events are never dropped")
        self._default_maxsize = default_maxsize
        self._lossy = lossy
        self._subscriptions: list[Subscription] = []
        self._direct: list[DirectSubscription] = []
        self._routes: dict[str, _Route] = {}
        self._sequence = 0
        self.published: dict[str, int] = {}
        self._direct_pending: deque[tuple[Event, tuple[DirectSubscription, ...]]] = deque()
        self._dispatching = False

    # ------------------------------------------------------------------------------------ subscribing
    def subscribe(self, pattern: str | tuple[str, ...], *, name: str | None = None,
                  maxsize: int | None = None) -> Subscription:
        """One queue for every channel matching ``pattern`` (or any of several): their events stay in order."""
        patterns = (pattern,) if isinstance(pattern, str) else tuple(pattern)
        subscription = Subscription(self, name or ",".join(patterns), patterns, maxsize or self._default_maxsize)
        self._subscriptions.append(subscription)
        self._routes.clear()
        return subscription

    def subscribe_direct(self, pattern: str | tuple[str, ...], handler: Callable[[Event], None], *,
                         name: str | None = None) -> DirectSubscription:
        """Call ``handler`` (synchronous) during publish for every channel matching ``pattern``: no queue, no
        task hop. For a consumer on the latency path that never waits (it may publish; see the module doc)."""
        if inspect.iscoroutinefunction(handler):
            raise TypeError(f"a direct handler must be synchronous, not a coroutine function ({handler!r})")
        patterns = (pattern,) if isinstance(pattern, str) else tuple(pattern)
        subscription = DirectSubscription(self, name or ",".join(patterns), patterns, handler)
        self._direct.append(subscription)
        self._routes.clear()
        return subscription

    def unsubscribe(self, subscription: _Subscriber) -> None:
        subscriptions: list[Any] = self._direct if isinstance(subscription, DirectSubscription) else self._subscriptions
        if subscription in subscriptions:
            subscriptions.remove(subscription)
            subscription.closed = True
            self._routes.clear()

    def is_lossy(self, channel: str) -> bool:
        if any(fnmatch.fnmatchcase(channel, protected) for protected in NEVER_LOSSY):
            return False
        return any(fnmatch.fnmatchcase(channel, pattern) for pattern in self._lossy)

    def _route(self, channel: str) -> _Route:
        route = self._routes.get(channel)
        if route is None:
            if not channel or any(part == "" for part in channel.split(".")):
                raise ValueError(f"bad channel name {channel!r}: use dotted words like 'order.update'")
            route = (tuple(s for s in self._subscriptions if s.matches(channel)),
                     tuple(s for s in self._direct if s.matches(channel)), self.is_lossy(channel))
            self._routes[channel] = route
        return route

    # ------------------------------------------------------------------------------------- publishing
    async def publish(self, channel: str, payload: Any) -> int:
        """Deliver to every matching subscription; waits for room on lossless channels. Returns the count."""
        subscriptions, direct, lossy = self._route(channel)
        self._sequence += 1
        event = Event(channel, payload, self._sequence)
        self.published[channel] = self.published.get(channel, 0) + 1
        for subscription in subscriptions:
            queue = subscription._queue
            if lossy:
                self._put_dropping_oldest(subscription, event)
            elif queue.full():
                await queue.put(event)  # back-pressure: the publisher waits for the slow consumer
            else:
                queue.put_nowait(event)
            subscription.delivered += 1
        if direct:
            self._deliver_direct(event, direct)
        return len(subscriptions) + len(direct)

    def publish_nowait(self, channel: str, payload: Any) -> int:
        """Publish from synchronous code. Lossless channels raise ``asyncio.QueueFull`` rather than drop."""
        subscriptions, direct, lossy = self._route(channel)
        if not lossy:
            for subscription in subscriptions:
                if subscription._queue.full():
                    raise asyncio.QueueFull(f"subscription {subscription.name!r} is full on lossless "
                                            f"channel {channel!r}; use 'await publish' for back-pressure")
        self._sequence += 1
        event = Event(channel, payload, self._sequence)
        self.published[channel] = self.published.get(channel, 0) + 1
        for subscription in subscriptions:
            if lossy:
                self._put_dropping_oldest(subscription, event)
            else:
                subscription._queue.put_nowait(event)
            subscription.delivered += 1
        if direct:
            self._deliver_direct(event, direct)
        return len(subscriptions) + len(direct)

    def _deliver_direct(self, event: Event, direct: tuple[DirectSubscription, ...]) -> None:
        """Call the direct handlers, first in first out: an event published by a handler waits in the deque
        until every handler has seen the one being delivered."""
        pending = self._direct_pending
        pending.append((event, direct))
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while pending:
                item, handlers = pending.popleft()
                for subscription in handlers:
                    if subscription.closed:
                        continue
                    subscription.delivered += 1
                    try:
                        subscription.handler(item)
                    except Exception:
                        subscription.failures += 1
                        log.exception("direct handler failed", extra={
                            "subscription": subscription.name, "channel": item.channel, "sequence": item.sequence})
        finally:
            self._dispatching = False

    @staticmethod
    def _put_dropping_oldest(subscription: Subscription, event: Event) -> None:
        queue = subscription._queue
        if queue.full():
            queue.get_nowait()
            queue.task_done()
            subscription.dropped += 1
        queue.put_nowait(event)

    # ------------------------------------------------------------------------------------ observing
    def stats(self) -> dict[str, dict[str, int | str]]:
        """Per subscription: pattern, queue depth and capacity, delivered and dropped counts (a direct one has no
        queue: its depth and capacity are 0, and it counts the events its handler raised on)."""
        stats: dict[str, dict[str, int | str]] = {
            s.name: {"pattern": s.pattern, "depth": s.depth, "maxsize": s.maxsize,
                     "delivered": s.delivered, "dropped": s.dropped}
            for s in self._subscriptions
        }
        for d in self._direct:
            stats[d.name] = {"pattern": d.pattern, "direct": 1, "depth": 0, "maxsize": 0, "delivered": d.delivered,
                             "dropped": 0, "failures": d.failures}
        return stats

    async def drain(self) -> None:
        """Wait until every subscription has handled everything published so far."""
        for subscription in list(self._subscriptions):
            await subscription.join()


Handler = Callable[[Event], Awaitable[None] | None]


async def consume(subscription: Subscription, handler: Handler, *, stop: asyncio.Event | None = None) -> None:
    """Run ``handler`` on each event of ``subscription``; an exception in the handler is logged, not fatal."""
    while stop is None or not stop.is_set():
        event = await subscription.get()
        try:
            result = handler(event)
            if asyncio.iscoroutine(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler failed", extra={"subscription": subscription.name, "channel": event.channel,
                                                   "sequence": event.sequence})
        finally:
            subscription.ack()
