"""Exchange errors as Binance reports them: an integer code, its message and the HTTP status."""

from __future__ import annotations


class BinanceError(Exception):
    """A request the exchange answered with ``{"code": ..., "msg": ...}``: it did NOT execute (unless 5xx/408)."""

    def __init__(self, code: int, msg: str, http_status: int = 400) -> None:
        super().__init__(f"Binance error {code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status

    @property
    def outcome_unknown(self) -> bool:
        """True when the request may or may not have executed (408, 5xx except a plain 503 refusal)."""
        if self.http_status == 408:
            return True
        if self.http_status >= 500:
            return not (self.http_status == 503 and self.msg == "Service Unavailable.")
        return False

    def to_payload(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


class OutcomeUnknownError(Exception):
    """A request timed out or the exchange answered 5xx: the order may exist. Look it up before any retry."""
