"""Exchange errors as Binance reports them (an integer code, its message and the HTTP status), classified for the
caller: what each one means for whether the request executed and what to do next.

=================  ==========================================================  =================================
kind               when                                                        what the caller does
=================  ==========================================================  =================================
REJECTED           4xx with a Binance code (not the ones below)                it did NOT execute; do not retry
OUTCOME_UNKNOWN    timeout, 408, 5xx except the two definite refusals          look it up before any retry
RATE_LIMITED       429, 418, -1003 (``retry_after_ms`` when Retry-After said)  wait; it did not execute
CLOCK_SKEW         -1021 timestamp outside recvWindow                          resync the time, retry once
AUTH               -1022 bad signature, -2014 / -2015 bad key or permissions   halt; a person must act
NOT_SENT           connection refused / DNS / reset before sending             nothing reached Binance: retry
=================  ==========================================================  =================================

:class:`BinanceError` and :class:`OutcomeUnknownError` are what ``runtime/applier.py`` turns into the core's
results (``outcome_unknown`` -> UNKNOWN, otherwise REJECTED); every class here is one of the two, so the applier
needs no change to handle them.
"""

from __future__ import annotations

from enum import StrEnum

THROTTLED = -1008  # "Request throttled by system-level protection": refused, not executed
TOO_MANY_REQUESTS = -1003
TIMESTAMP_OUTSIDE_RECV_WINDOW = -1021
BAD_SIGNATURE = -1022
INVALID_LISTEN_KEY = -1125
BAD_API_KEY_FORMAT = -2014
REJECTED_MBX_KEY = -2015
AUTH_CODES = frozenset({BAD_SIGNATURE, BAD_API_KEY_FORMAT, REJECTED_MBX_KEY})
NOT_SENT_CODE = 0  # our own code for a request that never reached the exchange (no Binance code exists)
UNKNOWN_MESSAGE = "Unknown error, please check your request or try again later."


class ErrorKind(StrEnum):
    REJECTED = "rejected"
    OUTCOME_UNKNOWN = "outcome_unknown"
    RATE_LIMITED = "rate_limited"
    CLOCK_SKEW = "clock_skew"
    AUTH = "auth"
    NOT_SENT = "not_sent"


class BinanceError(Exception):
    """A request the exchange answered with ``{"code": ..., "msg": ...}``: it did NOT execute (unless 5xx/408)."""

    def __init__(self, code: int, msg: str, http_status: int = 400, *, retry_after_ms: int | None = None) -> None:
        super().__init__(f"Binance error {code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.retry_after_ms = retry_after_ms  # a 429/418 that said when to come back (Retry-After)

    @property
    def outcome_unknown(self) -> bool:
        """True when the request may or may not have executed: 408, and 5xx except Binance's two definite
        refusals (503 "Service Unavailable." and -1008 "Request throttled by system-level protection")."""
        if self.http_status == 408:
            return True
        if self.http_status >= 500:
            return not (self.code == THROTTLED or (self.http_status == 503 and self.msg == "Service Unavailable."))
        return False

    @property
    def kind(self) -> ErrorKind:
        """What this error means for the caller (see the module's table)."""
        if self.http_status in (418, 429) or self.code == TOO_MANY_REQUESTS:
            return ErrorKind.RATE_LIMITED
        if self.outcome_unknown:
            return ErrorKind.OUTCOME_UNKNOWN
        if self.code == TIMESTAMP_OUTSIDE_RECV_WINDOW:
            return ErrorKind.CLOCK_SKEW
        if self.code in AUTH_CODES or (self.http_status == 401 and self.code == 0):
            return ErrorKind.AUTH
        return ErrorKind.REJECTED

    def to_payload(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


class RateLimitedError(BinanceError):
    """429 / 418 / -1003: refused because a rate limit was hit (418: the IP is banned for a while). Not executed."""


class ClockSkewError(BinanceError):
    """-1021: the request's timestamp was outside recvWindow of the server's clock. Not executed."""


class AuthError(BinanceError):
    """-1022 / -2014 / -2015: the signature, key or its permissions were refused. Halt; never retry."""


class NotSentError(BinanceError):
    """The request never reached the exchange (connection refused, DNS failure): it did not execute, so it is
    safe to send again. ``code`` is 0 (Binance has none for this) and ``http_status`` 0."""

    def __init__(self, msg: str) -> None:
        super().__init__(NOT_SENT_CODE, msg, 0)

    @property
    def kind(self) -> ErrorKind:
        return ErrorKind.NOT_SENT


class OutcomeUnknownError(Exception):
    """A request timed out or the exchange answered 5xx: the order may exist. Look it up before any retry."""

    kind = ErrorKind.OUTCOME_UNKNOWN


class UnreadableResponseError(OutcomeUnknownError):
    """A 2xx answer whose body does not have the documented shape: the request executed (or not) and we cannot
    tell what it did, so it is handled as an unknown outcome (look it up)."""


def classify(code: int, msg: str, http_status: int, *, retry_after_ms: int | None = None) -> BinanceError:
    """The error class for an answer from the exchange (``code`` 0 when the body had none)."""
    if http_status in (418, 429) or code == TOO_MANY_REQUESTS:
        return RateLimitedError(code, msg, http_status, retry_after_ms=retry_after_ms)
    error = BinanceError(code, msg, http_status, retry_after_ms=retry_after_ms)
    if error.outcome_unknown:
        return error
    if code == TIMESTAMP_OUTSIDE_RECV_WINDOW:
        return ClockSkewError(code, msg, http_status)
    if code in AUTH_CODES or (http_status == 401 and code == 0):
        return AuthError(code, msg, http_status)
    return error
