"""Market streams on ``/market``: ``<symbol>@kline_1m``, ``<symbol>@markPrice[@1s]``, ``!markPrice@arr[@1s]``.

Subscriptions come from the URL (``/market/ws/<stream>``, ``/market/stream?streams=a/b``) or from live
SUBSCRIBE / UNSUBSCRIBE frames; LIST_SUBSCRIPTIONS and the ``combined`` property work as on Binance. Only
connections on the ``/market`` route receive market data: the same names asked for on ``/public`` or an unrouted
path are acknowledged and deliver nothing, as on Binance since April 2026. Kline frames: every candle's close
(``x=true``) always, and while it forms at most one update per 250 ms of real time per symbol. Mark-price frames:
one per 3 s (``@markPrice``) or 1 s (``@1s``) of market time, the latest only when the clock jumps further; the
mark is the exchange's (the last close), funding rate and next funding time are the exchange's too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from simulator.engine import SimExchange
from simulator.server.connections import StreamConnection, StreamHandler, deliver
from simulator.server.replay import KlineView, MarketReplay
from simulator.server.rest_bodies import eight_decimals
from simulator.server.ws_control import ControlError, RequestId
from utils.domain import Candle

_KLINE = re.compile(r"([a-z0-9]+)@kline_(1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)")
_MARK = re.compile(r"([a-z0-9]+)@markPrice(@1s)?")
_ALL_MARKS = re.compile(r"!markPrice@arr(@1s)?")
FORMING_THROTTLE_MS = 250
_COMPACT = (",", ":")


def _text(value: Decimal) -> str:
    return format(value, "f")


def kline_payload(view: KlineView, event_time: int) -> dict[str, Any]:
    candle = view.candle
    return {
        "e": "kline", "E": event_time, "s": candle.symbol,
        "k": {
            "t": candle.open_time, "T": candle.close_time, "s": candle.symbol, "i": candle.interval,
            "f": view.first_trade_id, "L": view.last_trade_id,
            "o": _text(candle.open), "c": _text(candle.close), "h": _text(candle.high), "l": _text(candle.low),
            "v": _text(candle.volume), "n": candle.trades, "x": candle.closed, "q": _text(candle.quote_volume),
            "V": _text(candle.taker_buy_volume), "Q": _text(candle.taker_buy_quote_volume), "B": "0",
        },
    }


def mark_price_payload(exchange: SimExchange, symbol: str, event_time: int) -> dict[str, Any]:
    mark = eight_decimals(exchange.mark_price(symbol))
    return {"e": "markPriceUpdate", "E": event_time, "s": symbol, "p": mark, "ap": mark, "i": mark, "P": mark,
            "r": eight_decimals(exchange.funding_rate(symbol)), "T": exchange.next_funding_time(symbol)}


def is_deliverable(name: str) -> bool:
    """A stream this server produces (on the /market route)."""
    return (_KLINE.fullmatch(name) is not None and name.endswith("@kline_1m")) or _MARK.fullmatch(
        name) is not None or _ALL_MARKS.fullmatch(name) is not None


class MarketStreams(StreamHandler):
    """Who is subscribed to which market stream, and the frames sent to them."""

    def __init__(self, replay: MarketReplay, reference: Callable[[], SimExchange], *, max_streams: int = 1024,
                 market_now: Callable[[], int], wall_now: Callable[[], int]) -> None:
        self._replay = replay
        self._reference = reference
        self._max_streams = max_streams
        self._market_now = market_now
        self._wall_now = wall_now
        self._subscribers: dict[str, dict[int, StreamConnection]] = {}
        self._forming_sent_wall: dict[str, int] = {}
        self._forming_sent_market: dict[str, int] = {}
        self._mark_buckets: dict[str, int] = {}
        self._symbols = {symbol.lower(): symbol for symbol in replay.symbols}
        replay.on_closed(self._candle_closed)

    # ------------------------------------------------------------------------------------------ subscriptions
    def opened(self, connection: StreamConnection) -> None:
        for name in list(connection.subscriptions):
            self._add(connection, name)

    def closed(self, connection: StreamConnection) -> None:
        for name in connection.subscriptions:
            self._remove(connection, name)

    def _add(self, connection: StreamConnection, name: str) -> None:
        connection.subscriptions[name] = None
        if connection.route == "market" and is_deliverable(name):
            self._subscribers.setdefault(name, {})[connection.id] = connection

    def _remove(self, connection: StreamConnection, name: str) -> None:
        subscribers = self._subscribers.get(name)
        if subscribers is not None:
            subscribers.pop(connection.id, None)
            if not subscribers:
                del self._subscribers[name]

    def subscribe(self, connection: StreamConnection, names: list[str], request_id: RequestId) -> ControlError | None:
        if len(connection.subscriptions) + len(names) > self._max_streams:
            return ControlError(2, f"Invalid request: a connection can hold at most {self._max_streams} streams",
                                request_id)
        for name in names:
            self._add(connection, name)
        return None

    def unsubscribed(self, connection: StreamConnection, name: str) -> None:
        self._remove(connection, name)

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    # ------------------------------------------------------------------------------------------ frames
    @staticmethod
    def _deliver(subscribers: dict[int, StreamConnection], name: str, payload: Any) -> None:
        deliver(subscribers, name, json.dumps(payload, separators=_COMPACT))

    def _candle_closed(self, candle: Candle, view: KlineView, event_time: int) -> None:
        name = f"{candle.symbol.lower()}@kline_1m"
        subscribers = self._subscribers.get(name)
        self._forming_sent_market[candle.symbol] = event_time
        if subscribers:
            self._deliver(subscribers, name, kline_payload(view, event_time))

    def tick(self) -> None:
        """Send what is due: forming klines (throttled on real time) and mark prices (on market time)."""
        if not self._subscribers:
            return
        market_now = self._market_now()
        wall_now = self._wall_now()
        for name, subscribers in list(self._subscribers.items()):
            if not subscribers:
                continue
            match = _KLINE.fullmatch(name)
            if match is not None:
                self._forming(name, self._symbols.get(match.group(1)), subscribers, market_now, wall_now)
                continue
            match = _MARK.fullmatch(name)
            if match is not None:
                symbol = self._symbols.get(match.group(1))
                if symbol is not None and self._due(name, 1000 if match.group(2) else 3000, market_now):
                    exchange = self._reference()
                    if exchange.last_price(symbol):
                        self._deliver(subscribers, name, mark_price_payload(exchange, symbol, market_now))
                continue
            match = _ALL_MARKS.fullmatch(name)
            if match is not None and self._due(name, 1000 if match.group(1) else 3000, market_now):
                exchange = self._reference()
                payload = [mark_price_payload(exchange, symbol, market_now) for symbol in self._replay.symbols
                           if exchange.last_price(symbol)]
                if payload:
                    self._deliver(subscribers, name, payload)

    def _due(self, name: str, cadence_ms: int, market_now: int) -> bool:
        bucket = market_now // cadence_ms
        if self._mark_buckets.get(name) == bucket:
            return False
        self._mark_buckets[name] = bucket
        return True

    def _forming(self, name: str, symbol: str | None, subscribers: dict[int, StreamConnection], market_now: int,
                 wall_now: int) -> None:
        if symbol is None:
            return
        if wall_now - self._forming_sent_wall.get(symbol, -FORMING_THROTTLE_MS) < FORMING_THROTTLE_MS:
            return
        if self._forming_sent_market.get(symbol, -1) >= market_now:
            return
        view = self._replay.kline_at(symbol, market_now)
        if view is None:
            return
        self._forming_sent_wall[symbol] = wall_now
        self._forming_sent_market[symbol] = market_now
        self._deliver(subscribers, name, kline_payload(view, market_now))
