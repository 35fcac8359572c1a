"""hypothesis against the request parser and the whole gateway: no input gets anything but a Binance-shaped answer
(``{"code": int, "msg": str}`` on errors), never a 500 or a traceback. Valid signatures are generated too, so fuzzed
values reach the endpoints and the matching engine behind them."""

from __future__ import annotations

import asyncio
import json
import string
import time
from urllib.parse import quote

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.server import ServerConfig, SimServer
from simulator.server.endpoints import ENDPOINTS, SIGNED_PARAMS
from simulator.server.params import Kind, Param, read_parameters, validate
from simulator.server.ratelimit import RateLimitConfig
from simulator.server.ws_control import ControlError, ControlRequest, read_control_frame
from tests.sim_server import TEST_API_KEY, TEST_API_SECRET, TEST_CREDENTIALS, default_candles, sign
from utils.errors import BinanceError

NAMES = sorted({p.name for e in ENDPOINTS.values() for p in (*e.params, *SIGNED_PARAMS)})
VALUES = ["BTCUSDT", "ETHUSDT", "BUY", "SELL", "LIMIT", "MARKET", "STOP_MARKET", "GTC", "IOC", "FOK", "GTX", "true",
          "false", "0", "1", "0.001", "0.010", "30000", "28000.0", "1e-05", "-1", "", "1" * 25, "0." + "1" * 25,
          "BOTH", "LONG", "SHORT", "CONDITIONAL", "MARK_PRICE", "ISOLATED", "CROSSED", "RESULT", "ACK", "9" * 19]
PATHS = sorted({e.path for e in ENDPOINTS.values()}) + ["/", "/fapi/v1/", "/admin/status", "/fapi/v9/x"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]

value = st.one_of(st.sampled_from(VALUES), st.text(max_size=30),
                  st.text(alphabet=string.digits + ".-eE", max_size=25))
name = st.one_of(st.sampled_from(NAMES), st.text(max_size=12))
pairs = st.lists(st.tuples(name, value), max_size=12)


def _encode(items: list[tuple[str, str]], raw: bool) -> str:
    if raw:  # what a careless or hostile client might send: unescaped, odd separators
        return "&".join(f"{k}={v}" for k, v in items)
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in items)


@settings(max_examples=500, deadline=None)
@given(query=st.text(max_size=200), body=st.text(max_size=200))
def test_the_parser_answers_every_input_with_values_or_a_binance_error(query: str, body: str):
    for endpoint in ENDPOINTS.values():
        try:
            validate(endpoint.params + SIGNED_PARAMS, read_parameters(query, body))
        except BinanceError as error:
            assert isinstance(error.code, int) and error.code < 0 and error.msg and error.http_status == 400


@settings(max_examples=300, deadline=None)
@given(items=pairs)
def test_the_parser_on_parameter_like_input(items: list[tuple[str, str]]):
    for endpoint in ENDPOINTS.values():
        try:
            values = validate(endpoint.params, read_parameters(_encode(items, False), ""))
        except BinanceError as error:
            assert error.code in (-1100, -1101, -1102, -1104, -1105, -1106, -1115, -1116, -1117, -1120)
        else:
            assert set(values) <= {p.name for p in endpoint.params}


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(st.text(max_size=300), st.builds(json.dumps, st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(
        ["method", "params", "id", "x"]), children, max_size=4), max_leaves=12))))
def test_control_frames_are_read_or_refused_binance_style(text: str):
    try:
        request = read_control_frame(text)
    except ControlError as error:
        frame = json.loads(error.frame())
        assert set(frame) == {"error", "id"} and isinstance(frame["error"]["code"], int)
    else:
        assert isinstance(request, ControlRequest)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(METHODS), path=st.sampled_from(PATHS), query=pairs, body=pairs,
       raw=st.booleans(), signed=st.booleans(), key=st.sampled_from([TEST_API_KEY, "", "other", "x y"]))
