"""API keys and request signing as Binance checks them: key lookup, HMAC-SHA256 / Ed25519 signatures, recvWindow.

A key pair is ``Credentials``: an API key with an HMAC secret, or with an Ed25519 public key (the client signs with
the private half). ``signed_payload`` rebuilds Binance's totalParams (the query string immediately followed by the
body, without the ``signature`` parameter, byte for byte as sent); ``check_timestamp`` applies Binance's rule
(``timestamp < serverTime + 1000`` and ``serverTime - timestamp <= recvWindow``, else -1021).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from simulator.server import errors

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
_KEY_FORMAT = re.compile(r"[!-~]{1,256}")  # printable ASCII, no spaces
ED25519_PREFIX = "ed25519:"


@dataclass(frozen=True)
class Credentials:
    """One API key and what verifies its signatures (an HMAC secret or an Ed25519 public key, never both)."""

    api_key: str
    secret: str = field(default="", repr=False)
    ed25519_public_key_pem: str = ""
    #: What ``GET /sapi/v1/account/apiRestrictions`` reports the key may do (a test sets a dangerous key up).
    allows_withdrawals: bool = False
    allows_futures: bool = True
    _verifier: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.api_key or _KEY_FORMAT.fullmatch(self.api_key) is None:
            raise ValueError("an API key is 1 to 256 printable characters without spaces")
        if bool(self.secret) == bool(self.ed25519_public_key_pem):
            raise ValueError(f"API key {self.api_key}: give either an HMAC secret or an Ed25519 public key")
        if self.ed25519_public_key_pem:
            try:
                key = ECC.import_key(self.ed25519_public_key_pem)
            except (ValueError, IndexError, TypeError) as exc:
                raise ValueError(f"API key {self.api_key}: not an Ed25519 public key in PEM form ({exc})") from None
            if key.curve != "Ed25519" or key.has_private():
                raise ValueError(f"API key {self.api_key}: give the Ed25519 PUBLIC key (PEM), not {key.curve} "
                                 "or a private key")
            object.__setattr__(self, "_verifier", eddsa.new(key, "rfc8032"))

    @property
    def kind(self) -> str:
        return "Ed25519" if self.ed25519_public_key_pem else "HMAC-SHA256"

    @classmethod
    def generate(cls) -> Credentials:
        """A fresh random HMAC key pair (64 characters each, like Binance's)."""
        return cls(secrets.token_hex(32), secrets.token_hex(32))

    @classmethod
    def from_cli(cls, api_key: str, secret: str) -> Credentials:
        """``--api-secret S`` for HMAC, or ``--api-secret ed25519:PUBLIC_KEY.pem`` for an Ed25519 key."""
        if secret.startswith(ED25519_PREFIX):
            pem = Path(secret[len(ED25519_PREFIX):]).read_text(encoding="ascii")
            return cls(api_key, ed25519_public_key_pem=pem)
        return cls(api_key, secret)

    def verify(self, payload: bytes, signature: str) -> bool:
        """True when ``signature`` (hex for HMAC, base64 for Ed25519) signs ``payload`` with this key."""
        if not signature.isascii():
            return False
        if self._verifier is None:
            expected = hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest()
            return hmac.compare_digest(expected, signature.lower())
        try:
            raw = base64.b64decode(signature, validate=True)
            self._verifier.verify(payload, raw)
        except (ValueError, binascii.Error, TypeError):
            return False
        return True


def check_api_key_header(value: str | None) -> str:
    """The X-MBX-APIKEY header's value, or -2014 when it is missing or not a key at all."""
    if value is None or _KEY_FORMAT.fullmatch(value) is None:
        raise errors.api_key_format()
    return value


def _without_signature(text: bytes) -> bytes:
    if b"signature" not in text:
        return text
    return b"&".join(part for part in text.split(b"&") if part.partition(b"=")[0] != b"signature")


def signed_payload(raw_query: bytes, raw_body: bytes) -> bytes:
    """Binance's totalParams: the query string immediately followed by the body, ``signature`` left out."""
    return _without_signature(raw_query) + _without_signature(raw_body)


def check_timestamp(timestamp: int, recv_window: int | None, server_time: int) -> None:
    """-1021 unless ``timestamp`` is at most 1 s ahead of the server and at most ``recvWindow`` ms behind it."""
    window = DEFAULT_RECV_WINDOW_MS if recv_window is None else recv_window
    if window > MAX_RECV_WINDOW_MS:
        raise errors.bad_recv_window()
    if timestamp >= server_time + 1000:
        raise errors.timestamp_ahead()
    if server_time - timestamp > window:
        raise errors.timestamp_outside_recv_window()
