"""Kill points for the chaos tests: the process kills itself (SIGKILL) the n-th time it reaches a named moment.

Random kills from outside rarely land in the few microseconds that matter most, so the chaos harness also names
them: ``CHAOS_KILL_AT=intent_persisted:3`` kills the bot the third time it has written an order intent and not yet
sent it. Off (one ``is None`` check per point) unless ``CHAOS_KILL_AT`` is set; never set it outside a test.

Points (where in ``runtime/applier.py``'s asynchronous applier):
    intent_persisted    an order intent is durably written, the request not yet sent
    request_answered    the exchange answered a request, the answer not yet handed to the core
    fill_received       a user-data event with a fill arrived, not yet booked or written
    reconcile_read      reconciliation read the exchange, nothing of it applied yet
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

ENV = "CHAOS_KILL_AT"
POINTS = frozenset({"intent_persisted", "request_answered", "fill_received", "reconcile_read"})


class KillSwitch:
    """Counts the times each point is reached and kills the process at the configured one."""

    def __init__(self, spec: str, kill: Callable[[], None] | None = None) -> None:
        point, _, count = spec.partition(":")
        if point not in POINTS or not count.isdigit() or int(count) < 1:
            raise ValueError(f"{ENV}={spec!r}: expected POINT:N with POINT one of {', '.join(sorted(POINTS))} "
                             "and N >= 1")
        self.point = point
        self.at = int(count)
        self.reached_count = 0
        self._kill = kill or (lambda: os.kill(os.getpid(), signal.SIGKILL))

    def reached(self, point: str) -> None:
        if point != self.point:
            return
        self.reached_count += 1
        if self.reached_count == self.at:
            self._kill()


def _from_environment() -> KillSwitch | None:
    spec = os.environ.get(ENV)
    return KillSwitch(spec) if spec else None


#: The process's kill switch (``None``: chaos off).
switch: KillSwitch | None = _from_environment()


def kill_point(point: str) -> None:
    if switch is not None:
        switch.reached(point)
