"""Request signing: Binance's HMAC test vector, and Ed25519 signatures the simulator server verifies."""

from __future__ import annotations

import base64
import json
from urllib.parse import unquote

import pytest
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from simulator.server import Credentials
from utils.rest import RestClient
from utils.signing import Ed25519Signer, HmacSigner, SigningKeyError, make_signer


@pytest.mark.shared_data
def test_hmac_matches_binance_documented_vector(payloads_dir):
    vector = json.loads((payloads_dir / "signing_hmac_test_vector.json").read_text())
    signer = make_signer(vector["secretKey"])
    assert isinstance(signer, HmacSigner)
    assert signer.sign(vector["totalParams"]) == vector["signature"]


def test_hmac_query_plus_body_is_one_text():
    # Binance's mixed example: totalParams is the query immediately followed by the body, no '&' between.
    signer = HmacSigner("2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9")
    total = ("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
             "quantity=1&price=9000&recvWindow=5000&timestamp=1591702613943")
    assert signer.sign(total) == "30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4"


def _ed25519_pair() -> tuple[str, str]:
    key = ECC.generate(curve="ed25519")
    return key.export_key(format="PEM"), key.public_key().export_key(format="PEM")


def test_ed25519_signature_verifies_with_the_public_key_and_is_url_encoded():
    private_pem, public_pem = _ed25519_pair()
    signer = make_signer(private_pem.replace("\n", "\\n"))  # as one .apikey line
    assert isinstance(signer, Ed25519Signer)
    payload = "symbol=BTCUSDT&timestamp=1"
    signature = base64.b64decode(unquote(signer.signature_param(payload)))
    eddsa.new(ECC.import_key(public_pem), "rfc8032").verify(payload.encode(), signature)  # raises if wrong
    assert "+" not in signer.signature_param(payload) and "/" not in signer.signature_param(payload)


def test_bad_keys_are_refused_without_showing_them():
    with pytest.raises(SigningKeyError) as caught:
        make_signer("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----")
    assert "c2VjcmV0" not in str(caught.value)
    with pytest.raises(SigningKeyError):
        HmacSigner("")
    assert "secret" not in repr(HmacSigner("secret"))


async def test_the_server_accepts_an_ed25519_signed_order_query(sim_server_factory):
    private_pem, public_pem = _ed25519_pair()
    server = await sim_server_factory(credentials=[Credentials("edKey" + "0" * 59, ed25519_public_key_pem=public_pem)])
    async with RestClient(server.rest_url, api_key="edKey" + "0" * 59, signer=make_signer(private_pem)) as rest:
        await rest.time_sync.sync()
        body = await rest.request("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 3}, signed=True)
        assert body["leverage"] == 3
        assert await rest.request("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"}, signed=True) == []


def test_ed25519_keys_in_an_apikey_line_by_file_or_base64(tmp_path):
    private_pem, public_pem = _ed25519_pair()
    key_file = tmp_path / "ed25519.pem"
    key_file.write_text(private_pem)
    body = "".join(line for line in private_pem.splitlines() if not line.startswith("-----"))
    payload = "symbol=ETHUSDT&timestamp=2"
    verifier = eddsa.new(ECC.import_key(public_pem), "rfc8032")
    for secret in (f"ed25519:{key_file}", f"ed25519:{body}"):
        assert " " not in secret.split(":", 1)[1] or secret.endswith(".pem")
        signer = make_signer(secret)
        assert isinstance(signer, Ed25519Signer)
        verifier.verify(payload.encode(), base64.b64decode(signer.sign(payload)))
    with pytest.raises(SigningKeyError, match="ed25519"):
        make_signer("ed25519:not base64 !")
