"""Logging set-up: one JSON object per line to stderr and a rotating file, with every registered secret redacted.

Usage::

    setup_logging("INFO", Path("logs"))
    logger = logging.getLogger(__name__)
    logger.info("order sent", extra={"symbol": "BTCUSDT", "client_order_id": "x-1"})

gives ``{"time": "2026-05-01T12:00:00.123Z", "level": "INFO", "logger": "executor.orders",
"message": "order sent", "symbol": "BTCUSDT", "client_order_id": "x-1"}``.

Redaction is defense in depth: any value passed to :func:`register_secret` (configuration loading registers the
Binance API key and secret) is replaced by ``****`` in the message, its ``%`` arguments, ``extra`` fields, exception
text and stack text before a handler installed here writes anything, and once more on the final line.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

REDACTED = "****"
LOG_FILE_NAME = "trader.log"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUP_COUNT = 5
LEVEL_NAMES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Shorter values would redact ordinary words; real API keys and secrets are 64 characters.
MINIMUM_SECRET_LENGTH = 6

# Attributes every LogRecord has; anything else on a record came from ``extra={...}``.
_STANDARD_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
# Marks the handlers this module installed, so a second setup_logging() replaces them instead of adding more.
_HANDLER_MARK = "_auto_coin_trader_handler"


class _SecretValue(Protocol):
    def get_secret_value(self) -> str: ...


_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | _SecretValue | None) -> None:
    """Remember a secret so that every handler installed by :func:`setup_logging` writes ``****`` instead of it.

    Accepts a plain string or anything with ``get_secret_value()`` (pydantic ``SecretStr``). Empty values and values
    shorter than ``MINIMUM_SECRET_LENGTH`` characters are ignored (redacting them would mangle ordinary text).
    """
    if value is None:
        return
    text = value if isinstance(value, str) else value.get_secret_value()
    if len(text) < MINIMUM_SECRET_LENGTH:
        return
    with _secrets_lock:
        _secrets.add(text)
        escaped = json.dumps(text, ensure_ascii=False)[1:-1]
        if escaped != text:  # also catch the secret after JSON escaping (quotes, backslashes)
            _secrets.add(escaped)


def forget_secrets() -> None:
    """Drop every registered secret (for tests)."""
    with _secrets_lock:
        _secrets.clear()


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``****``."""
    with _secrets_lock:
        # Longest first, so a secret that contains another is replaced whole.
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_value(value: Any) -> Any:
    """Redact a structured field, keeping JSON-friendly shapes; anything else becomes its redacted ``str()``."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(key)): _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(item) for item in value]
    if isinstance(value, Enum):
        return redact(str(value.value))
    return redact(str(value))


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller attached with ``extra={...}``."""
    return {key: value for key, value in vars(record).items() if key not in _STANDARD_RECORD_ATTRIBUTES}


class RedactingFilter(logging.Filter):
    """Replaces registered secrets in a record's message, arguments, extra fields, exception and stack text.

    The record is changed in place (the message is formatted once and the arguments dropped), so every handler
    that sees the record afterwards sees the redacted version too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not hide the record
            message = f"{record.msg!r} (message arguments did not match: {record.args!r})"
        record.msg = redact(message)
        record.args = None
        for key, value in extra_fields(record).items():
            setattr(record, key, _redact_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal | Path | Enum):
        return str(value.value if isinstance(value, Enum) else value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def format_time(created: float) -> str:
    """ISO-8601 UTC with milliseconds, e.g. ``2026-05-01T12:00:00.123Z``."""
    return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, every ``extra`` field, and exception/stack text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": format_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=_json_default))


class TextFormatter(logging.Formatter):
    """A human-friendly line for a terminal: ``time LEVEL logger: message key=value ...`` plus any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [format_time(record.created), f"{record.levelname:<8}", f"{record.name}:", record.getMessage()]
        parts.extend(f"{key}={value}" for key, value in extra_fields(record).items())
        line = " ".join(parts)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return redact(line)


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the moment of writing (so redirection and test capture work)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # the base class assigns it; we always use sys.stderr
        pass


def _our_handlers(logger: logging.Logger) -> list[logging.Handler]:
    return [handler for handler in logger.handlers if getattr(handler, _HANDLER_MARK, False)]


def reset_logging() -> None:
    """Remove and close every handler :func:`setup_logging` installed on the root logger."""
    root = logging.getLogger()
    for handler in _our_handlers(root):
        root.removeHandler(handler)
        handler.close()


def parse_level(level: str | int) -> int:
    """``"info"``/``"INFO"``/``20`` -> 20; anything else raises ``ValueError`` naming the allowed levels."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    name = str(level).strip().upper()
    if name not in LEVEL_NAMES:
        raise ValueError(f"log level must be one of {', '.join(LEVEL_NAMES)} (got {level!r})")
    return logging.getLevelNamesMapping()[name]


def setup_logging(
    level: str | int,
    log_dir: Path | str | None,
    *,
    console: bool = True,
    console_format: Literal["json", "text"] = "json",
    max_bytes: int = DEFAULT_MAX_BYTES,
    backup_count: int = DEFAULT_BACKUP_COUNT,
    quiet_loggers: Iterable[str] = ("asyncio", "aiohttp.access", "sqlalchemy.engine", "alembic"),
) -> Path | None:
    """Install the console (stderr) handler and ``<log_dir>/trader.log`` (rotating by size) on the root logger.

    Calling it again replaces the handlers it installed before (never duplicates them). ``log_dir=None`` logs to
    the console only. Returns the log file path, or ``None``. Loggers in ``quiet_loggers`` are held at WARNING
    unless ``level`` is DEBUG.
    """
    numeric_level = parse_level(level)
    reset_logging()
    root = logging.getLogger()
    root.setLevel(numeric_level)
    redacting_filter = RedactingFilter()
    handlers: list[logging.Handler] = []
    if console:
        console_handler = _CurrentStderrHandler()
        console_handler.setFormatter(TextFormatter() if console_format == "text" else JsonFormatter())
        handlers.append(console_handler)
    log_file: Path | None = None
    if log_dir is not None:
        directory = Path(log_dir)
        directory.mkdir(parents=True, exist_ok=True)
        log_file = directory / LOG_FILE_NAME
        file_handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
        file_handler.setFormatter(JsonFormatter())
        handlers.append(file_handler)
    for handler in handlers:
        handler.addFilter(redacting_filter)
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    for name in quiet_loggers:
        logging.getLogger(name).setLevel(logging.DEBUG if numeric_level <= logging.DEBUG else logging.WARNING)
    return log_file
