"""Restart recovery proven by process kills: 30 SIGKILL / restart cycles against the simulator server, then the
database equals the exchange (tests/chaos/harness.py says how)."""

from __future__ import annotations

import pytest

from tests.chaos.harness import ChaosRun

CYCLES = 30
SEED = 20261201


@pytest.fixture
def chaos(tmp_path):
    run = ChaosRun(tmp_path / "chaos", seed=SEED)
    run.start_server()
    yield run
    run.close()


def test_thirty_kills_lose_and_double_nothing(chaos: ChaosRun) -> None:
    for _ in range(CYCLES):
        chaos.cycle()
    killed_inside = [c for c in chaos.cycles if c.how.startswith("inside") and c.exit_code == -9]
    assert len(killed_inside) >= 8, [c.how for c in chaos.cycles]  # the named moments were really hit
    assert {c.fault.split(",")[0] for c in chaos.cycles if c.fault} >= {
        "fault=restart_server", "fault=expire_listen_key", "fault=lock_database"}
    final = chaos.settle()
    result = chaos.compare()
    report = "\n".join([*(f"{c.how}: exit {c.exit_code}" for c in chaos.cycles), *result.problems, final[-3000:]])
    assert result.exchange_orders >= 20 and result.exchange_fills >= 10, report  # it really traded
    assert result.problems == [], report
    assert (result.lost, result.duplicated) == (0, 0)
    assert set(result.trading_states.values()) <= {"ACTIVE"}, report
