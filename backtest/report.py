"""What a backtest did, from the core's persist commands: trades, statistics, equity curve, fingerprint, files.

Money stays Decimal where it is booked (trades, fees, funding, the wallet); the equity curve and the statistics
computed from it (drawdown, Sharpe, Sortino, exposure) are floats, one point per bar close.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from backtest.data import BarSeries
from backtest.engine import BacktestResult
from executor.commands import PersistFill, PersistFunding, PersistIntent, PersistRoundTrip, PersistSignal
from utils.domain import ZERO, Fill, RoundTrip, TripStatus

MS_PER_DAY = 86_400_000
TRADE_COLUMNS = ("strategy", "symbol", "position_side", "direction", "open_time", "close_time", "quantity",
                 "entry_price", "exit_price", "realized_pnl", "commission", "net_pnl", "fills", "trip_id")


def _text(value: Decimal) -> str:
    """A Decimal without trailing zeros ("16537.5" whether the file said 16537.50 or 16537.5)."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def closed_trades(result: BacktestResult) -> list[RoundTrip]:
    """The closed round trips, in the order they closed."""
    return [c.trip for c in result.journal.commands
            if isinstance(c, PersistRoundTrip) and c.trip.status is TripStatus.CLOSED]


def open_trades(result: BacktestResult) -> list[RoundTrip]:
    """The round trips still open at the end (their last stored state)."""
    latest: dict[str, RoundTrip] = {}
    for command in result.journal.commands:
        if isinstance(command, PersistRoundTrip):
            latest[command.trip.trip_id] = command.trip
    return [trip for trip in latest.values() if trip.status is TripStatus.OPEN and trip.amount]


def fills(result: BacktestResult) -> list[Fill]:
    return [c.fill for c in result.journal.commands if isinstance(c, PersistFill)]


def funding_payments(result: BacktestResult) -> list[PersistFunding]:
    return [c for c in result.journal.commands if isinstance(c, PersistFunding)]


def trade_fields(trip: RoundTrip) -> list[str]:
    return [trip.strategy, trip.symbol, trip.position_side.value, "LONG" if trip.direction.value == "BUY" else
            "SHORT", str(trip.open_time), str(trip.close_time or ""), _text(trip.quantity), _text(trip.entry_price),
            _text(trip.exit_price), _text(trip.realized_pnl), _text(trip.commission), _text(trip.net_pnl),
            str(trip.fills), trip.trip_id]


def fingerprint(trips: Iterable[RoundTrip]) -> str:
    """sha256 over the closed trades (every column of trades.csv, Decimals without trailing zeros): any change to
    what was traded, when, at what price, with what fees, changes it."""
    digest = hashlib.sha256()
    for trip in trips:
        digest.update(("|".join(trade_fields(trip)) + "\n").encode())
    return digest.hexdigest()


# ================================================================================================== curves
@dataclass
class Curve:
    """Equity (or one strategy's PnL) at every bar close of the run, and whether it held a position then."""

    times: np.ndarray  # int64 ms, bar closes
    values: np.ndarray  # float64 USDT
    exposed: np.ndarray  # bool


def timeline(series: Sequence[BarSeries]) -> np.ndarray:
    return np.unique(np.concatenate([s.close_time for s in series]))


def _prices_on(series: BarSeries, times: np.ndarray) -> np.ndarray:
    """The symbol's last close at each time (its first close before its first bar)."""
    index = np.searchsorted(series.close_time, times, "right") - 1
    return series.close[np.clip(index, 0, len(series) - 1)]


