"""The REST client against the simulator server: exact parameters, every error class, retries, clock skew."""

from __future__ import annotations

import socket
import time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.live.conftest import make_rest
from tests.sim_server import TEST_API_KEY
from utils.domain import Side
from utils.errors import (
    AuthError,
    BinanceError,
    ErrorKind,
    NotSentError,
    OutcomeUnknownError,
)
from utils.rest import ParameterError, RestClient, encode_params, encode_value
from utils.signing import HmacSigner
from utils.timesync import TimeSync

ORDER = {"symbol": "BTCUSDT", "side": Side.BUY, "type": "LIMIT", "quantity": Decimal("0.010"),
         "price": Decimal("20000"), "timeInForce": "GTC"}


# ----------------------------------------------------------------------------------------------- encoding
@given(st.decimals(allow_nan=False, allow_infinity=False, places=None, min_value=Decimal("-1e30"),
                   max_value=Decimal("1e30")))
def test_decimals_go_out_exactly_in_plain_notation(value):
    text = encode_value("quantity", value)
    assert "E" not in text and "e" not in text
    assert Decimal(text) == value


def test_parameters_are_encoded_as_binance_expects():
    assert encode_value("q", Decimal("1E-5")) == "0.00001"
    assert encode_value("q", Decimal("10.500")) == "10.5"
    assert encode_value("p", Decimal("100")) == "100"
    assert encode_value("reduceOnly", True) == "true"
    assert encode_value("side", Side.SELL) == "SELL"
    assert encode_params({"a": 1, "b": None, "c": "x y", "d": "a/b"}) == "a=1&c=x%20y&d=a%2Fb"
    with pytest.raises(ParameterError, match="quantity"):
        encode_value("quantity", 0.1)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="price"):
        encode_value("price", Decimal("NaN"))


# -------------------------------------------------------------------------------------------- error kinds
async def test_a_refused_order_is_rejected_and_not_retried(rest, sim_server):
    sent = rest.requests
    with pytest.raises(BinanceError) as caught:
        await rest.request("POST", "/fapi/v1/order", {**ORDER, "symbol": "NOPEUSDT"}, signed=True)
    assert caught.value.kind is ErrorKind.REJECTED and caught.value.code == -1121
    assert caught.value.http_status == 400 and not caught.value.outcome_unknown
    assert rest.requests == sent + 1


@pytest.mark.parametrize("executed", [True, False])
async def test_503_unknown_error_on_post_is_outcome_unknown_and_never_resent(rest, sim_server, executed):
    sim_server.faults.unknown_error(executed=executed, path="/fapi/v1/order")
    with pytest.raises(BinanceError) as caught:
        await rest.request("POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "u1"}, signed=True)
    assert caught.value.kind is ErrorKind.OUTCOME_UNKNOWN and caught.value.http_status == 503
    orders = sim_server.exchange().open_orders("BTCUSDT")
    assert [o.client_order_id for o in orders] == (["u1"] if executed else [])


@pytest.mark.parametrize("executed", [True, False])
async def test_a_post_timeout_is_outcome_unknown_and_never_resent(sim_server, executed):
    sim_server.faults.time_out(executed=executed, path="/fapi/v1/order", hold_ms=5000)
    async with make_rest(sim_server, timeout_sec=0.5) as rest:
        with pytest.raises(OutcomeUnknownError) as caught:
            await rest.request("POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "t1"}, signed=True)
        assert caught.value.kind is ErrorKind.OUTCOME_UNKNOWN
        assert rest.requests == 1
    assert len(sim_server.exchange().open_orders("BTCUSDT")) == (1 if executed else 0)


async def test_a_get_is_retried_after_a_5xx_and_a_timeout(sim_server):
    sim_server.faults.unknown_error(executed=False, method="GET", path="/fapi/v1/openOrders")
    sim_server.faults.service_unavailable(method="GET", path="/fapi/v1/openOrders")
    async with make_rest(sim_server, timeout_sec=0.5) as rest:
        assert await rest.request("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"}, signed=True) == []
        assert rest.requests == 3
        sim_server.faults.time_out(executed=False, method="GET", path="/fapi/v1/openOrders", hold_ms=5000)
        assert await rest.request("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"}, signed=True) == []
        assert rest.requests == 5
        sim_server.faults.unknown_error(count=None, executed=False, method="GET", path="/fapi/v1/openOrders")
        with pytest.raises(BinanceError) as caught:
            await rest.request("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"}, signed=True)
        assert caught.value.outcome_unknown and rest.requests == 5 + 1 + rest.get_retries


