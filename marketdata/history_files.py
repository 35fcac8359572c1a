"""A CSV file a download appends to: whole rows only, and on reopening, continued from its last complete row.

Rows are appended a page at a time with one ``write`` of complete lines followed by ``fsync``, so an interrupted
run (Ctrl-C, a kill, a crash between pages) leaves only whole rows behind. Reopening checks the file: the header
must be the one this kind of file has, a trailing partial line (a write cut short by a power loss or a full disk)
and trailing rows that do not parse are cut off, and every other row must parse with keys strictly increasing;
the keys (open times, funding times) are handed back so the caller continues after the last one. A second process
writing the same file is refused (an exclusive ``flock``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows; the lock is then skipped
    fcntl = None  # type: ignore[assignment]

KeyOfLine = Callable[[str], int | None]
FULLY_CHECKED_ROWS = 16


def _quick_key(line: bytes, commas: int) -> int | None:
    """The first field of a line with the right number of fields, if it is an integer."""
    if line.count(b",") != commas:
        return None
    first = line[:line.find(b",")] if commas else line
    return int(first) if first.isdigit() and len(first) <= 20 else None


class HistoryFileError(Exception):
    """A download file that cannot be continued: named, with what is wrong and what to do."""


@dataclass
class Reopened:
    """What reopening found: the keys of the rows kept, and what was cut off the end."""

    keys: list[int] = field(default_factory=list)
    dropped_partial_bytes: int = 0
    dropped_rows: int = 0

    @property
    def last_key(self) -> int | None:
        return self.keys[-1] if self.keys else None


class HistoryFile:
    """One CSV file, opened for appending whole rows (use as a context manager, or ``open`` / ``close``)."""

    def __init__(self, path: Path, header: Sequence[str], key_of_line: KeyOfLine) -> None:
        self.path = path
        self.header_line = ",".join(header)
        self._key_of_line = key_of_line
        self._descriptor: int | None = None

    def __enter__(self) -> HistoryFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> Reopened:
        """Create the file with its header, or check and repair the one there; returns its rows' keys."""
        try:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise HistoryFileError(f"cannot write {self.path}: {error.strerror or error}") from None
        self._descriptor = descriptor
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self.close()
                raise HistoryFileError(f"{self.path} is being written by another download: wait for it to finish, "
                                       "or stop it") from None
        try:
            with open(descriptor, "rb", closefd=False) as reader:
                content = reader.read()
            reopened, keep = self._check(content)
            if keep < len(content):
                os.ftruncate(descriptor, keep)
            os.lseek(descriptor, 0, os.SEEK_END)
            if keep == 0:
                self._write(f"{self.header_line}\n".encode())
        except BaseException:
            self.close()
            raise
        return reopened

    def _check(self, content: bytes) -> tuple[Reopened, int]:
        """The rows' keys and how many bytes of ``content`` to keep."""
        reopened = Reopened()
        end = content.rfind(b"\n") + 1
        reopened.dropped_partial_bytes = len(content) - end
        if end == 0:
            return reopened, 0  # empty, or not even a whole header: start again
        raw_lines = content[:end].split(b"\n")[:-1]
        header = raw_lines[0].decode("utf-8", errors="replace")
        if header != self.header_line:
            raise HistoryFileError(
                f"{self.path} exists but is not a file this command writes (its first line is {header[:80]!r}, "
                f"expected {self.header_line!r}): move it away or choose another --out folder")
        keep = len(raw_lines[0]) + 1
        keys: list[int] = []
        bad: list[int] = []  # line numbers of rows that do not parse: a crash's leftovers if nothing good follows
        fully_checked = len(raw_lines) - FULLY_CHECKED_ROWS
        commas = self.header_line.count(",")
        for number, raw_line in enumerate(raw_lines[1:], start=2):
            # Rows this module wrote are whole; only the last few can be a crash's leftovers: those are parsed in
            # full, the others only enough to tell their key (a year of klines reopens in under a second).
            key = (self._key_of_line(raw_line.decode("utf-8", errors="replace")) if number > fully_checked
                   else _quick_key(raw_line, commas))
            if key is None:
                bad.append(number)
                continue
            problem = ("not a complete row, with good rows after it" if bad else
                       "out of order (not after the row before it)" if keys and key <= keys[-1] else None)
            if problem:
                raise HistoryFileError(f"{self.path}:{bad[0] if bad else number}: {problem}: the file was changed "
                                       "by something else; delete it to download it again")
            keys.append(key)
            keep += len(raw_line) + 1
        reopened.keys = keys
        reopened.dropped_rows = len(bad)
        return reopened, keep

    def append(self, lines: Sequence[str]) -> None:
        """Append complete rows (one write, then fsync): after a crash, each is there in full or not at all."""
        if lines:
            self._write("".join(f"{line}\n" for line in lines).encode())

    def _write(self, data: bytes) -> None:
        assert self._descriptor is not None, "open() the file first"
        view = memoryview(data)
        while view:
            written = os.write(self._descriptor, view)
            view = view[written:]
        os.fsync(self._descriptor)

    def close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # also releases the lock
            self._descriptor = None
