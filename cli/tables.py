"""Prints rows for people (a rich table, times as UTC dates) or for programs (``--json``): one helper for every listing.

A listing command builds plain dicts (Decimals, enums, epoch milliseconds as they are stored) and describes its
columns once; :func:`print_rows` does the rest. A new listing (e.g. ``trades``) is a column list and a query.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

#: Width of a table written to a pipe or file (a terminal uses its own width).
PIPE_WIDTH = 200


def utc(ms: int | None) -> str:
    """Epoch milliseconds as ``2023-04-20 00:01:00`` (UTC); empty for ``None`` or 0 (not reported yet)."""
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def plain(value: Any) -> str:
    """A cell's text: exact decimals (no exponent), enum values, empty for ``None``."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value)


def json_value(value: Any) -> Any:
    """A JSON-friendly value: Decimals as exact strings, enums as their values; numbers, text and None as they are."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class Column:
    """One column: the row key it shows, its header, alignment, and how a value becomes text (default :func:`plain`).

    ``--json`` output has the row's raw values under their keys (times stay epoch milliseconds, as Binance gives them).
    """

    key: str
    header: str
    justify: Literal["left", "right"] = "left"
    render: Callable[[Any], str] = plain
    wrap: bool = False  # long free text (a reason) wraps; everything else stays on one line


def time_column(key: str, header: str) -> Column:
    return Column(key, header, render=utc)


def number_column(key: str, header: str) -> Column:
    return Column(key, header, justify="right")


def newest(rows: Sequence[Mapping[str, Any]], limit: int) -> list[Mapping[str, Any]]:
    """The last ``limit`` rows (all when ``limit`` is 0), still oldest first."""
    return list(rows[-limit:]) if limit and len(rows) > limit else list(rows)


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    title: str,
    as_json: bool,
    limit: int = 0,
    empty: str = "nothing to show",
    ordered: str | None = "oldest first",
    stream: TextIO | None = None,
) -> None:
    """Print the newest ``limit`` rows (all for 0): a table with a title saying how many of how many, or JSON.

    The JSON form is one array of objects, one per row, with every key of the row (more than the table shows); it
    is ``[]`` when there are none.
    """
    out = stream if stream is not None else sys.stdout
    shown = newest(rows, limit)
    if as_json:
        data = [{key: json_value(value) for key, value in row.items()} for row in shown]
        json.dump(data, out, indent=1)
        out.write("\n")
        return
    if not rows:
        out.write(f"{title}: {empty}\n")
        return
    heading = f"{title}: {len(shown)} of {len(rows)}" if len(shown) < len(rows) else f"{title}: {len(rows)}"
    heading += "".join(f", {note}" for note in (ordered, "times in UTC") if note)
    heading += " (--limit 0 shows all)" if len(shown) < len(rows) else ""
    table = Table(header_style="bold", box=None, pad_edge=False)
    for column in columns:
        table.add_column(column.header, justify=column.justify, no_wrap=not column.wrap)
    for row in shown:
        # Cells are data, not rich markup: "[consecutive_losses]" in a reason must print as it is.
        table.add_row(*(escape(column.render(row.get(column.key))) for column in columns))
    terminal = Console(file=out).is_terminal
    buffer = io.StringIO()
    console = Console(file=buffer, highlight=False, soft_wrap=False, force_terminal=terminal,
                      width=None if terminal else PIPE_WIDTH, color_system="auto" if terminal else None)
    if terminal:
        console.width = Console(file=out).width
    console.print(table)
    out.write(heading + "\n")
    out.writelines(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())
