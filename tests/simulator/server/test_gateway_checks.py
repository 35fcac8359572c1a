"""The gateway's checks, each answered as Binance answers it: API key, signature (HMAC and Ed25519, query + body),
timestamp vs recvWindow on the real clock, and the parameter errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from simulator.server import Credentials
from simulator.server.auth import signed_payload
from tests.sim_server import TEST_CREDENTIALS, BinanceTestClient, manual_wall_clock, sign


async def test_api_key_missing_or_malformed_is_2014_and_unknown_is_2015(sim_server):
    async with BinanceTestClient(sim_server.rest_url, api_key="") as client:
        missing = await client.signed("GET", "/fapi/v3/account")
        bad = await client.raw("GET", "/fapi/v3/account?timestamp=1&signature=x",
                               headers={"X-MBX-APIKEY": "has spaces in it"})
    async with BinanceTestClient(sim_server.rest_url, api_key="noSuchKey") as client:
        unknown = await client.signed("GET", "/fapi/v3/account")
        listen = await client.raw("POST", "/fapi/v1/listenKey")
    assert (missing.status, missing.code) == (401, -2014)
    assert (bad.status, bad.code) == (401, -2014)
    assert (unknown.status, unknown.code) == (401, -2015)
    assert unknown.body["msg"] == "Invalid API-key, IP, or permissions for action, request ip: 127.0.0.1"
    assert listen.code == -2015  # USER_STREAM endpoints need a known key too


async def test_public_endpoints_need_no_key(sim_server):
    async with BinanceTestClient(sim_server.rest_url, api_key="") as client:
        reply = await client.public("GET", "/fapi/v1/ping")
    assert (reply.status, reply.body) == (200, {})


async def test_hmac_signature_over_query_body_or_both(sim_server):
    async with BinanceTestClient(sim_server.rest_url) as client:
        in_query = await client.signed("GET", "/fapi/v2/balance")
        in_body = await client.signed("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 5},
                                      in_body=True)
        timestamp = client.clock_ms()
        query = "symbol=BTCUSDT&leverage=7"
        body = f"recvWindow=5000&timestamp={timestamp}"
        # Binance's totalParams: query string immediately followed by the body (no "&" between them).
        mixed = await client.raw("POST", f"/fapi/v1/leverage?{query}",
                                 f"{body}&signature={sign(client.secret, query + body)}")
        joined_wrongly = await client.raw("POST", f"/fapi/v1/leverage?{query}",
                                          f"{body}&signature={sign(client.secret, query + '&' + body)}")
        wrong_secret = await client.signed("GET", "/fapi/v2/balance", secret="another secret")
        tampered = await client.raw("GET", f"/fapi/v2/balance?timestamp={timestamp}&signature="
                                           f"{sign(client.secret, f'timestamp={timestamp + 1}')}")
        unsigned = await client.raw("GET", f"/fapi/v2/balance?timestamp={timestamp}")
    assert in_query.status == 200 and in_query.body[0]["asset"] == "USDT"
    assert in_body.body == {"leverage": 5, "maxNotionalValue": in_body.body["maxNotionalValue"], "symbol": "BTCUSDT"}
    assert mixed.status == 200 and mixed.body["leverage"] == 7
    assert joined_wrongly.code == -1022
    assert (wrong_secret.status, wrong_secret.code) == (400, -1022)
    assert wrong_secret.body["msg"] == "Signature for this request is not valid."
    assert tampered.code == -1022
    assert unsigned.code == -1102 and "'signature'" in unsigned.body["msg"]


def test_binance_documented_hmac_vector(payloads_dir: Path):
    vector = json.loads((payloads_dir / "signing_hmac_test_vector.json").read_text())
    credentials = Credentials(vector["apiKey"], vector["secretKey"])
    payload = signed_payload(vector["totalParams"].encode() + b"&signature=" + vector["signature"].encode(), b"")
    assert payload == vector["totalParams"].encode()
    assert credentials.verify(payload, vector["signature"])
    assert not credentials.verify(payload, vector["signature"][:-1] + "0")


async def test_ed25519_keys_sign_with_the_private_half(sim_server_factory):
    private = ECC.generate(curve="ed25519")
    public_pem = private.public_key().export_key(format="PEM")
    server = await sim_server_factory(credentials=[Credentials("edKey", ed25519_public_key_pem=public_pem)])
    signer = eddsa.new(private, "rfc8032")
    async with BinanceTestClient(server.rest_url, api_key="edKey") as client:
        text = urlencode({"timestamp": client.clock_ms()})
        good = base64.b64encode(signer.sign(text.encode())).decode()
        accepted = await client.raw("GET", f"/fapi/v2/balance?{text}&signature={quote(good, safe='')}")
        forged = base64.b64encode(eddsa.new(ECC.generate(curve="ed25519"), "rfc8032").sign(text.encode())).decode()
        refused = await client.raw("GET", f"/fapi/v2/balance?{text}&signature={quote(forged, safe='')}")
        hex_signature = await client.raw("GET", f"/fapi/v2/balance?{text}&signature={sign('x', text)}")
    assert accepted.status == 200
    assert refused.code == -1022 and hex_signature.code == -1022


def test_an_ed25519_key_must_be_a_public_key():
    private = ECC.generate(curve="ed25519")
    with pytest.raises(ValueError, match="PUBLIC"):
        Credentials("k", ed25519_public_key_pem=private.export_key(format="PEM"))
    with pytest.raises(ValueError, match="either"):
        Credentials("k")


async def test_timestamp_is_checked_against_the_real_clock(sim_server_factory):
    wall = manual_wall_clock()
    server = await sim_server_factory(wall_clock=wall)
    now = wall.now_ms()
    async with BinanceTestClient(server.rest_url) as client:
        fresh = await client.signed("GET", "/fapi/v2/balance", timestamp=now)
        almost_ahead = await client.signed("GET", "/fapi/v2/balance", timestamp=now + 999)
        ahead = await client.signed("GET", "/fapi/v2/balance", timestamp=now + 1000)
        at_window = await client.signed("GET", "/fapi/v2/balance", timestamp=now - 5000)
        stale = await client.signed("GET", "/fapi/v2/balance", timestamp=now - 5001)
        wide = await client.signed("GET", "/fapi/v2/balance", timestamp=now - 30_000, recv_window=60_000)
        too_wide = await client.signed("GET", "/fapi/v2/balance", timestamp=now, recv_window=60_001)
        wall.advance(10_000)
        late = await client.signed("GET", "/fapi/v2/balance", timestamp=now)
    assert fresh.status == almost_ahead.status == at_window.status == wide.status == 200
    assert (ahead.code, ahead.body["msg"]) == (-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    assert (stale.code, stale.body["msg"]) == (-1021, "Timestamp for this request is outside of the recvWindow.")
    assert late.code == -1021
    assert too_wide.code == -1131


async def test_market_time_does_not_enter_the_timestamp_check(sim_server):
    await sim_server.advance(120 * 60_000)  # the market is in 2023; requests are still timed on the real clock
    async with BinanceTestClient(sim_server.rest_url) as client:
        reply = await client.signed("GET", "/fapi/v2/balance")
        server_time = await client.public("GET", "/fapi/v1/time")
    assert reply.status == 200
    assert abs(server_time.body["serverTime"] - client.clock_ms()) < 2000


@pytest.mark.parametrize(("query", "code", "message"), [
    ("side=BUY&type=MARKET&quantity=1", -1102,
     "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
    ("symbol=&side=BUY&type=MARKET&quantity=1", -1102, None),
    ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1e-05", -1100,
     "Illegal characters found in parameter 'quantity'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'."),
    ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=-1", -1100, None),
    ("symbol=btc%20usdt&side=BUY&type=MARKET&quantity=1", -1100, None),
    ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001&foo=1", -1104,
     "Not all sent parameters were read; read '6' parameter(s) but was sent '7'."),
    ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001&price=", -1105, "Parameter 'price' was empty."),
    ("symbol=BTCUSDT&side=BUY&side=SELL&type=MARKET&quantity=1", -1101, "Duplicate values for a parameter detected."),
    ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001&price=30000", -1106,
     "Parameter 'price' sent when not required."),
    ("symbol=BTCUSDT&side=UP&type=MARKET&quantity=1", -1117, "Invalid side."),
    ("symbol=BTCUSDT&side=BUY&type=BEST&quantity=1", -1116, "Invalid orderType."),
    ("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=DAY&quantity=1&price=1", -1115, "Invalid timeInForce."),
    ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&reduceOnly=maybe", -1102, None),
    ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001&newClientOrderId=has%20space", -1100, None),
    ("symbol=NOPEUSDT&side=BUY&type=MARKET&quantity=1", -1121, "Invalid symbol."),
    ("symbol=BTCUSDT&side=BUY&type=STOP_MARKET&quantity=0.001", -4120, None),
])
async def test_parameter_errors(sim_server, query, code, message):
    async with BinanceTestClient(sim_server.rest_url) as client:
        timestamp = client.clock_ms()
        text = f"{query}&timestamp={timestamp}"
        reply = await client.raw("POST", f"/fapi/v1/order?{text}&signature={sign(client.secret, text)}")
    assert (reply.status, reply.code) == (400, code), reply.body
    if message is not None:
        assert reply.body["msg"] == message


async def test_unknown_paths_and_methods_are_binance_shaped(sim_server):
    async with BinanceTestClient(sim_server.rest_url) as client:
        path = await client.public("GET", "/fapi/v1/nothingHere")
        method = await client.public("PATCH", "/fapi/v1/order")
        root = await client.public("GET", "/")
    assert (path.status, path.code) == (404, -5000)
    assert method.code == -5000 and root.code == -5000


async def test_form_bodies_and_query_strings_are_both_read(sim_server):
    async with BinanceTestClient(sim_server.rest_url) as client:
        in_query = await client.signed("POST", "/fapi/v1/marginType", {"symbol": "ETHUSDT",
                                                                        "marginType": "ISOLATED"})
        in_body = await client.signed("POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT",
                                                                       "marginType": "ISOLATED"}, in_body=True)
    assert in_query.body == in_body.body == {"code": 200, "msg": "success"}
    assert sim_server.exchange().margin_type("BTCUSDT").value == "ISOLATED"


def test_credentials_from_the_command_line(tmp_path: Path):
    public = ECC.generate(curve="ed25519").public_key().export_key(format="PEM")
    (tmp_path / "key.pem").write_text(public)
    assert Credentials.from_cli("k", "s").kind == "HMAC-SHA256"
    assert Credentials.from_cli("k", f"ed25519:{tmp_path / 'key.pem'}").kind == "Ed25519"
    assert TEST_CREDENTIALS.verify(b"timestamp=1", sign(TEST_CREDENTIALS.secret, "timestamp=1").upper())
    assert not TEST_CREDENTIALS.verify(b"timestamp=1", "\u00e9" * 64)
