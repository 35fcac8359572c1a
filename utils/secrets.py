"""Secrets: the ``.apikey`` file of Binance API credentials, its permission rule, and masking keys and URLs for display.

The ``.apikey`` file holds two ``NAME=value`` lines::

    # Binance USD-M futures, testnet account
    BINANCE_API_KEY=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A
    BINANCE_API_SECRET=NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j

Blank lines and lines starting with ``#`` are ignored; spaces around the name, the ``=`` and the value are ignored;
a value may be wrapped in matching single or double quotes. Any other line, an unknown name, a repeated name or an
empty value is an error. The file must not be accessible by group or others (``chmod 600 .apikey``).

Nothing in this module ever puts a key or secret value in an error message.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

API_KEY_NAME = "BINANCE_API_KEY"
API_SECRET_NAME = "BINANCE_API_SECRET"
APIKEY_FILE_NAMES = (API_KEY_NAME, API_SECRET_NAME)
MASK = "****"
_SETTING_NAME = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+")


class ApiKeyFileError(Exception):
    """The ``.apikey`` file cannot be used; ``problems`` lists each reason (never a secret value)."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def mask_secret(value: SecretStr | str | None, *, show_last: int = 0) -> str | None:
    """``****`` plus at most the last ``show_last`` (<= 4) characters, shown only for values of 16+ characters."""
    if value is None:
        return None
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if show_last > 0 and len(text) >= 16:
        return MASK + text[-min(show_last, 4) :]
    return MASK


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """A Binance API key and secret, and where they came from (``environment`` or a ``.apikey`` path)."""

    api_key: SecretStr
    api_secret: SecretStr
    source: str

    def __repr__(self) -> str:
        return (
            f"ApiKeys(api_key={mask_secret(self.api_key, show_last=4)!r}, "
            f"api_secret={mask_secret(self.api_secret)!r}, source={self.source!r})"
        )

    __str__ = __repr__


def _describe_unknown_name(name: str) -> str:
    """Name an unknown name only when it looks like a setting name (a mistyped line might hold a secret)."""
    if not _SETTING_NAME.fullmatch(name):
        return "unknown name (not shown: it does not look like a setting name)"
    close = difflib.get_close_matches(name, APIKEY_FILE_NAMES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown name {name}{hint}"


def parse_apikey_text(text: str) -> dict[str, SecretStr]:
    """Parse ``.apikey`` content into ``{"BINANCE_API_KEY": ..., "BINANCE_API_SECRET": ...}`` (names present only).

    Raises ``ValueError`` listing every bad line by number (and never the line's content, which may be a secret).
    """
    values: dict[str, SecretStr] = {}
    problems: list[str] = []
    allowed = ", ".join(APIKEY_FILE_NAMES)
    for line_number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if line.startswith("\ufeff"):
            line = line[1:].strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.partition("=")
        name = name.strip()
        value = value.strip()
        if not separator:
            problems.append(f"line {line_number}: expected NAME=value ({allowed})")
            continue
        if name not in APIKEY_FILE_NAMES:
            problems.append(f"line {line_number}: {_describe_unknown_name(name)}; allowed names are {allowed}")
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1].strip()
        if not value:
            problems.append(f"line {line_number}: {name} has an empty value")
            continue
        if any(character.isspace() for character in value):
            problems.append(f"line {line_number}: {name} value contains whitespace")
            continue
        if name in values:
            problems.append(f"line {line_number}: {name} is given twice")
            continue
        values[name] = SecretStr(value)
    if problems:
        raise ValueError("; ".join(problems))
    return values


def format_apikey_text(api_key: str, api_secret: str) -> str:
    """The canonical ``.apikey`` content for a key and secret (the inverse of :func:`parse_apikey_text`)."""
    return (
        "# Binance API credentials; keep this file private: chmod 600 .apikey\n"
        f"{API_KEY_NAME}={api_key}\n{API_SECRET_NAME}={api_secret}\n"
    )


def permission_problem(path: Path) -> str | None:
    """A message saying how to fix ``path`` when group or others may access it, else None (always None on Windows)."""
    if os.name == "nt":
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 == 0:
        return None
    return (
        f"{path} is accessible by group or others (mode {mode:04o}); it holds API secrets, so make it private: "
        f"chmod 600 {path}"
    )


def read_apikey_file(path: Path) -> dict[str, SecretStr]:
    """Check permissions, then parse ``path``; raises :class:`ApiKeyFileError` (missing, too open, or malformed)."""
    if not path.is_file():
        raise ApiKeyFileError(
            path,
            [f"no such file; create it with {API_KEY_NAME}=... and {API_SECRET_NAME}=... lines, then chmod 600 {path}"],
        )
    problem = permission_problem(path)
    if problem:
        raise ApiKeyFileError(path, [problem])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ApiKeyFileError(path, [f"cannot be read ({type(error).__name__})"]) from None
    try:
        return parse_apikey_text(text)
    except ValueError as error:
        raise ApiKeyFileError(path, [str(error)]) from None


def mask_database_url(url: str) -> str:
    """Hide the password in a database URL: ``postgresql://bot:****@host/db``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", rf"\1{MASK}@", url)


def database_password(url: str) -> str | None:
    """The password in a database URL, if any (registered with the log redaction filter)."""
    match = re.search(r"://[^:/@]*:([^@]*)@", url)
    return match.group(1) if match and match.group(1) else None
