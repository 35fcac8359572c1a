"""Deterministic client order ids: the same signal always maps to the same id, so a replay can never double it."""

from __future__ import annotations

import hashlib
import re

#: Binance's rule for newClientOrderId.
CLIENT_ORDER_ID_PATTERN = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")

_PURPOSE_CODES = {"entry": "en", "exit": "ex", "stop_loss": "sl", "take_profit": "tp", "reverse": "rv"}


def client_order_id(strategy: str, symbol: str, signal_time_ms: int, purpose: str, side: str = "",
                    attempt: int = 0) -> str:
    """``<strategy-tag>-<symbol>-<signal second>-<purpose><side>[<attempt>]``, at most 36 characters.

    The strategy tag is a short prefix plus a hash of the full name, so two strategies never collide.
    ``attempt`` > 0 is only for a deliberate new order after a definite rejection, never for a retry
    of an order whose outcome is unknown (that one is looked up under its original id).
    """
    digest = hashlib.sha1(f"{strategy}|{symbol}|{signal_time_ms}|{purpose}|{side}".encode()).hexdigest()
    tag = re.sub(r"[^a-z0-9]", "", strategy.lower())[:4] + digest[:4]
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
