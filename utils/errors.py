"""Exchange errors as Binance reports them: an integer code, its message and the HTTP status."""

from __future__ import annotations

THROTTLED = -1008  # "Request throttled by system-level protection": refused, not executed


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

    def to_payload(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


class OutcomeUnknownError(Exception):
    """A request timed out or the exchange answered 5xx: the order may exist. Look it up before any retry."""