async def test_a_throttled_order_is_rejected_not_unknown(rest, sim_server):
    sim_server.faults.throttle()
    with pytest.raises(BinanceError) as caught:
        await rest.request("POST", "/fapi/v1/order", ORDER, signed=True)
    assert caught.value.code == -1008 and caught.value.kind is ErrorKind.REJECTED


async def test_bad_signature_and_unknown_key_are_auth_errors_that_halt(sim_server):
    halted: list[AuthError] = []
    bad_secret = RestClient(sim_server.rest_url, api_key=TEST_API_KEY, signer=HmacSigner("wrong"),
                            on_auth_error=halted.append)
    async with bad_secret:
        with pytest.raises(AuthError) as caught:
            await bad_secret.request("GET", "/fapi/v1/openOrders", signed=True)
        assert caught.value.code == -1022 and caught.value.kind is ErrorKind.AUTH
        assert bad_secret.requests == 1 and halted == [caught.value]
    unknown_key = RestClient(sim_server.rest_url, api_key="x" * 64, signer=HmacSigner("wrong"))
    async with unknown_key:
        with pytest.raises(AuthError) as caught:
            await unknown_key.request("POST", "/fapi/v1/listenKey", api_key=True)
        assert caught.value.code == -2015 and caught.value.http_status == 401


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_not_sent_and_safe_to_retry():
    async with RestClient(f"http://127.0.0.1:{_closed_port()}", api_key="k", signer=HmacSigner("s"),
                          get_retries=1) as rest:
        with pytest.raises(NotSentError) as caught:
            await rest.request("POST", "/fapi/v1/order", ORDER, signed=True)
        assert caught.value.kind is ErrorKind.NOT_SENT and not caught.value.outcome_unknown
        assert rest.requests == 2  # tried again: nothing had reached the exchange


# -------------------------------------------------------------------------------------------- clock skew
@pytest.mark.parametrize("shift_ms", [10_000, -10_000])
async def test_minus_1021_resyncs_the_clock_and_retries_once(rest, sim_server, shift_ms):
    syncs = rest.time_sync.syncs
    sim_server.faults.shift_clock(shift_ms)
    body = await rest.request("POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "skew"}, signed=True)
    assert body["clientOrderId"] == "skew"
    assert rest.time_sync.syncs == syncs + 1
    assert abs(rest.time_sync.offset_ms - shift_ms) < 500
    assert rest.errors.get("clock_skew") == 1
    assert len(sim_server.exchange().open_orders("BTCUSDT")) == 1


@pytest.mark.parametrize("server_shift_ms, local_skew_ms", [(3000, 0), (-3000, 0), (0, 3000), (0, -3000)])
async def test_trades_on_with_clocks_three_seconds_apart(sim_server, server_shift_ms, local_skew_ms):
    sim_server.faults.shift_clock(server_shift_ms)
    rest = make_rest(sim_server, recv_window_ms=1000)

    def skewed() -> int:
        return time.time_ns() // 1_000_000 + local_skew_ms

    rest.time_sync = TimeSync(rest.server_time, local_clock=skewed)
    async with rest:
        await rest.time_sync.sync()
        assert abs(rest.time_sync.offset_ms - (server_shift_ms - local_skew_ms)) < 300
        for number in range(3):
            await rest.request("POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": f"c{number}"}, signed=True)
        assert rest.errors == {}
    assert len(sim_server.exchange().open_orders("BTCUSDT")) == 3


@given(st.dictionaries(st.text(alphabet="abcdefXYZ", min_size=1, max_size=6),
                       st.text(max_size=20) | st.integers() | st.booleans(), max_size=6))
def test_encoded_parameters_decode_back_to_what_was_given(params):
    from urllib.parse import parse_qsl

    text = encode_params(params)
    expected = [(name, encode_value(name, value)) for name, value in params.items()]
    assert parse_qsl(text, keep_blank_values=True) == expected if text else expected == []
