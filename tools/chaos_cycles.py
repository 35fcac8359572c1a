"""Kill the bot as many times as asked against the simulator server, and count what was lost or doubled.

    uv run python tools/chaos_cycles.py [--cycles 100] [--runs 1] [--seed N] [--keep DIR]

Each run starts a fresh simulator server (``--state``, ``--order-log``) and database, then repeats: start the bot
(``MODE=testnet``), SIGKILL it at a random moment or at a named one (after an intent is written, when an answer or a
fill arrives, during reconciliation), sometimes with a fault switched on meanwhile (streams dropped, listenKey
expired, 503 / timeouts on orders with or without execution, the server restarted). Then the market is frozen, the
bot reconciles once more, and the database is compared with the server's own records (tests/chaos/harness.py).
Without ``--seed`` every run takes a random seed (printed, so a failure can be replayed). Exit code 1 if anything
was lost or doubled.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos.harness import ChaosRun  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=100, help="kill / restart cycles per run (default 100)")
    parser.add_argument("--runs", type=int, default=1, help="independent runs, each with its own seed")
    parser.add_argument("--seed", type=int, help="the first run's seed (default: random)")
    parser.add_argument("--keep", type=Path, help="keep each run's folder (server state, logs, database) here")
    args = parser.parse_args()
    failed = False
    print(f"{'seed':>10} {'cycles':>6} {'killed':>6} {'faults':>6} {'orders':>6} {'sent':>6} {'fills':>6} "
          f"{'lost':>5} {'doubled':>7} {'seconds':>7}")
    for number in range(args.runs):
        seed = args.seed + number if args.seed is not None else random.SystemRandom().randrange(10**9)
        folder = (args.keep / f"run-{seed}") if args.keep else Path(tempfile.mkdtemp(prefix="chaos-"))
        started = time.monotonic()
        run = ChaosRun(folder, seed=seed)
        try:
            run.start_server()
            for _ in range(args.cycles):
                run.cycle()
            run.settle()
            result = run.compare()
        finally:
            run.close()
        killed = sum(1 for c in run.cycles if c.exit_code is None or c.exit_code == -9)
        faults = sum(1 for c in run.cycles if c.fault)
        print(f"{seed:>10} {len(run.cycles):>6} {killed:>6} {faults:>6} {result.exchange_orders:>6} "
              f"{result.orders_sent:>6} {result.exchange_fills:>6} {result.lost:>5} {result.duplicated:>7} "
              f"{time.monotonic() - started:>7.0f}", flush=True)
        for problem in result.problems:
            print(f"    {problem}")
        failed = failed or bool(result.problems)
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
