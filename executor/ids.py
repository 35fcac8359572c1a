"""Deterministic client order ids: the same signal always maps to the same id, so a replay can never double it."""

from __future__ import annotations

import hashlib
import re
from functools import cache

#: Binance's rule for newClientOrderId.
CLIENT_ORDER_ID_PATTERN = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
#: The shape of the ids this bot derives (see client_order_id and algo_client_id); anything else is not ours.
_OUR_ID = re.compile(r"^[a-z0-9]{0,4}[0-9a-f]{4}-[A-Za-z0-9-]+-(en|ex|sl|tp|rv)[bs]?[0-9]*(-(sl|tp))?$")
_OUR_TAG = re.compile(r"^[a-z0-9]{0,4}[0-9a-f]{4}-")
_RETRY = re.compile(r"^(?P<head>.+?)(?:\.(?P<digest>[0-9a-f]{8}))?\.r[0-9]+$")

_PURPOSE_CODES = {"entry": "en", "exit": "ex", "stop_loss": "sl", "take_profit": "tp", "reverse": "rv"}


def is_our_client_order_id(client_order_id: str) -> bool:
    """Whether an id has the shape this bot gives its orders (``<tag>-...-<purpose code><side>``)."""
    retry = _RETRY.match(client_order_id)
    if retry is not None:
        if retry["digest"]:  # a long original, cut and hashed: only its head is left to recognise
            return bool(_OUR_TAG.match(retry["head"]))
        client_order_id = retry["head"]
    return bool(_OUR_ID.match(client_order_id))


@cache
def _strategy_prefix(strategy: str) -> str:
    return re.sub(r"[^a-z0-9]", "", strategy.lower())[:4]


def client_order_id(strategy: str, symbol: str, signal_time_ms: int, purpose: str, side: str = "",
                    attempt: int = 0) -> str:
    """``<strategy-tag>-<symbol>-<signal second>-<purpose><side>[<attempt>]``, at most 36 characters.

    The strategy tag is a short prefix plus a hash of the full name, so two strategies never collide.
    ``attempt`` > 0 is only for a deliberate new order after a definite rejection, never for a retry
    of an order whose outcome is unknown (that one is looked up under its original id).
    """
    digest = hashlib.sha1(f"{strategy}|{symbol}|{signal_time_ms}|{purpose}|{side}".encode()).hexdigest()
    tag = _strategy_prefix(strategy) + digest[:4]
    code = _PURPOSE_CODES.get(purpose, purpose[:2])
    suffix = code + side[:1].lower() + (str(attempt) if attempt else "")
    candidate = f"{tag}-{symbol}-{signal_time_ms // 1000}-{suffix}"
    if len(candidate) > 36:
        candidate = f"{tag}-{digest[4:20]}-{suffix}"[:36]
    assert CLIENT_ORDER_ID_PATTERN.match(candidate), candidate
    return candidate


def algo_client_id(entry_client_order_id: str, purpose: str) -> str:
    """Client id of a stop-loss / take-profit attached to an entry order."""
    code = _PURPOSE_CODES[purpose]
    base = entry_client_order_id[: 36 - 3]
    return f"{base}-{code}"


def retry_client_order_id(original: str, attempt: int) -> str:
    """The id of a deliberate new request replacing ``original`` (attempt 1, 2, ...), never confused with it.

    Base ids never contain ``.``, so ``<original>.r<n>`` can equal no base id and no other retry's id. When the
    original is too long to take the suffix, its head is kept with a hash of the whole of it.
    """
    if attempt < 1:
        raise ValueError(f"retry attempt must be >= 1, got {attempt}")
    suffix = f".r{attempt}"
    if len(original) + len(suffix) <= 36:
        candidate = original + suffix
    else:
        digest = hashlib.sha1(original.encode()).hexdigest()[:8]
        candidate = f"{original[: 36 - len(suffix) - 9]}.{digest}{suffix}"
    assert CLIENT_ORDER_ID_PATTERN.match(candidate), candidate
    return candidate


def is_retry_id(client_order_id: str) -> bool:
    return ".r" in client_order_id
