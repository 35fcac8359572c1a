"""hypothesis fuzzing of the live client's edges: a stream frame or a REST body of any shape either parses or
raises the parser's own error (``ValueError`` family: ``PayloadError``, JSON errors), never anything else, and a
stream keeps its state consistent after it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live.market_stream import MarketStream
from live.parse import parse_account, parse_algo_ack, parse_exchange_info_document
from live.user_stream import UserStream
from tests.live.conftest import StaticListenKeys
from utils.binance_parse import parse_premium_index, parse_rest_kline, parse_rest_order

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=5),
    max_leaves=20,
)

KLINE = {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {"t": 0, "T": 59_999, "s": "BTCUSDT", "i": "1m", "o": "1",
                                                     "c": "2", "h": "3", "l": "0.5", "v": "10", "x": True}}
MARK = {"e": "markPriceUpdate", "E": 1, "s": "BTCUSDT", "p": "100.5", "i": "100", "P": "100", "r": "0.0001",
        "T": 28_800_000}


def _mutations(frame: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A valid frame with one field (top level or inside ``k``) replaced by anything."""
    def mutate(args: tuple[str, Any, bool]) -> Any:
        key, value, inner = args
        copy = json.loads(json.dumps(frame))
        target = copy["k"] if inner and "k" in copy else copy
        target[key] = value
        return copy

    keys = sorted(set(frame) | set(frame.get("k", {})))
    return st.tuples(st.sampled_from(keys), json_values, st.booleans()).map(mutate)


def _market_stream(delivered: list[Any]) -> MarketStream:
    async def no_klines(*args: Any, **kwargs: Any) -> list[Any]:
        return []

    return MarketStream("ws://127.0.0.1:1/market", ["BTCUSDT"], fetch_klines=no_klines,
                        on_candle=delivered.append, on_mark_price=delivered.append)


def _run(coroutine: Any) -> None:
    asyncio.run(coroutine)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(frame=st.one_of(json_values, _mutations(KLINE), _mutations(MARK)), wrapped=st.booleans())
def test_market_frames_parse_or_raise_value_error(frame, wrapped):
    delivered: list[Any] = []
    stream = _market_stream(delivered)
    text = json.dumps({"stream": "btcusdt@kline_1m", "data": frame} if wrapped else frame)

    async def feed() -> None:
        try:
            await stream._on_frame(text)
        except ValueError:
            assert delivered == []
        # The stream still works after whatever came before.
        await stream._on_frame(json.dumps({"stream": "btcusdt@kline_1m", "data": {**KLINE, "k": {
            **KLINE["k"], "t": 10 * 60_000, "T": 11 * 60_000 - 1}}}))
        assert delivered[-1].open_time == 10 * 60_000

    _run(feed())


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=40))
def test_market_frames_of_any_text_raise_value_error_at_most(text):
    stream = _market_stream([])

    async def feed() -> None:
        try:
            await stream._on_frame(text)
        except ValueError:
            pass

    _run(feed())


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(frame=json_values | st.dictionaries(st.sampled_from(["e", "E", "T", "o", "a"]), json_values, max_size=5)
       .map(lambda d: {"e": "ORDER_TRADE_UPDATE", **d}))
def test_user_frames_parse_or_raise_value_error(frame):
    events: list[Any] = []

    async def feed() -> None:
        stream = UserStream(StaticListenKeys(), "ws://127.0.0.1:1/private", on_event=events.append,
                            on_interrupted=lambda reason: None)
        try:
            await stream._on_frame(json.dumps(frame))
        except ValueError:
            assert events == []

    _run(feed())


@settings(max_examples=200)
@given(body=json_values)
def test_rest_parsers_raise_only_payload_errors(body):
    for parser in (parse_rest_order, parse_algo_ack, parse_account, parse_premium_index,
                   parse_exchange_info_document, lambda b: parse_rest_kline(b, "BTCUSDT")):
        try:
            parser(body)
        except ValueError:
            pass


leaf_values = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.lists(st.integers(), max_size=2)


@settings(max_examples=150)
@given(row=st.lists(leaf_values, min_size=11, max_size=12))
def test_kline_rows_of_any_values_raise_only_payload_errors(row):
    try:
        parse_rest_kline(row, "BTCUSDT")
    except ValueError:
        pass
