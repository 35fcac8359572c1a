"""Download files: cut anywhere (a crash, a power loss), a file is continued after its last whole row; rows
changed by something else, a foreign file, or a second writer are refused with the file named."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata.history_files import HistoryFile, HistoryFileError
from marketdata.history_rows import FUNDING_HEADER, funding_time

HEADER_LINE = ",".join(FUNDING_HEADER)
ROWS = [f"{1_681_977_600_000 + n * 28_800_000},{'-' if n % 3 == 0 else ''}0.000{n + 1:04d}" for n in range(12)]
FULL = (HEADER_LINE + "\n" + "".join(f"{row}\n" for row in ROWS)).encode()


def history_file(path: Path) -> HistoryFile:
    return HistoryFile(path, FUNDING_HEADER, funding_time)


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, len(FULL)), junk=st.sampled_from([b"", b"\x00\x00\x00", b"168197", b"1681977600000,0.0"]))
def test_a_file_cut_at_any_byte_is_continued_after_its_last_whole_row(cut, junk, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("cut") / "BTCUSDT_funding_rate_x.csv"
    path.write_bytes(FULL[:cut] + junk)
    with history_file(path) as file:
        reopened = file.open()
        kept = [row for row in ROWS if FULL.find(f"{row}\n".encode()) + len(row) + 1 <= cut]
        assert reopened.keys == [int(row.split(",")[0]) for row in kept]
        file.append(ROWS[len(kept):])  # continue from there
    assert path.read_bytes() == FULL


def test_a_torn_last_row_with_a_newline_is_dropped_too(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(FULL + b"1681977600000,\n")  # not a row, but it ends the file: cut off
    with history_file(path) as file:
        reopened = file.open()
    assert (reopened.last_key, reopened.dropped_rows) == (int(ROWS[-1].split(",")[0]), 1)
    assert path.read_bytes() == FULL


def test_a_bad_row_with_good_rows_after_it_is_not_repaired_silently(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(FULL.replace(ROWS[4].encode(), b"oops"))
    with pytest.raises(HistoryFileError, match=r"f\.csv:6: not a complete row, with good rows after it"):
        history_file(path).open()
    path.write_bytes(FULL.replace(ROWS[4].encode() + b"\n", b"") + ROWS[4].encode() + b"\n" + ROWS[-1].encode()
                     + b"\n")
    with pytest.raises(HistoryFileError, match="out of order"):
        history_file(path).open()


def test_a_file_of_another_kind_is_refused_not_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT_funding_rate_2023-04-20_2023-04-26.csv"
    path.write_text("open_time_ms,open,high,low,close,volume\n")
    with pytest.raises(HistoryFileError, match="exists but is not a file this command writes"):
        history_file(path).open()
    assert path.read_text() == "open_time_ms,open,high,low,close,volume\n"


def test_a_second_writer_of_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    with history_file(path) as first:
        first.open()
        with pytest.raises(HistoryFileError, match="is being written by another download"):
            history_file(path).open()
    with history_file(path) as after:  # the lock goes with the first writer
        assert after.open().keys == []
