"""Logging set-up: JSON lines to a rotating file, a console for people (or JSON), every registered secret redacted.

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
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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
# The compact console shows this many records of one message per window, and counts the rest.
CONSOLE_BURST = 3
CONSOLE_WINDOW_SEC = 60.0
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


def _console_value(value: Any, limit: int) -> str:
    if isinstance(value, list | tuple) and all(isinstance(item, str | int | float) for item in value):
        text = ",".join(str(item) for item in value)
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, default=_json_default)
    text = text.replace("\n", " ")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f'"{text}"' if (" " in text or not text) else text


class TextFormatter(logging.Formatter):
    """A compact line for a person at a terminal: ``08:02:43 WARNING executor: message key=value ...``.

    The time is UTC (hours, minutes, seconds: the file has the full date); each ``extra`` value is cut to
    ``value_limit`` characters and quoted when it has spaces; a traceback follows on its own lines.
    """

    def __init__(self, value_limit: int = 100) -> None:
        super().__init__()
        self.value_limit = value_limit

    def format(self, record: logging.LogRecord) -> str:
        clock = datetime.fromtimestamp(record.created, tz=UTC).strftime("%H:%M:%S")
        parts = [clock, f"{record.levelname:<7}", f"{record.name}:", record.getMessage()]
        parts.extend(f"{key}={_console_value(value, self.value_limit)}" for key, value in extra_fields(record).items())
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


@dataclass
class _Repeats:
    window_start: float
    shown: int = 0
    suppressed: int = 0


class CompactConsoleHandler(_CurrentStderrHandler):
    """The people's console: the first ``burst`` records of one message per ``window_sec`` are shown, the rest
    counted and summed up in one line (``... 235 more ...``) when the window ends or the log is closed.

    A message is its logger, level and text (after ``%`` arguments); the log file always gets every record.
    """

    def __init__(self, burst: int, window_sec: float, log_file: Path | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window_sec = window_sec
        self.log_file = log_file
        self._clock = clock
        self._repeats: dict[tuple[str, int, str], _Repeats] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = (record.name, record.levelno, record.getMessage())
        now = self._clock()
        with self._repeats_lock():
            repeats = self._repeats.get(key)
            if repeats is not None and now - repeats.window_start >= self.window_sec:
                self._write_note(key, repeats)
                repeats = None
            if repeats is None:
                repeats = self._repeats[key] = _Repeats(window_start=now)
            if repeats.shown >= self.burst:
                repeats.suppressed += 1
                return
            repeats.shown += 1
        super().emit(record)

    def _repeats_lock(self) -> threading.RLock:
        lock = self.lock
        assert lock is not None
        return lock

    def _write_note(self, key: tuple[str, int, str], repeats: _Repeats) -> None:
        if not repeats.suppressed:
            return
        name, level, message = key
        where = f"; every one is in {self.log_file}" if self.log_file is not None else ""
        note = (f"{datetime.now(tz=UTC).strftime('%H:%M:%S')} {logging.getLevelName(level):<7} {name}: ... "
                f"{repeats.suppressed} more {message!r} not shown here{where}")
        self.stream.write(redact(note) + self.terminator)
        repeats.suppressed = 0

    def report_suppressed(self) -> None:
        """Write the count of every message held back so far (e.g. just before a run summary is printed)."""
        with self._repeats_lock():
            for key, repeats in self._repeats.items():
                self._write_note(key, repeats)
        self.flush()

    def close(self) -> None:
        self.report_suppressed()
        super().close()


def _our_handlers(logger: logging.Logger) -> list[logging.Handler]:
    return [handler for handler in logger.handlers if getattr(handler, _HANDLER_MARK, False)]


def report_suppressed() -> None:
    """Have the compact console write the count of each repeated message it held back (a no-op otherwise)."""
    for handler in _our_handlers(logging.getLogger()):
        if isinstance(handler, CompactConsoleHandler):
            handler.report_suppressed()


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
    console_burst: int = CONSOLE_BURST,
    console_window_sec: float = CONSOLE_WINDOW_SEC,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backup_count: int = DEFAULT_BACKUP_COUNT,
    quiet_loggers: Iterable[str] = ("asyncio", "aiohttp.access", "sqlalchemy.engine", "alembic"),
) -> Path | None:
    """Install the console (stderr) handler and ``<log_dir>/trader.log`` (rotating by size) on the root logger.

    Calling it again replaces the handlers it installed before (never duplicates them). ``log_dir=None`` logs to
    the console only. Returns the log file path, or ``None``. Loggers in ``quiet_loggers`` are held at WARNING
    unless ``level`` is DEBUG.

    ``console_format="json"`` writes every record to the console as JSON (for log shippers); ``"text"`` writes
    compact lines for people, showing the first ``console_burst`` records of one message per
    ``console_window_sec`` and a count of the rest (:func:`report_suppressed`). The file gets every record, as JSON.
    An ``OSError`` (the folder or file cannot be created or written) propagates before any handler is installed.
    """
    numeric_level = parse_level(level)
    log_file: Path | None = None
    file_handler: logging.Handler | None = None
    if log_dir is not None:
        directory = Path(log_dir)
        directory.mkdir(parents=True, exist_ok=True)
        log_file = directory / LOG_FILE_NAME
        file_handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
        file_handler.setFormatter(JsonFormatter())
    reset_logging()
    root = logging.getLogger()
    root.setLevel(numeric_level)
    redacting_filter = RedactingFilter()
    handlers: list[logging.Handler] = []
    if console:
        console_handler: logging.Handler
        if console_format == "text":
            console_handler = CompactConsoleHandler(console_burst, console_window_sec, log_file)
            console_handler.setFormatter(TextFormatter())
        else:
            console_handler = _CurrentStderrHandler()
            console_handler.setFormatter(JsonFormatter())
        handlers.append(console_handler)
    if file_handler is not None:
        handlers.append(file_handler)
    for handler in handlers:
        handler.addFilter(redacting_filter)
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    for name in quiet_loggers:
        logging.getLogger(name).setLevel(logging.DEBUG if numeric_level <= logging.DEBUG else logging.WARNING)
    return log_file
