"""Speed of the simulated exchange on the backtest hot path, next to bare-Python baselines measured in the same run.

    uv run python benchmarks/bench_engine.py [--repeat 5]

Figures (best of --repeat runs, microseconds per operation):
  * an idle candle: on_candle for a symbol with no open orders and no position;
  * a market order's whole life: validate, accept, fill (slippage, square-root impact, volume cap), position and
    wallet update, events (with a listener attached, and without one, where the engine builds no event dicts);
    a new candle every 1,000 orders, so that the volume cap of one candle does not run out;
  * a resting limit order's life: accepted, then filled as maker by the next candle (two engine calls);
  * a candle that finds a position and a resting order that does not fill (the path check and liquidation level).
Each is paired with a baseline: a plain loop doing the same dict and Decimal work with no engine around it.
Input: real BTCUSDT 1m candles from ../shared/data/usdm_1m (see ../shared/data/README.md).
"""

from __future__ import annotations

import argparse
import csv
import gc
import platform
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.engine import SimExchange  # noqa: E402
from simulator.exchange_info import load_symbol_filters  # noqa: E402
from utils.clock import SimulatedClock  # noqa: E402
from utils.domain import Candle, OrderType, Side, TimeInForce  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "usdm_1m" / "BTCUSDT_usdm_1m_2023-04-20_2023-04-26.csv"
SYMBOL = "BTCUSDT"


def load_candles() -> list[Candle]:
    if not DATA.exists():
        sys.exit(f"needs the real candles at {DATA} (the shared folder beside the checkout)")
    with open(DATA, newline="") as handle:
        return [Candle(SYMBOL, int(r["open_time_ms"]), int(r["close_time_ms"]), Decimal(r["open"]),
                       Decimal(r["high"]), Decimal(r["low"]), Decimal(r["close"]), Decimal(r["volume"]))
                for r in csv.DictReader(handle)]


def best_of(repeat: int, run: Callable[[], tuple[int, int]]) -> float:
    """Microseconds per operation: ``run`` returns (elapsed ns, operations); the fastest of ``repeat`` runs."""
    results = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            elapsed, operations = run()
        finally:
            gc.enable()
        results.append(elapsed / operations / 1000)
    return min(results)


def exchange() -> tuple[SimExchange, SimulatedClock]:
    clock = SimulatedClock(0)
    return SimExchange(load_symbol_filters(), clock=clock, initial_balance=Decimal("1000000")), clock


# ------------------------------------------------------------------------------------------------ engine runs
def idle_candles(candles: list[Candle]) -> tuple[int, int]:
    ex, clock = exchange()
    start = time.perf_counter_ns()
    for candle in candles:
        clock.set(candle.close_time)
        ex.on_candle(candle)
    return time.perf_counter_ns() - start, len(candles)


