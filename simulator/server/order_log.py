"""Every new-order request the server received, in arrival order: the proof that no client order id went out twice.

A request is recorded once it passed the API-key, parameter, timestamp and signature checks (so it is one the
exchange would act on), before any fault switch or the matching engine sees it: a request the server then
"loses" (a timeout fault), refuses (a throttle) or executes is recorded all the same, because the client did send
it. With ``--order-log FILE`` each one is also appended to the file as a JSON line and flushed at once, so the log
outlives the server process (a server restart in a chaos test) and can be read while it runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class ReceivedOrder:
    time: int  # the server's wall clock, epoch ms
    account: str  # the account's name (account1, ...), never its key
    path: str
    symbol: str
    client_order_id: str


class OrderLog:
    def __init__(self, path: Path | None) -> None:
        self.entries: list[ReceivedOrder] = []
        self._file: IO[str] | None = open(path, "a", encoding="utf-8") if path is not None else None  # noqa: SIM115

    def record(self, time: int, account: str, path: str, values: dict[str, Any]) -> None:
        cid = values.get("newClientOrderId") or values.get("clientAlgoId") or ""
        entry = ReceivedOrder(time, account, path, str(values.get("symbol", "")), str(cid))
        self.entries.append(entry)
        if self._file is not None:
            self._file.write(json.dumps(asdict(entry), separators=(",", ":")) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_order_log(path: Path) -> list[ReceivedOrder]:
    """The entries of an order-log file (a line cut short by a crash of the server is ignored)."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(ReceivedOrder(**json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue
    return entries
