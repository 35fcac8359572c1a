"""The ``reconcile`` command: bring the database in line with the exchange on demand, and say what was found.

It runs the same reconciliation the bot runs at start, after a user-stream interruption and every 15 minutes
(``executor/reconcile.py``, applied by the execution core, so the books and the database move together): open
orders (plain and conditional), positions, the account and every fill since the last one stored are read and
compared with the database. Fills the database lacks are stored and booked, orders are brought to their real
state, orders with our ids are adopted, others are recorded as external. A difference nothing explains is
confirmed once more (the core's rule, 5 s later) and then halts trading, as it would in a running bot.

Against which exchange: in sim mode, the simulated account saved in the database (it is saved again afterwards,
since reconciliation may place protective orders or cancel foreign ones); in testnet / mainnet mode, the
configured Binance endpoints. The bot must not be running (its heartbeat fresh): it reconciles itself.

Exit codes: 0 nothing unexplained, 1 nothing to reconcile (no database, or no simulated account in it), 2 a
problem named on stderr (setting, database, exchange unreachable), 3 unexplained differences (trading halted;
``uv run main.py risk`` shows the reason, ``risk clear`` lifts it once an operator has looked).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass

from config import AppConfig
from database.access import explain, open_existing, shown_url
from database.errors import DatabaseMissing, DatabaseUnavailable
from database.journal import RepositoryJournal
from database.repository import Repository
from executor.reconcile import ReconcilePlan
from executor.risk import GLOBAL_SCOPE
from runtime.applier import SyncApplier, run_sync
from runtime.assembly import build_core
from runtime.heartbeat import HEARTBEAT_FILE, Liveness, liveness, read_heartbeat, utc_text
from simulator.engine import SimExchange
from simulator.exchange_info import load_symbol_filters
from simulator.gateway import SimGateway
from simulator.state import StateError
from utils.clock import SimulatedClock

EXIT_CLEAN = 0
EXIT_NOTHING = 1
EXIT_PROBLEM = 2
EXIT_UNEXPLAINED = 3


@dataclass
class Found:
    """What the exchange held when reconciliation read it."""

    open_orders: int
    open_algo_orders: int
    positions: list[str]
    wallet: str


def _fail(message: str, code: int = EXIT_PROBLEM) -> int:
    print(message, file=sys.stderr, flush=True)
    return code


def bot_is_running(config: AppConfig) -> bool:
    try:
        document = read_heartbeat(config.settings.status_dir / HEARTBEAT_FILE)
    except ValueError:
        return False
    return liveness(document, time.time_ns() // 1_000_000) is Liveness.FRESH


def command_reconcile(config: AppConfig) -> int:
    settings = config.settings
    if bot_is_running(config):
        return _fail(f"the bot is running (its heartbeat in {settings.status_dir} is fresh): it reconciles by "
                     "itself at start, after every stream interruption and every 15 minutes; stop it first to "
                     "reconcile on demand.")
    try:
        repository = open_existing(settings.db_url)
    except DatabaseMissing as error:
        return _fail(str(error), EXIT_NOTHING)
    except DatabaseUnavailable as error:
        return _fail(str(error))
    try:
        if settings.mode.value == "sim":
            return _reconcile_sim_account(config, repository)
        return _fail(f"MODE={settings.mode.value}: reconciling against Binance needs the live client; "
                     "use MODE=sim to reconcile the simulated account saved in the database.")
    except DatabaseUnavailable as error:
        return _fail(str(error))
    except Exception as error:  # the database went away mid-way, say: one line, not a traceback
        if type(error).__module__.startswith("sqlalchemy"):
            return _fail(explain(error, shown_url(settings.db_url)))
        raise
    finally:
        repository.close()


def _reconcile_sim_account(config: AppConfig, repository: Repository) -> int:
    saved = repository.load_sim_account()
    if saved is None:
        return _fail(f"no simulated account is saved in {shown_url(config.settings.db_url)}: nothing to reconcile "
                     "against (a sim run saves one; `uv run main.py` starts it).", EXIT_NOTHING)
    document, saved_at = saved
    clock = SimulatedClock(saved_at)
    repository.clock = clock
    try:
        exchange = SimExchange.restore(json.loads(document), clock=clock)
    except (ValueError, StateError) as error:
        return _fail(f"the simulated account saved in the database cannot be restored ({error}); a run with "
                     "--fresh-account starts a new one.")
    highest_order, highest_trade = repository.highest_exchange_ids()
    exchange.move_ids_above(order_id=highest_order, trade_id=highest_trade)
    symbols = [symbol.symbol for symbol in config.symbols]
    all_filters = load_symbol_filters()
    filters = {symbol: all_filters[symbol] for symbol in symbols if symbol in all_filters}
    parts = build_core(config, repository, filters)
    gateway = SimGateway(exchange)
    found = _found(gateway)
    applier = SyncApplier(parts.core, gateway, RepositoryJournal(repository), now=clock.now_ms,
                          user_events=gateway.take_user_events, on_notice=lambda notice: None)
    applier.start()
    first = parts.core.last_reconcile
    if first is not None and first.problems:
        # The core confirms a difference once more before it halts (a fill in flight explains many).
        applier.tick_until(clock.now_ms() + parts.core.policy.confirm_difference_ms, set_time=clock.set)
    repository.save_sim_account(json.dumps(exchange.snapshot()), clock.now_ms())
    plan = parts.core.last_reconcile or ReconcilePlan(problems=["reconciliation did not run"])
    halted = parts.risk.state(GLOBAL_SCOPE)
    print(render(found, plan, f"the simulated account saved at {utc_text(saved_at)}"))
    if plan.problems:
        print(f"\nTrading is {halted.state.value}: {halted.reason}\nLook at the differences above; "
              "`uv run main.py risk clear global` lets the bot trade again.")
        return EXIT_UNEXPLAINED
    return EXIT_CLEAN


def _found(gateway: SimGateway) -> Found:
    orders = run_sync(gateway.open_orders())
    algos = run_sync(gateway.open_algo_orders())
    positions = [f"{p.symbol} {p.position_side.value} {p.amount}" for p in run_sync(gateway.positions()) if p.amount]
    account = run_sync(gateway.account())
    return Found(len(orders), len(algos), positions, f"{account.wallet_balance:.2f} USDT")


def render(found: Found, plan: ReconcilePlan, against: str) -> str:
    lines = [f"Reconciled with {against}.",
             f"  exchange holds   {found.open_orders} open order(s), {found.open_algo_orders} conditional "
             f"order(s), wallet {found.wallet}",
             "  positions        " + (", ".join(found.positions) or "none")]
    sections = (("changed", plan.fixed), ("worth a look", plan.warnings), ("UNEXPLAINED", plan.problems))
    for title, entries in sections:
        if entries:
            lines.append(f"  {title}:")
            lines.extend(f"    - {entry}" for entry in entries)
    if not (plan.fixed or plan.warnings or plan.problems):
        lines.append("  the database already matched the exchange: nothing changed")
    return "\n".join(lines)