def market_orders(candles: list[Candle], listen: bool) -> tuple[int, int]:
    ex, clock = exchange()
    if listen:
        sink: list[dict] = []
        ex.add_listener(sink.append)
    clock.set(candles[0].close_time)
    ex.on_candle(candles[0])
    quantity = Decimal("0.010")
    count = 20_000
    new_order = ex.new_order
    start = time.perf_counter_ns()
    for index in range(count):
        if index % 1000 == 999:  # a new candle now and then: one candle's liquidity does not last 20,000 orders
            candle = candles[index // 1000 + 1]
            clock.set(candle.close_time)
            ex.on_candle(candle)
        new_order(symbol=SYMBOL, side=Side.BUY if index % 2 == 0 else Side.SELL, order_type=OrderType.MARKET,
                  quantity=quantity)
    return time.perf_counter_ns() - start, count


def resting_limit_orders(candles: list[Candle]) -> tuple[int, int]:
    """Per candle: a sell limit one tick under the next candle's high (so it fills), then that candle."""
    ex, clock = exchange()
    sink: list[dict] = []
    ex.add_listener(sink.append)
    clock.set(candles[0].close_time)
    ex.on_candle(candles[0])
    ex.new_order(symbol=SYMBOL, side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal("5"))  # to sell from
    tick = Decimal("0.1")
    quantity = Decimal("0.001")
    count = 0
    elapsed = 0
    for previous, candle in zip(candles, candles[1:4001], strict=False):
        price = max(candle.high - tick, previous.close + tick)
        if price >= candle.high:
            clock.set(candle.close_time)
            ex.on_candle(candle)
            continue
        start = time.perf_counter_ns()
        ex.new_order(symbol=SYMBOL, side=Side.SELL, order_type=OrderType.LIMIT, quantity=quantity, price=price,
                     time_in_force=TimeInForce.GTC, reduce_only=True)
        clock.set(candle.close_time)
        ex.on_candle(candle)
        elapsed += time.perf_counter_ns() - start
        count += 1
    assert not ex.open_orders(), "every limit order should have filled"
    return elapsed, count


def busy_candles(candles: list[Candle]) -> tuple[int, int]:
    """A position and a far resting bid: every candle runs the path and the liquidation level."""
    ex, clock = exchange()
    clock.set(candles[0].close_time)
    ex.on_candle(candles[0])
    ex.new_order(symbol=SYMBOL, side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal("1"))
    ex.new_order(symbol=SYMBOL, side=Side.BUY, order_type=OrderType.LIMIT, quantity=Decimal("0.001"),
                 price=Decimal("16000.0"), time_in_force=TimeInForce.GTC)
    rest = candles[1:]
    start = time.perf_counter_ns()
    for candle in rest:
        clock.set(candle.close_time)
        ex.on_candle(candle)
    return time.perf_counter_ns() - start, len(rest)


# --------------------------------------------------------------------------------------------------- baselines
def baseline_candles(candles: list[Candle]) -> tuple[int, int]:
    """The least a candle costs: clock set, state lookup, five stores, the funding-time and book checks."""
    clock = SimulatedClock(0)
    states = {SYMBOL: {"orders": {}, "funding": 0}}
    start = time.perf_counter_ns()
    for candle in candles:
        clock.set(candle.close_time)
        state = states[candle.symbol]
        if state["funding"] <= candle.open_time:
            state["funding"] = candle.open_time + 28_800_000
        if not state["orders"]:
            state["last"] = candle.close
            state["low"] = candle.low
            state["high"] = candle.high
            state["volume"] = candle.volume
            state["mark"] = candle.close
    return time.perf_counter_ns() - start, len(candles)


def baseline_market_orders(candles: list[Candle], listen: bool) -> tuple[int, int]:
    """The bare arithmetic and bookkeeping of a market fill, with (optionally) the same event dicts as strings."""
    close = candles[0].close
    fee_rate = Decimal("0.0005")
    slip = Decimal("1.0001")
    tick = Decimal("0.1")
    quantum = Decimal("0.00000001")
    position = {"amount": Decimal(0), "entry": Decimal(0)}
    orders: dict[int, dict] = {}
    trades: list[tuple] = []
    wallet = Decimal(1000000)
    sink: list[dict] = []
    count = 20_000
    quantity = Decimal("0.010")
    start = time.perf_counter_ns()
    for index in range(count):
        buying = index % 2 == 0
        price = (close * slip / tick).to_integral_value() * tick if buying else close
        fee = (price * quantity * fee_rate).quantize(quantum)
        amount = position["amount"]
        signed = quantity if buying else -quantity
        if amount == 0 or (amount > 0) == buying:
            position["entry"] = (abs(amount) * position["entry"] + quantity * price) / (abs(amount) + quantity)
            realized = Decimal(0)
        else:
            realized = ((price - position["entry"]) * quantity).quantize(quantum)
        position["amount"] = amount + signed
        wallet += realized - fee
        orders[index] = {"id": index, "qty": quantity, "price": price, "status": "FILLED"}
        trades.append((index, price, quantity, fee, realized))
        if listen:
            for execution in ("NEW", "TRADE"):
                sink.append({"e": "ORDER_TRADE_UPDATE", "E": index, "T": index, "o": {
                    "s": SYMBOL, "c": "x", "S": "BUY", "o": "MARKET", "f": "GTC", "q": str(quantity), "p": "0",
                    "ap": str(price), "sp": "0", "x": execution, "X": "FILLED", "i": index, "l": str(quantity),
                    "z": str(quantity), "L": str(price), "N": "USDT", "n": str(fee), "T": index, "t": index,
                    "b": "0", "a": "0", "m": False, "R": False, "wt": "CONTRACT_PRICE", "ot": "MARKET",
                    "ps": "BOTH", "cp": False, "pP": False, "si": 0, "ss": 0, "rp": str(realized),
                    "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0, "er": "0"}})
            sink.append({"e": "ACCOUNT_UPDATE", "E": index, "T": index, "a": {"m": "ORDER", "B": [
                {"a": "USDT", "wb": str(wallet), "cw": str(wallet), "bc": "0"}], "P": [
                {"s": SYMBOL, "pa": str(position["amount"]), "ep": str(position["entry"]), "bep": "0",
                 "cr": "0", "up": "0", "mt": "cross", "iw": "0", "ps": "BOTH"}]}})
    return time.perf_counter_ns() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the fastest is reported")
    args = parser.parse_args()
    candles = load_candles()
    r = args.repeat
    rows = [
        ("idle candle (no orders, no position)", best_of(r, lambda: idle_candles(candles)),
         best_of(r, lambda: baseline_candles(candles)), "clock + dict/Decimal stores"),
        ("market order life, events on", best_of(r, lambda: market_orders(candles, True)),
         best_of(r, lambda: baseline_market_orders(candles, True)), "fill arithmetic + 3 event dicts"),
        ("market order life, no listener", best_of(r, lambda: market_orders(candles, False)),
         best_of(r, lambda: baseline_market_orders(candles, False)), "fill arithmetic only"),
        ("limit order life (accept, candle, maker fill)", best_of(r, lambda: resting_limit_orders(candles)),
         None, ""),
        ("candle with a position and a resting order", best_of(r, lambda: busy_candles(candles)), None, ""),
    ]
    print(f"Python {platform.python_version()} on {platform.machine()} ({platform.system()}); "
          f"{len(candles)} BTCUSDT 1m candles; best of {r}")
    print(f"{'operation':48} {'engine µs':>10} {'baseline µs':>12} {'ratio':>7}  baseline does")
    for name, engine_us, baseline_us, what in rows:
        if baseline_us is None:
            print(f"{name:48} {engine_us:10.2f} {'':>12} {'':>7}")
        else:
            print(f"{name:48} {engine_us:10.2f} {baseline_us:12.2f} {engine_us / baseline_us:7.1f}  {what}")


if __name__ == "__main__":
    main()
