"""Parameter sweeps: every combination of the ``--param`` values, one backtest each, one result row each.

On one machine the runs go to a ``concurrent.futures.ProcessPoolExecutor`` (one process per CPU unless
``--workers``); with ``--ray ADDRESS`` they go to a Ray cluster as Ray tasks (Ray is an optional extra:
``uv sync --extra ray``; ``--ray local`` starts a one-machine cluster). Each run reads its own data files, so every
node needs them at the same paths.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from cli.backtest import RunSpec, run_spec

ROOT = Path(__file__).resolve().parent.parent


def sweep_row(spec: RunSpec) -> dict[str, Any]:
    """One combination's result as a flat row (runs in a worker)."""
    report = run_spec(spec)
    total = next(row for row in report.rows if row.strategy == "all")
    return {**{key: str(value) for key, value in spec.params}, "trades": total.trades,
            "win_rate": round(total.win_rate, 4), "net_pnl": str(total.net_pnl), "fees": str(total.fees),
            "funding": str(total.funding), "max_drawdown_pct": round(total.max_drawdown_pct, 4),
            "sharpe": round(total.sharpe, 4), "sortino": round(total.sortino, 4),
            "exposure": round(total.exposure, 4), "bars": report.result.bars,
            "engine_seconds": round(report.result.seconds, 3), "fingerprint": report.fingerprint}


def run_local(specs: Sequence[RunSpec], workers: int) -> list[dict[str, Any]]:
    # spawn: fresh interpreters (forking a process that already runs threads, e.g. rich's, can deadlock)
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(sweep_row, specs))


def run_ray(specs: Sequence[RunSpec], address: str) -> list[dict[str, Any]]:
    if address == "local":  # a one-machine cluster started here: its workers use this very environment (not one
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")  # rebuilt by `uv run` for each worker)
    try:
        import ray
    except ImportError:
        raise ValueError("--ray needs Ray: install the extra with `uv sync --extra ray`") from None
    if not ray.is_initialized():
        if address == "local":
            ray.init(runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}}, log_to_driver=False,
                     include_dashboard=False)
        else:  # the project's code goes with the tasks; the data files must be at the same paths on every node
            ray.init(address=address, runtime_env={"working_dir": str(ROOT), "excludes": [
                ".venv/", "backtests/", "logs/", "status/", ".git/", "*.db"]}, log_to_driver=False)
    remote = ray.remote(sweep_row)
    return list(ray.get([remote.remote(spec) for spec in specs]))


def run_sweep(specs: Sequence[RunSpec], arguments: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    rows = run_ray(specs, arguments.ray) if arguments.ray else run_local(specs, arguments.workers)
    names = [key for key, _ in specs[0].params]
    table = Table(title=f"Sweep: {len(rows)} combinations", title_justify="left")
    for column in (*names, "trades", "win rate", "net PnL", "fees", "funding", "max DD %", "Sharpe", "Sortino",
                   "exposure"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(row[name] for name in names), str(row["trades"]), f"{row['win_rate']:.1%}",
                      f"{float(row['net_pnl']):,.2f}", f"{float(row['fees']):,.2f}", f"{float(row['funding']):,.2f}",
                      f"{row['max_drawdown_pct']:.2f}", f"{row['sharpe']:.2f}", f"{row['sortino']:.2f}",
                      f"{row['exposure']:.1%}")
    Console(width=None if sys.stdout.isatty() else 140).print(table)
    try:
        arguments.out.mkdir(parents=True, exist_ok=True)
        path = arguments.out / "sweep.json"
        path.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        print(f"cannot write {arguments.out}/sweep.json: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
