"""The chaos kill switch: parsed strictly, fires exactly once at the n-th time its point is reached."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from runtime.chaos import ENV, KillSwitch
from tests.main_process import REPO


def test_fires_at_the_nth_time_its_own_point_is_reached() -> None:
    kills: list[int] = []
    switch = KillSwitch("fill_received:3", kill=lambda: kills.append(switch.reached_count))
    for point in ["intent_persisted", "fill_received", "fill_received", "reconcile_read", "fill_received",
                  "fill_received"]:
        switch.reached(point)
    assert kills == [3]


@pytest.mark.parametrize("spec", ["fill_received", "fill_received:0", "nowhere:2", "fill_received:x", ":1"])
def test_a_malformed_setting_names_the_points(spec: str) -> None:
    with pytest.raises(ValueError, match="intent_persisted"):
        KillSwitch(spec)


def test_the_process_really_dies_by_sigkill() -> None:
    code = "from runtime.chaos import kill_point\nkill_point('reconcile_read')\nkill_point('reconcile_read')\nprint('x')"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, ENV: "reconcile_read:2"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == -9 and done.stdout == ""
