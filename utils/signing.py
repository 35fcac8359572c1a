"""Request signatures Binance accepts: HMAC-SHA256 (hex) for secret keys, Ed25519 (base64) for private keys.

Both sign the same text, ``totalParams`` = the query string immediately followed by the request body (no ``&``
between them). The caller appends ``signature=<value>`` as the last parameter; an Ed25519 signature is base64
and must be URL-encoded there (:attr:`Signer.url_safe` says whether it needs it).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa


class SigningKeyError(ValueError):
    """A secret that is neither an HMAC secret nor a readable Ed25519 private key (the message never holds it)."""


class Signer(Protocol):
    """Signs ``totalParams``; ``signature_param`` is the value to put after ``signature=`` (already encoded)."""

    def sign(self, payload: str) -> str: ...

    def signature_param(self, payload: str) -> str: ...


class HmacSigner:
    """HMAC-SHA256 over the payload with the API secret, as lower-case hex."""

    __slots__ = ("_key",)

    def __init__(self, secret: str) -> None:
        if not secret:
            raise SigningKeyError("the API secret is empty")
        self._key = secret.encode()

    def sign(self, payload: str) -> str:
        # hmac.digest: OpenSSL's one-shot HMAC, without building an HMAC object per request.
        return hmac.digest(self._key, payload.encode(), "sha256").hex()

    def signature_param(self, payload: str) -> str:
        return self.sign(payload)

    def __repr__(self) -> str:
        return "HmacSigner(****)"


class Ed25519Signer:
    """Ed25519 over the payload with a PEM (PKCS#8) private key, as base64 (URL-encoded in the request)."""

    __slots__ = ("_signer",)

    def __init__(self, private_key: str | bytes) -> None:
        """``private_key``: PEM text or bytes, or DER bytes (PKCS#8)."""
        try:
            key = ECC.import_key(private_key)
        except (ValueError, IndexError, TypeError):
            raise SigningKeyError("the API secret is not a readable Ed25519 private key (PKCS#8, "
                                  "'BEGIN PRIVATE KEY')") from None
        if key.curve.lower() not in ("ed25519",) or not key.has_private():
            raise SigningKeyError("the PEM key is not an Ed25519 private key")
        self._signer = eddsa.new(key, "rfc8032")

    def sign(self, payload: str) -> str:
        return base64.b64encode(self._signer.sign(payload.encode())).decode()

    def signature_param(self, payload: str) -> str:
        return quote(self.sign(payload), safe="")

    def __repr__(self) -> str:
        return "Ed25519Signer(****)"


ED25519_PREFIX = "ed25519:"


def make_signer(secret: str) -> HmacSigner | Ed25519Signer:
    """The signer for an API secret. Ed25519 private keys are given as

    * ``ed25519:<path>``: a PEM (PKCS#8) private key file (keep it ``chmod 600`` like ``.apikey``);
    * ``ed25519:<base64>``: the key's PKCS#8 DER in base64 (the PEM body without its armour, on one line);
    * a PEM text starting ``-----BEGIN`` (from the environment; literal ``\\n`` between lines is accepted).

    Anything else is an HMAC-SHA256 secret.
    """
    text = secret.strip()
    if text.startswith(ED25519_PREFIX):
        rest = text[len(ED25519_PREFIX):].strip()
        path = Path(rest).expanduser()
        if len(rest) < 4096 and path.is_file():
            try:
                return Ed25519Signer(path.read_bytes())
            except OSError:
                raise SigningKeyError(f"cannot read the Ed25519 key file {path}") from None
        try:
            der = base64.b64decode(rest, validate=True)
        except (binascii.Error, ValueError):
            raise SigningKeyError("ed25519: must be followed by a PEM file path or the key's base64 PKCS#8 "
                                  "DER") from None
        return Ed25519Signer(der)
    if text.startswith("-----BEGIN"):
        return Ed25519Signer(text.replace("\\n", "\n"))
    return HmacSigner(text)