def test_the_gateway_never_answers_500(method, path, query, body, raw, signed, key):
    loop, server, session = _LIVE
    query_text = _encode(query, raw)
    body_text = _encode(body, raw)
    if signed:
        extra = f"timestamp={time.time_ns() // 1_000_000}"
        query_text = f"{query_text}&{extra}" if query_text else extra
        query_text += f"&signature={sign(TEST_API_SECRET, query_text + body_text)}"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if key:
        headers["X-MBX-APIKEY"] = key
    url = f"{server.rest_url}{path}?{query_text}" if query_text else f"{server.rest_url}{path}"

    async def send() -> tuple[int, str]:
        async with session.request(method, url, data=body_text.encode() or None, headers=headers) as response:
            return response.status, await response.text()

    try:
        status, text = loop.run_until_complete(send())
    except (aiohttp.InvalidURL, ValueError):
        return  # the client itself refuses to send it
    assert status in (200, 400, 401, 403, 404, 418, 429, 503), (status, text)
    document = json.loads(text)
    if status != 200:
        assert isinstance(document, dict) and set(document) == {"code", "msg"}, text
        assert isinstance(document["code"], int) and isinstance(document["msg"], str)
        assert "Traceback" not in document["msg"]


ENDPOINT_LIST = sorted(ENDPOINTS.values(), key=lambda e: (e.path, e.method))
number = st.one_of(st.sampled_from(VALUES), st.decimals(allow_nan=False, allow_infinity=False, places=8).map(
    lambda d: format(abs(d), "f")), st.integers(min_value=0, max_value=10**20).map(str))


def _value_for(param: Param) -> st.SearchStrategy[str]:
    if param.kind is Kind.SYMBOL:
        return st.one_of(st.sampled_from(["BTCUSDT", "ETHUSDT", "LTCUSDT"]), st.sampled_from(VALUES))
    if param.choices:
        return st.one_of(st.sampled_from(param.choices), value)
    if param.kind is Kind.BOOL:
        return st.sampled_from(["true", "false", "TRUE", "yes"])
    return number


@st.composite
def endpoint_requests(draw: st.DrawFn) -> tuple[str, str, str, bool]:
    """A request to a real endpoint: its mandatory parameters, some optional ones, fuzzed values, signed."""
    endpoint = draw(st.sampled_from(ENDPOINT_LIST))
    chosen = [p for p in endpoint.params if p.required or draw(st.integers(0, 3)) == 0]
    items = [(param.name, draw(_value_for(param))) for param in chosen]
    in_body = endpoint.method != "GET" and draw(st.booleans())
    return endpoint.method, endpoint.path, _encode(items, False), in_body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=endpoint_requests())
def test_fuzzed_values_reach_the_engine_and_still_get_binance_answers(request):
    loop, server, session = _LIVE
    method, path, text, in_body = request
    stamp = f"timestamp={time.time_ns() // 1_000_000}"
    text = f"{text}&{stamp}" if text else stamp
    text += f"&signature={sign(TEST_API_SECRET, text)}"
    headers = {"X-MBX-APIKEY": TEST_API_KEY, "Content-Type": "application/x-www-form-urlencoded"}
    url = f"{server.rest_url}{path}" if in_body else f"{server.rest_url}{path}?{text}"

    async def send() -> tuple[int, str]:
        async with session.request(method, url, data=text.encode() if in_body else None,
                                   headers=headers) as response:
            return response.status, await response.text()

    status, answer = loop.run_until_complete(send())
    assert status in (200, 400, 503), (status, answer)  # 503: none here; 400: every refusal
    document = json.loads(answer)
    if status != 200:
        assert isinstance(document, dict) and set(document) == {"code", "msg"}, answer
    OUTCOMES[status] = OUTCOMES.get(status, 0) + 1


OUTCOMES: dict[int, int] = {}
_LIVE: tuple[asyncio.AbstractEventLoop, SimServer, aiohttp.ClientSession]


def setup_module() -> None:
    global _LIVE
    loop = asyncio.new_event_loop()
    limits = RateLimitConfig(request_weight_per_minute=10**9, orders_per_10s=10**9, orders_per_minute=10**9,
                             funding_requests_per_5min=10**9)
    server = SimServer(ServerConfig(candles=default_candles(), credentials=[TEST_CREDENTIALS], rate_limits=limits))

    async def start() -> aiohttp.ClientSession:
        await server.start()
        return aiohttp.ClientSession()

    _LIVE = (loop, server, loop.run_until_complete(start()))


def teardown_module() -> None:
    loop, server, session = _LIVE

    async def stop() -> None:
        await session.close()
        await server.stop()

    loop.run_until_complete(stop())
    loop.close()
