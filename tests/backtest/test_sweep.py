"""Parameter sweeps: every combination once, in parallel processes (or Ray tasks), each row what a single run of
those parameters gives."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest

from backtest.sweep import run_local, run_ray
from cli.backtest import RunSpec, run_spec
from main import main

pytestmark = pytest.mark.shared_data

CONFIG = Path(__file__).resolve().parents[2] / "benchmarks" / "ema_long_only.toml"
START = 1_681_948_800_000  # 2023-04-20, two days
END = START + 2 * 86_400_000


def specs(usdm_1m_dir: Path) -> list[RunSpec]:
    data = (usdm_1m_dir / "BTCUSDT_usdm_1m_2023-04-20_2023-04-26.csv",)
    return [RunSpec(data, (), CONFIG, None, (("fast", fast), ("slow", slow), ("long_only", True)), START, END,
                    Decimal(10_000), "ONEWAY", ())
            for fast in (5, 10) for slow in (20, 40)]


def test_the_process_pool_gives_one_row_per_combination_as_a_single_run_would(usdm_1m_dir: Path) -> None:
    grid = specs(usdm_1m_dir)
    rows = run_local(grid, workers=2)
    assert [(row["fast"], row["slow"]) for row in rows] == [("5", "20"), ("5", "40"), ("10", "20"), ("10", "40")]
    assert len({row["fingerprint"] for row in rows}) == 4
    single = run_spec(grid[1])
    assert rows[1]["fingerprint"] == single.fingerprint and rows[1]["trades"] == len(single.trades) > 10


def test_the_sweep_command_writes_its_table(usdm_1m_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--data", str(usdm_1m_dir / "BTCUSDT_usdm_1m_2023-04-20_2023-04-26.csv"),
                 "--config", str(CONFIG), "--param", "fast=5,10", "--param", "slow=30", "--from", "2023-04-20",
                 "--to", "2023-04-21", "--out", str(tmp_path), "--workers", "2"])
    assert code == 0
    assert "Sweep: 2 combinations" in capsys.readouterr().out
    rows = json.loads((tmp_path / "sweep.json").read_text())
    assert [row["fast"] for row in rows] == ["5", "10"] and all(row["bars"] == 1440 for row in rows)


@pytest.mark.skipif(os.environ.get("RAY_TESTS") != "1", reason="starts a local Ray cluster (about 40 s on 2 cores): "
                    "RAY_TESTS=1 uv run pytest tests/backtest/test_sweep.py")
def test_ray_tasks_give_the_same_rows(usdm_1m_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")  # read when ray is imported (run_ray sets it too)
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: uv sync --extra ray")
    grid = specs(usdm_1m_dir)[:2]
    try:
        rows = run_ray(grid, "local")
    finally:
        ray.shutdown()
    assert [row["fingerprint"] for row in rows] == [row["fingerprint"] for row in run_local(grid, workers=1)]