def curve(result: BacktestResult, times: np.ndarray, *, strategy: str | None = None, symbol: str | None = None,
          base: float = 0.0) -> Curve:
    """``base`` plus the realized PnL, fees, funding and unrealized PnL of the fills of ``strategy`` on ``symbol``
    (None: all), at each of ``times``."""
    owners = fill_owners(result)
    events: list[tuple[int, float]] = []
    unrealized = np.zeros(len(times))
    exposed = np.zeros(len(times), dtype=bool)
    positions: dict[tuple[str, str], list[tuple[int, float, float]]] = {}  # key -> (time, amount, entry) after
    state: dict[tuple[str, str], tuple[float, float]] = {}
    for fill, owner in zip(fills(result), owners, strict=True):
        if (strategy is not None and owner != strategy) or (symbol is not None and fill.symbol != symbol):
            continue
        events.append((fill.time, float(fill.realized_pnl - fill.commission)))
        key = (fill.symbol, fill.position_side.value)
        amount, entry = state.get(key, (0.0, 0.0))
        signed = float(fill.quantity) * fill.side.sign
        price = float(fill.price)
        if amount == 0 or (amount > 0) == (signed > 0):
            total = amount + signed
            entry = (amount * entry + signed * price) / total if total else 0.0
            amount = total
        else:
            amount += signed
            if abs(amount) < 1e-12:
                amount, entry = 0.0, 0.0
            elif (amount > 0) == (signed > 0):  # went through zero
                entry = price
        state[key] = (amount, entry)
        positions.setdefault(key, []).append((fill.time, amount, entry))
    for payment, owner in funding_owners(result):
        if (strategy is not None and owner != strategy) or (symbol is not None and payment.symbol != symbol):
            continue
        events.append((payment.time, float(payment.amount)))
    by_symbol = {s.symbol: s for s in result.series}
    for (sym, _side), steps in positions.items():
        step_times = np.array([t for t, _, _ in steps], dtype=np.int64)
        amounts = np.array([a for _, a, _ in steps])
        entries = np.array([e for _, _, e in steps])
        index = np.searchsorted(step_times, times, "right") - 1
        held = index >= 0
        amount_at = np.where(held, amounts[np.clip(index, 0, None)], 0.0)
        entry_at = np.where(held, entries[np.clip(index, 0, None)], 0.0)
        unrealized += amount_at * (_prices_on(by_symbol[sym], times) - entry_at)
        exposed |= amount_at != 0
    values = np.full(len(times), base)
    if events:
        events.sort()
        event_times = np.array([t for t, _ in events], dtype=np.int64)
        totals = np.cumsum([v for _, v in events])
        index = np.searchsorted(event_times, times, "right") - 1
        values += np.where(index >= 0, totals[np.clip(index, 0, None)], 0.0)
    return Curve(times, values + unrealized, exposed)


def fill_owners(result: BacktestResult) -> list[str]:
    """The strategy each fill belongs to: its order's, or (a liquidation) the owner of the position it closed."""
    strategies = {c.intent.client_order_id: c.intent.strategy for c in result.journal.commands
                  if isinstance(c, PersistIntent)}
    owner_of: dict[tuple[str, str], str] = {}
    owners = []
    for fill in fills(result):
        key = (fill.symbol, fill.position_side.value)
        owner = strategies.get(fill.client_order_id) or owner_of.get(key, "")
        owner_of[key] = owner
        owners.append(owner)
    return owners


def funding_owners(result: BacktestResult) -> list[tuple[PersistFunding, str]]:
    """Each funding payment with the strategy whose position paid it (a cross-margin payment is booked on
    "ACCOUNT": it goes to the strategy holding a position then, the largest if several)."""
    holders: list[tuple[int, str, str, float]] = []  # time, symbol, owner, |amount| after the fill
    state: dict[tuple[str, str], float] = {}
    for fill, owner in zip(fills(result), fill_owners(result), strict=True):
        key = (fill.symbol, fill.position_side.value)
        state[key] = state.get(key, 0.0) + float(fill.quantity) * fill.side.sign
        holders.append((fill.time, fill.symbol, owner, abs(state[key])))
    result_pairs = []
    for payment in funding_payments(result):
        held: dict[tuple[str, str], tuple[float, str]] = {}
        for time, sym, owner, size in holders:
            if time > payment.time:
                break
            held[(sym, owner)] = (size, owner)
        candidates = [(size, owner) for (sym, _), (size, owner) in held.items()
                      if size and (payment.symbol in ("ACCOUNT", sym))]
        result_pairs.append((payment, max(candidates)[1] if candidates else ""))
    return result_pairs


