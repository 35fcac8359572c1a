"""Speed of the execution core alone: a signal in, its commands out, and an order's whole life in the core.

    uv run python benchmarks/bench_core.py [--repeat 5] [--decisions 20000]

No exchange, no database, no event loop: the core is fed plain inputs (the exchange's answers are built once,
before timing) and its commands are collected. Figures, per decision, best of ``--repeat``:
  * signal -> commands: ``ExecutionCore.on_signal`` for a signal that opens or closes a position (planning, risk
    guards, filters, the intent and its commands), against the planner alone (``plan_signal``) on the same signals;
  * whole order life in the core: the signal, then the submit result and the fill event of its order (books, round
    trip, risk facts), i.e. everything the core does for one order.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from executor.commands import Outcome, SubmitOrder, SubmitResult  # noqa: E402
from executor.core import ExecutionCore  # noqa: E402
from executor.planner import ExecutionSettings, Holding, plan_signal  # noqa: E402
from executor.risk import RiskEngine, RiskLimits  # noqa: E402
from simulator.exchange_info import load_symbol_filters  # noqa: E402
from utils.binance_parse import OrderUpdate  # noqa: E402
from utils.domain import (  # noqa: E402
    Candle,
    ExecutionType,
    Fill,
    Order,
    OrderStatus,
    PositionMode,
    PositionSide,
    Signal,
    SignalSide,
    SizingMode,
    TimeInForce,
)

START = 1_681_948_800_000
MINUTE = 60_000
PRICE = Decimal("30000")
FILTERS = {"BTCUSDT": load_symbol_filters()["BTCUSDT"]}
SETTINGS = ExecutionSettings("alpha", "BTCUSDT", SizingMode.FIXED_NOTIONAL, Decimal("300"), 5)
LIMITS = RiskLimits(daily_loss_limit_usdt=Decimal("1000000"), max_new_positions_per_day=10_000,
                    max_symbol_exposure_usdt=Decimal("1000000"), order_ttl_sec=60, max_consecutive_losses=10_000,
                    funding_blackout_minutes=None)


def new_core() -> ExecutionCore:
    core = ExecutionCore(risk=RiskEngine(LIMITS), filters=FILTERS, settings=[SETTINGS],
                         position_mode=PositionMode.ONEWAY)
    core.on_candle(Candle("BTCUSDT", START - MINUTE, START - 1, PRICE, PRICE, PRICE, PRICE, Decimal(1000)))
    return core


def signals(count: int) -> list[Signal]:
    sides = (SignalSide.LONG, SignalSide.FLAT)
    return [Signal("alpha", "BTCUSDT", sides[i % 2], Decimal(1), "bench", START + i * MINUTE) for i in range(count)]


def answers(intent, trade_id: int, time: int) -> tuple[SubmitResult, OrderUpdate]:
    order = Order("BTCUSDT", trade_id, intent.client_order_id, intent.side, intent.order_type, OrderStatus.FILLED,
                  intent.quantity, PRICE, TimeInForce.GTC, PositionSide.BOTH, intent.reduce_only,
                  executed_quantity=intent.quantity, cum_quote=intent.quantity * PRICE, avg_price=PRICE,
                  update_time=time)
    fill = Fill("BTCUSDT", trade_id, trade_id, intent.client_order_id, intent.side, PositionSide.BOTH, PRICE,
                intent.quantity, intent.quantity * PRICE, Decimal("0.15"), "USDT", Decimal(0), False, time)
    return (SubmitResult(intent.client_order_id, Outcome.ACCEPTED, time, order=order),
            OrderUpdate(time, ExecutionType.TRADE, order, fill))


def time_signals_only(count: int) -> float:
    """on_signal alone: each LONG from flat is a decision with an entry; the position is then booked off-clock."""
    core = new_core()
    elapsed = 0
    decisions = 0
    for index, signal in enumerate(signals(count)):
        started = time.perf_counter_ns()
        commands = core.on_signal(signal)
        elapsed += time.perf_counter_ns() - started
        submits = [c for c in commands if isinstance(c, SubmitOrder)]
        decisions += len(submits)
        for submit in submits:  # complete the order without timing it, so the next signal sees the position
            result, update = answers(submit.intent, index + 1, signal.time)
            core.on_submit_result(result)
            core.on_user_event(update, signal.time)
    return elapsed / decisions / 1000


def time_planner_only(count: int) -> float:
    holdings = {PositionSide.BOTH: Holding()}
    filters = FILTERS["BTCUSDT"]
    elapsed = 0
    for signal in signals(count):
        started = time.perf_counter_ns()
        plan = plan_signal(signal, settings=SETTINGS, filters=filters, position_mode=PositionMode.ONEWAY,
                           holdings=holdings, reference_price=PRICE, equity=Decimal("10000"))
        elapsed += time.perf_counter_ns() - started
        amount = plan.intents[0].quantity if plan.intents and signal.side is SignalSide.LONG else Decimal(0)
        holdings = {PositionSide.BOTH: Holding(amount, "alpha" if amount else None)}
    return elapsed / count / 1000


def time_order_life(count: int) -> float:
    """Everything the core does for one order: signal, submit result, fill event (answers built beforehand)."""
    core = new_core()
    total = 0
    orders = 0
    for index, signal in enumerate(signals(count)):
        started = time.perf_counter_ns()
        commands = core.on_signal(signal)
        total += time.perf_counter_ns() - started
        for command in commands:
            if isinstance(command, SubmitOrder):
                result, update = answers(command.intent, index + 1, signal.time)
                started = time.perf_counter_ns()
                core.on_submit_result(result)
                core.on_user_event(update, signal.time)
                total += time.perf_counter_ns() - started
                orders += 1
    return total / orders / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--decisions", type=int, default=20_000)
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPU(s); "
          f"best of {args.repeat}, {args.decisions} signals (LONG / FLAT alternating)")
    core = min(time_signals_only(args.decisions) for _ in range(args.repeat))
    planner = min(time_planner_only(args.decisions) for _ in range(args.repeat))
    life = min(time_order_life(args.decisions) for _ in range(args.repeat))
    print(f"signal -> commands            {core:8.2f} us/decision  baseline planner alone {planner:6.2f} us   "
          f"ratio {core / planner:5.2f}")
    print(f"whole order life in the core  {life:8.2f} us/order     (signal, submit result, fill event)")


if __name__ == "__main__":
    main()
