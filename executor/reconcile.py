"""Bring the database and the executor's books in line with what the exchange says (after a restart/reconnect).

Run at every start and after every user-data-stream reconnect. What the exchange reports wins; whatever cannot
be explained (an order we think is open that the exchange has never heard of, a position the fills do not
account for, an order nobody here placed) is reported, and on a real exchange it halts new entries until an
operator clears the halt: the bot refuses to trade on a mismatch it cannot explain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from database.models import IntentState
from executor.planner import Holding
from executor.service import ORDER_NOT_FOUND, Executor, TrackedOrder
from utils.domain import ZERO, OrderStatus, Position, PositionSide
from utils.errors import BinanceError, OutcomeUnknownError

log = logging.getLogger("executor.reconcile")


@dataclass
class ReconcileReport:
    fixed: list[str] = field(default_factory=list)  # differences explained and repaired
    problems: list[str] = field(default_factory=list)  # differences nobody can explain
    halted: bool = False


async def reconcile(executor: Executor) -> ReconcileReport:
    report = ReconcileReport()
    repository, gateway = executor.repository, executor.gateway
    ephemeral = bool(getattr(gateway, "ephemeral", False))
    try:
        await _orders(executor, report, ephemeral)
        await _foreign_orders(executor, report)
        await _fills(executor, report)
        await _positions(executor, report, ephemeral)
        account = await gateway.account()
        executor.wallet_balance = account.wallet_balance
    except OutcomeUnknownError as exc:
        report.problems.append(f"exchange did not answer during reconciliation: {exc}")
    if report.problems and not ephemeral:
        executor._halt("reconciliation found differences it cannot explain: " + "; ".join(report.problems[:5]))
        report.halted = True
    for line in report.fixed:
        log.info("reconciled", extra={"detail": line})
    for line in report.problems:
        log.error("unexplained difference with the exchange", extra={"detail": line})
    repository_positions = repository.positions()
    log.info("reconciliation finished", extra={"fixed": len(report.fixed), "problems": len(report.problems),
                                                "positions": len(repository_positions)})
    return report


async def _orders(executor: Executor, report: ReconcileReport, ephemeral: bool) -> None:
    repository, gateway = executor.repository, executor.gateway
    for record in repository.open_orders():
        cid = record.client_order_id
        try:
            if record.is_algo:
                ack = await gateway.query_algo_order(cid)
                executor.orders.setdefault(cid, TrackedOrder(record.to_intent(), create_time=record.intent_time,
                                                             is_algo=True))
                executor._apply_algo_status(cid, ack.status, ack.algo_id)
            else:
                order = await gateway.query_order(record.symbol, cid)
                repository.update_order(order)
                if order.status.is_open:
                    executor.orders[cid] = TrackedOrder(record.to_intent(), status=order.status,
                                                        create_time=order.create_time or record.intent_time)
            repository.mark_intent(cid, IntentState.ACKNOWLEDGED)
            report.fixed.append(f"order {cid}: status taken from the exchange")
        except BinanceError as exc:
            if exc.code != ORDER_NOT_FOUND:
                report.problems.append(f"order {cid}: lookup refused ({exc.code} {exc.msg})")
                continue
            if record.intent_state.is_unresolved and record.order_id is None:
                repository.mark_intent(cid, IntentState.NOT_FOUND)
                report.fixed.append(f"order {cid}: never reached the exchange (marked NOT_FOUND)")
            elif ephemeral:
                expired = replace(record.to_order(), status=OrderStatus.EXPIRED)
                repository.update_order(expired, is_algo=record.is_algo)
                report.fixed.append(f"order {cid}: the simulated exchange restarted empty (marked EXPIRED)")
            else:
                report.problems.append(f"order {cid} ({record.symbol}) is open here but unknown to the exchange")


async def _foreign_orders(executor: Executor, report: ReconcileReport) -> None:
    for order in await executor.gateway.open_orders():
        if order.symbol not in executor.filters:
            continue
        if executor.repository.get_order(order.client_order_id) is None:
            executor.repository.update_order(order)
            report.problems.append(f"order {order.client_order_id} ({order.symbol}) is open on the exchange but "
                                   "was not placed by this bot")


async def _fills(executor: Executor, report: ReconcileReport) -> None:
    repository = executor.repository
    for symbol in executor.filters:
        known = repository.all_fills(symbol)
        since = known[-1].time if known else None
        added = 0
        for fill in await executor.gateway.user_trades(symbol, start_time=since):
            if repository.record_fill(fill):
                added += 1
        if added:
            report.fixed.append(f"{symbol}: {added} fill(s) recorded that the stream had not delivered")


def _owner_from_fills(executor: Executor, symbol: str, side: PositionSide) -> str | None:
    """The strategy whose order last moved this position (its opener, under the one-owner rule)."""
    for fill in reversed(executor.repository.all_fills(symbol)):
        if fill.position_side is side:
            record = executor.repository.get_order(fill.client_order_id)
            if record is not None and record.strategy:
                return record.strategy
    return None


async def _positions(executor: Executor, report: ReconcileReport, ephemeral: bool) -> None:
    repository = executor.repository
    exchange = {(p.symbol, p.position_side): p for p in await executor.gateway.positions()
                if p.symbol in executor.filters}
    stored = {(p.symbol, p.position_side): p for p in repository.positions()}
    for key in sorted(set(exchange) | set(stored)):
        theirs = exchange.get(key)
        amount = theirs.amount if theirs is not None else ZERO
        ours = stored[key].amount if key in stored else ZERO
        if ours != amount:
            if ephemeral:
                report.fixed.append(f"{key[0]} {key[1].value}: stored {ours}, the fresh simulated exchange holds "
                                    f"{amount}; stored position replaced")
            else:
                fills_sum = sum((f.side.sign * f.quantity for f in repository.all_fills(key[0])
                                 if f.position_side is key[1]), ZERO)
                if fills_sum == amount:
                    report.fixed.append(f"{key[0]} {key[1].value}: position updated to {amount} (the fills "
                                        "explain it)")
                else:
                    report.problems.append(f"{key[0]} {key[1].value}: exchange holds {amount}, our fills add up "
                                           f"to {fills_sum}")
        position = theirs if theirs is not None else Position(key[0], key[1], ZERO,
                                                              update_time=executor.clock.now_ms())
        repository.upsert_position(position)
        executor.exchange_positions[key] = amount
        executor.entry_prices[key] = position.entry_price
        if amount != 0:
            owner = _owner_from_fills(executor, key[0], key[1])
            executor.holdings[key] = Holding(amount, owner)
            if owner is None:
                report.problems.append(f"{key[0]} {key[1].value}: position {amount} has no owning strategy here")
        else:
            executor.holdings.pop(key, None)