# ============================================================================================= statistics
@dataclass
class Row:
    """One line of the summary: a strategy on a symbol, or the whole account."""

    strategy: str
    symbol: str
    trades: int
    wins: int
    net_pnl: Decimal  # realized PnL minus fees, closed trades
    fees: Decimal
    funding: Decimal
    max_drawdown: float  # USDT, on the curve
    max_drawdown_pct: float  # of the peak equity (the account row) or of the starting balance
    sharpe: float
    sortino: float
    exposure: float  # share of the bars with a position

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "symbol": self.symbol, "trades": self.trades, "wins": self.wins,
                "win_rate": round(self.win_rate, 6), "net_pnl": _text(self.net_pnl), "fees": _text(self.fees),
                "funding": _text(self.funding), "max_drawdown": round(self.max_drawdown, 6),
                "max_drawdown_pct": round(self.max_drawdown_pct, 6), "sharpe": round(self.sharpe, 6),
                "sortino": round(self.sortino, 6), "exposure": round(self.exposure, 6)}


def drawdown(values: np.ndarray) -> tuple[np.ndarray, float, int]:
    """The drawdown below the running peak at each point, its largest value, and where that is."""
    if len(values) == 0:
        return values, 0.0, 0
    peaks = np.maximum.accumulate(values)
    below = peaks - values
    worst = int(np.argmax(below))
    return below, float(below[worst]), worst


def daily_ratios(times: np.ndarray, values: np.ndarray, capital: float) -> tuple[float, float]:
    """Annualised Sharpe and Sortino of the daily changes of ``values`` as returns on ``capital`` (365 days a
    year, no risk-free rate); 0 when there are fewer than two days or no variation."""
    if len(times) == 0 or capital <= 0:
        return 0.0, 0.0
    days = times // MS_PER_DAY
    last_of_day = np.flatnonzero(np.diff(days, append=days[-1] + 1))
    closes = np.concatenate([[values[0]], values[last_of_day]])
    returns = np.diff(closes) / capital
    if len(returns) < 2:
        return 0.0, 0.0
    mean, deviation = float(np.mean(returns)), float(np.std(returns, ddof=1))
    downside = returns[returns < 0]
    downside_dev = float(math.sqrt(np.sum(downside ** 2) / (len(returns) - 1))) if len(downside) else 0.0
    sharpe = mean / deviation * math.sqrt(365) if deviation > 0 else 0.0
    sortino = mean / downside_dev * math.sqrt(365) if downside_dev > 0 else 0.0
    return sharpe, sortino


def summary_rows(result: BacktestResult, trades: list[RoundTrip], times: np.ndarray) -> list[Row]:
    """One row per (strategy, symbol) that was configured, then the account's row (strategy "all")."""
    start = float(result.start_balance)
    funding_by: dict[tuple[str, str], Decimal] = {}
    for payment, owner in funding_owners(result):
        symbols = [payment.symbol] if payment.symbol != "ACCOUNT" else [
            t.symbol for t in trades + open_trades(result) if t.strategy == owner][:1] or ["ACCOUNT"]
        key = (owner, symbols[0])
        funding_by[key] = funding_by.get(key, ZERO) + payment.amount
    rows = []
    for slots in result.config_strategies:
        strategy, symbol = slots
        mine = [t for t in trades if t.strategy == strategy and t.symbol == symbol]
        row_curve = curve(result, times, strategy=strategy, symbol=symbol)
        _, worst, _ = drawdown(row_curve.values)
        sharpe, sortino = daily_ratios(times, row_curve.values, start)
        rows.append(Row(strategy, symbol, len(mine), sum(1 for t in mine if t.net_pnl > 0),
                        sum((t.net_pnl for t in mine), ZERO), sum((t.commission for t in mine), ZERO),
                        funding_by.get((strategy, symbol), ZERO), worst, worst / start * 100 if start else 0.0,
                        sharpe, sortino, float(np.mean(row_curve.exposed)) if len(times) else 0.0))
    account = curve(result, times, base=start)
    below, worst, at = drawdown(account.values)
    peaks = np.maximum.accumulate(account.values) if len(account.values) else account.values
    sharpe, sortino = daily_ratios(times, account.values, start)
    payments = funding_payments(result)
    rows.append(Row("all", "all", len(trades), sum(1 for t in trades if t.net_pnl > 0),
                    sum((t.net_pnl for t in trades), ZERO), sum((t.commission for t in trades), ZERO),
                    sum((p.amount for p in payments), ZERO), worst,
                    worst / float(peaks[at]) * 100 if len(peaks) and peaks[at] else 0.0, sharpe, sortino,
                    float(np.mean(account.exposed)) if len(times) else 0.0))
    return rows


# ================================================================================================== files
@dataclass
class Report:
    """Everything written at the end of a run."""

    result: BacktestResult
    trades: list[RoundTrip]
    rows: list[Row]
    fingerprint: str
    times: np.ndarray
    equity: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        result = self.result
        account = result.exchange.account()
        orders = sum(1 for c in result.journal.commands if isinstance(c, PersistIntent))
        signals = sum(1 for c in result.journal.commands if isinstance(c, PersistSignal))
        return {
            "fingerprint": self.fingerprint,
            "data": [{"symbol": s.symbol, "file": str(s.path), "bars": len(s),
                      "first_open_time": int(s.open_time[0]) if len(s) else None,
                      "last_close_time": int(s.close_time[-1]) if len(s) else None} for s in result.series],
            "bars": result.bars, "wake_bars": result.wake_bars, "every_bar": result.every_bar,
            "signals": result.signals, "signal_records": signals, "orders": orders,
            "fills": sum(1 for c in result.journal.commands if isinstance(c, PersistFill)),
            "closed_trades": len(self.trades),
            "engine_seconds": round(result.seconds, 6), "load_seconds": round(result.load_seconds, 6),
            "minute_costs": result.costs.as_dict(),
            "bars_per_second": round(result.bars / (result.seconds + result.load_seconds), 1)
            if result.seconds + result.load_seconds > 0 else None,
            "start_balance": _text(result.start_balance), "wallet_balance": _text(account.wallet_balance),
            "equity": _text(account.equity), "realized_pnl": _text(account.realized_pnl),
            "fees": _text(account.fees_paid), "funding": _text(account.funding_total),
            "funding_times_without_a_rate": result.funding_missing,
            "open_positions": [{"symbol": p.symbol, "position_side": p.position_side.value, "amount": _text(p.amount),
                                "entry_price": _text(p.entry_price)} for p in result.exchange.positions() if p.amount],
            "disabled_strategies": [f"{d.strategy} on {d.symbol}: {d.reason}" for d in result.disabled],
            "summary": [row.as_dict() for row in self.rows],
            **self.extra,
        }

    def write(self, directory: Path) -> list[Path]:
        """trades.csv, report.json, equity.html and equity.png in ``directory`` (created if needed)."""
        from backtest.plots import write_equity_html, write_equity_png

        directory.mkdir(parents=True, exist_ok=True)
        written = [directory / "trades.csv", directory / "report.json", directory / "equity.html",
                   directory / "equity.png"]
        with open(written[0], "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(TRADE_COLUMNS)
            for trip in self.trades:
                writer.writerow(trade_fields(trip))
        written[1].write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        below, _, _ = drawdown(self.equity)
        write_equity_html(written[2], self.times, self.equity, below, title=self.title())
        write_equity_png(written[3], self.times, self.equity, below, title=self.title())
        return written

    def title(self) -> str:
        names = sorted({f"{s} {y}" for s, y in self.result.config_strategies})
        return "Backtest: " + ", ".join(names)


def build_report(result: BacktestResult, extra: dict[str, Any] | None = None) -> Report:
    trades = closed_trades(result)
    times = timeline(result.series)
    rows = summary_rows(result, trades, times)
    equity = curve(result, times, base=float(result.start_balance)).values
    return Report(result, trades, rows, fingerprint(trades), times, equity, dict(extra or {}))
