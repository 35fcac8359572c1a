"""Risk guards: each guard at its exact edge, UTC day rollover, states across a restart, and the loss-run property."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from executor.risk import (
    GLOBAL_SCOPE,
    Guard,
    RiskEngine,
    RiskLimits,
    StateRecord,
    TradingState,
    format_time,
    strategy_scope,
    utc_day_start,
)

DAY0 = 1_714_521_600_000  # 2024-05-01T00:00:00.000Z
DAY1 = DAY0 + 86_400_000
NOON = DAY0 + 12 * 3_600_000
EMA = "ema"
EMA_SCOPE = strategy_scope(EMA)


def engine(**limits) -> RiskEngine:
    return RiskEngine(RiskLimits(**limits))


def entry(risk: RiskEngine, now_ms: int = NOON, *, strategy: str = EMA, symbol: str = "BTCUSDT",
          notional: str = "100", exposure: str = "0"):
    return risk.check_entry(strategy=strategy, symbol=symbol, notional=D(notional), symbol_exposure=D(exposure),
                            now_ms=now_ms)


def exit_allowed(risk: RiskEngine, now_ms: int = NOON, strategy: str = EMA) -> bool:
    return risk.check_exit(strategy=strategy, symbol="BTCUSDT", now_ms=now_ms).allowed


# ---- limits --------------------------------------------------------------------------------------------------


def test_limits_default_to_every_guard_off() -> None:
    risk = engine()
    for _ in range(50):
        risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-1000"), NOON)
        risk.on_position_opened(EMA, "BTCUSDT", NOON)
    assert entry(risk, notional="1000000000").allowed
    assert risk.expired_orders([("a", 0)], NOON) == []


@pytest.mark.parametrize(
    ("settings_", "error"),
    [
        ({"daily_loss_limit_usdt": D(0)}, ValueError),
        ({"daily_loss_limit_usdt": D("-5")}, ValueError),
        ({"daily_loss_limit_usdt": 5.0}, TypeError),
        ({"max_symbol_exposure_usdt": D("-1")}, ValueError),
        ({"max_new_positions_per_day": -1}, ValueError),
        ({"order_ttl_sec": 0}, ValueError),
        ({"max_consecutive_losses": 0}, ValueError),
        ({"funding_blackout_minutes": -1}, ValueError),
        ({"max_consecutive_losses": True}, TypeError),
    ],
)
def test_limits_reject_nonsense(settings_, error) -> None:
    with pytest.raises(error):
        RiskLimits(**settings_)


def test_limits_take_ints_as_decimals_and_overrides_by_config_key() -> None:
    base = RiskLimits(daily_loss_limit_usdt=100, max_new_positions_per_day=3)  # type: ignore[arg-type]
    assert base.daily_loss_limit_usdt == D(100) and isinstance(base.daily_loss_limit_usdt, D)
    tighter = base.with_overrides({"max_new_positions_per_day": 1})
    assert tighter == RiskLimits(daily_loss_limit_usdt=D(100), max_new_positions_per_day=1)
    with pytest.raises(ValueError, match="daily_loss_limit"):
        base.with_overrides({"daily_loss_limt_usdt": 5})


# ---- daily loss limit -----------------------------------------------------------------------------------------


def test_daily_loss_edge_realized_plus_unrealized() -> None:
    risk = engine(daily_loss_limit_usdt=D(100))
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-60.00"), NOON)
    risk.on_unrealized(EMA, D("-39.99"), NOON)
    assert risk.state(EMA_SCOPE).state is TradingState.ACTIVE
    assert entry(risk).allowed

    risk.on_unrealized(EMA, D("-40.00"), NOON + 1)
    record = risk.state(EMA_SCOPE)
    assert record.state is TradingState.REDUCING
    assert record.guard == Guard.DAILY_LOSS_LIMIT
    assert record.reason == "daily loss 100.00 USDT >= limit 100 USDT (realized -60.00, unrealized -40.00)"
    assert record.since_ms == NOON + 1
    decision = entry(risk)
    assert not decision.allowed and decision.guard == Guard.TRADING_STATE
    assert "REDUCING (exits only)" in decision.reason and "daily loss 100.00 USDT" in decision.reason
    assert exit_allowed(risk)
    assert entry(risk, strategy="other").allowed  # per strategy


def test_daily_loss_stays_until_the_next_utc_day_even_if_pnl_recovers() -> None:
    risk = engine(daily_loss_limit_usdt=D(100))
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-100"), NOON)
    assert risk.state(EMA_SCOPE).state is TradingState.REDUCING
    risk.on_unrealized(EMA, D("500"), NOON + 1)
    assert not entry(risk, DAY1 - 1).allowed  # 23:59:59.999

    assert entry(risk, DAY1).allowed  # 00:00:00.000: a new day lifts it
    record = risk.state(EMA_SCOPE)
    assert record.state is TradingState.ACTIVE and record.realized_pnl_today == 0 and record.since_ms == DAY1
    assert "new UTC day 2024-05-02" in record.reason


def test_daily_realized_pnl_resets_at_midnight_exactly() -> None:
    risk = engine(daily_loss_limit_usdt=D(100))
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-60"), DAY1 - 1)
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-60"), DAY1)
    assert risk.state(EMA_SCOPE).state is TradingState.ACTIVE
    assert risk.state(EMA_SCOPE).realized_pnl_today == D("-60")
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-40"), DAY1 + 1)
    assert risk.state(EMA_SCOPE).state is TradingState.REDUCING


def test_new_day_trips_again_if_unrealized_alone_is_beyond_the_limit() -> None:
    risk = engine(daily_loss_limit_usdt=D(100))
    risk.on_unrealized(EMA, D("-150"), NOON)
    assert risk.state(EMA_SCOPE).state is TradingState.REDUCING
    risk.on_time(DAY1)
    record = risk.state(EMA_SCOPE)
    assert record.state is TradingState.REDUCING and record.since_ms == DAY1
    assert record.reason == "daily loss 150 USDT >= limit 100 USDT (realized 0, unrealized -150)"


def test_closing_a_trade_with_its_unrealized_does_not_count_it_twice() -> None:
    risk = engine(daily_loss_limit_usdt=D(100))
    risk.on_unrealized(EMA, D("-60"), NOON)
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-60"), NOON + 1, unrealized_pnl=D(0))
    assert risk.state(EMA_SCOPE).state is TradingState.ACTIVE


def test_manual_states_never_lift_at_the_new_day() -> None:
    risk = engine(daily_loss_limit_usdt=D(100))
    risk.set_reducing(EMA_SCOPE, "watching a bad fill", NOON)
    risk.halt(GLOBAL_SCOPE, "exchange incident", NOON)
    risk.on_time(DAY1 + 5)
    assert risk.state(EMA_SCOPE).state is TradingState.REDUCING
    assert risk.state(EMA_SCOPE).reason == "watching a bad fill"
    assert risk.state().state is TradingState.HALTED


def test_per_strategy_override() -> None:
    risk = RiskEngine(RiskLimits(daily_loss_limit_usdt=D(100)), {"scalper": RiskLimits(daily_loss_limit_usdt=D(10))})
    risk.on_unrealized("scalper", D("-10"), NOON)
    risk.on_unrealized(EMA, D("-10"), NOON)
    assert risk.state(strategy_scope("scalper")).state is TradingState.REDUCING
    assert risk.state(EMA_SCOPE).state is TradingState.ACTIVE


# ---- max new positions per day --------------------------------------------------------------------------------


def test_max_new_positions_per_strategy_and_utc_day() -> None:
    risk = engine(max_new_positions_per_day=2)
    risk.on_position_opened(EMA, "BTCUSDT", NOON)
    assert entry(risk).allowed  # 1 opened: the 2nd is allowed
    risk.on_position_opened(EMA, "ETHUSDT", NOON)
    decision = entry(risk, DAY1 - 1)
    assert not decision.allowed and decision.guard == Guard.MAX_NEW_POSITIONS
    assert decision.reason == "ema opened 2 new positions on UTC day 2024-05-01 >= limit 2"
    assert entry(risk, strategy="other").allowed
    assert entry(risk, DAY1).allowed
    assert risk.state(EMA_SCOPE).new_positions_today == 0


def test_zero_new_positions_blocks_every_entry() -> None:
    assert entry(engine(max_new_positions_per_day=0)).guard == Guard.MAX_NEW_POSITIONS


# ---- symbol exposure ------------------------------------------------------------------------------------------


def test_symbol_exposure_edge() -> None:
    risk = engine(max_symbol_exposure_usdt=D(1000))
    assert entry(risk, exposure="900", notional="100").allowed
    decision = entry(risk, exposure="900", notional="100.01")
    assert not decision.allowed and decision.guard == Guard.SYMBOL_EXPOSURE
    assert decision.reason == "BTCUSDT exposure 900 + order 100.01 = 1000.01 USDT > limit 1000 USDT"
    with pytest.raises(ValueError, match="BTCUSDT"):
        entry(risk, notional="-1")


# ---- consecutive losses ---------------------------------------------------------------------------------------


def test_consecutive_losses_halt_and_clear() -> None:
    risk = engine(max_consecutive_losses=3)
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-1"), NOON)
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-1"), NOON)
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("0"), NOON)  # break-even ends the run
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-1"), NOON)
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-1"), NOON)
    assert risk.state(EMA_SCOPE).consecutive_losses == 2 and entry(risk).allowed

    risk.on_fill_closed_trade(EMA, "ETHUSDT", D("-2.50"), NOON + 7)
    record = risk.state(EMA_SCOPE)
    assert record.state is TradingState.HALTED and record.guard == Guard.CONSECUTIVE_LOSSES
    assert record.since_ms == NOON + 7
    assert record.reason.startswith("3 consecutive losing trades reached limit 3 (last: ETHUSDT -2.50 USDT)")
    assert "uv run main.py risk clear strategy:ema" in record.reason
    assert entry(risk).guard == Guard.TRADING_STATE
    assert exit_allowed(risk)

    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("5"), NOON + 8)  # a win resets the count, not the halt
    assert risk.state(EMA_SCOPE).state is TradingState.HALTED
    assert risk.state(EMA_SCOPE).consecutive_losses == 0
    assert not entry(risk, DAY1 + 1).allowed  # nor does a new day

    cleared = risk.clear(EMA_SCOPE, DAY1 + 2)
    assert cleared.state is TradingState.ACTIVE and cleared.consecutive_losses == 0 and cleared.guard is None
    assert cleared.reason.startswith("cleared by operator (was strategy:ema HALTED")
    assert entry(risk, DAY1 + 3).allowed


def test_clear_resets_the_loss_count() -> None:
    risk = engine(max_consecutive_losses=2)
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-1"), NOON)
    risk.halt(EMA_SCOPE, "manual", NOON)
    risk.clear(EMA_SCOPE, NOON)
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-1"), NOON)
    assert risk.state(EMA_SCOPE).state is TradingState.ACTIVE


def _trailing_losses(pnls: list[int]) -> int:
    run = 0
    for pnl in pnls:
        run = run + 1 if pnl < 0 else 0
    return run


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=5),
    events=st.lists(st.one_of(st.integers(min_value=-3, max_value=3), st.just("clear")), max_size=40),
)
def test_loss_counter_is_the_trailing_run_and_halts_iff_it_reached_the_limit(limit, events) -> None:
    risk = engine(max_consecutive_losses=limit)
    since_clear: list[int] = []
    for event in events:
        if event == "clear":
            if EMA_SCOPE in risk.states():
                risk.clear(EMA_SCOPE, NOON)
            since_clear = []
        else:
            risk.on_fill_closed_trade(EMA, "BTCUSDT", D(event), NOON)
            since_clear.append(event)
        record = risk.state(EMA_SCOPE)
        assert record.consecutive_losses == _trailing_losses(since_clear)
        reached = any(_trailing_losses(since_clear[: i + 1]) >= limit for i in range(len(since_clear)))
        assert (record.state is TradingState.HALTED) == reached
        assert entry(risk).allowed == (not reached)


# ---- funding blackout -----------------------------------------------------------------------------------------


def test_funding_blackout_edges_around_next_and_previous_funding_time() -> None:
    funding = DAY0 + 8 * 3_600_000
    window = 5 * 60_000
    risk = engine(funding_blackout_minutes=5)
    risk.on_funding_time("BTCUSDT", funding)
    assert entry(risk, funding - window - 1).allowed
    decision = entry(risk, funding - window)
    assert not decision.allowed and decision.guard == Guard.FUNDING_BLACKOUT
    assert decision.reason == (
        "BTCUSDT: 300.000 s before funding at 2024-05-01T08:00:00.000Z, within the 5-minute blackout"
    )
    assert not entry(risk, funding).allowed

    risk.on_funding_time("BTCUSDT", funding + 8 * 3_600_000)  # the stream moves on: the old time is remembered
    risk.on_funding_time("BTCUSDT", funding)  # a stale event changes nothing
    decision = entry(risk, funding + window)
    assert not decision.allowed and "300.000 s after funding at 2024-05-01T08:00:00.000Z" in decision.reason
    assert entry(risk, funding + window + 1).allowed
    assert not entry(risk, funding + 8 * 3_600_000 - window).allowed


def test_funding_blackout_refuses_while_the_funding_time_is_unknown() -> None:
    risk = engine(funding_blackout_minutes=5)
    decision = entry(risk)
    assert not decision.allowed and decision.guard == Guard.FUNDING_BLACKOUT
    assert "no funding time known for BTCUSDT" in decision.reason
    risk.on_funding_time("ETHUSDT", NOON + 3_600_000)
    assert not entry(risk).allowed and entry(risk, symbol="ETHUSDT").allowed


# ---- order TTL ------------------------------------------------------------------------------------------------


def test_order_ttl_exact_boundary() -> None:
    risk = RiskEngine(RiskLimits(order_ttl_sec=30), {"slow": RiskLimits(order_ttl_sec=60)})
    orders = [("old", NOON - 30_000), ("young", NOON - 29_999), ("older", NOON - 31_000), ("future", NOON + 5)]
    assert risk.expired_orders(orders, NOON) == ["old", "older"]
    assert risk.expired_orders(iter(orders), NOON) == ["old", "older"]
    assert risk.expired_orders(orders, NOON, strategy="slow") == []
    assert risk.expired_orders(orders, NOON + 30_000, strategy="slow") == ["old", "older"]
    assert risk.expired_orders([], NOON) == []


# ---- trading states -------------------------------------------------------------------------------------------


def test_global_halt_blocks_every_strategy_but_never_exits() -> None:
    risk = engine()
    risk.halt(GLOBAL_SCOPE, "exchange maintenance", NOON)
    for strategy in (EMA, "other"):
        decision = entry(risk, strategy=strategy)
        assert not decision.allowed and decision.guard == Guard.TRADING_STATE
        assert "global HALTED since 2024-05-01T12:00:00.000Z [operator]: exchange maintenance" in decision.reason
        assert exit_allowed(risk, strategy=strategy)
    assert "while global HALTED" in risk.check_exit(strategy=EMA, symbol="BTCUSDT", now_ms=NOON).reason
    risk.set_reducing(GLOBAL_SCOPE, "wind down", NOON + 1)
    assert not entry(risk).allowed and exit_allowed(risk)
    risk.clear(GLOBAL_SCOPE, NOON + 2)
    assert entry(risk).allowed


def test_state_checks_come_before_the_other_guards() -> None:
    risk = engine(max_symbol_exposure_usdt=D(1))
    risk.halt(EMA_SCOPE, "", NOON)
    decision = entry(risk, notional="5")
    assert decision.guard == Guard.TRADING_STATE and "halted by operator" in decision.reason


def test_scopes_are_validated() -> None:
    risk = engine()
    with pytest.raises(ValueError, match="'strategy:<name>'"):
        risk.halt("ema", "typo", NOON)
    with pytest.raises(ValueError, match="known scopes"):
        risk.clear("strategy:nobody", NOON)
    assert risk.state("strategy:nobody").state is TradingState.ACTIVE


def test_state_changes_are_drained_once() -> None:
    risk = engine(max_consecutive_losses=1)
    assert risk.drain_state_changes() == []
    entry(risk)  # a decision with nothing new changes nothing
    assert risk.drain_state_changes() == []
    risk.halt(GLOBAL_SCOPE, "x", NOON)
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-1"), NOON)
    changed = risk.drain_state_changes()
    assert [(r.scope, r.state) for r in changed] == [(GLOBAL_SCOPE, "HALTED"), (EMA_SCOPE, "HALTED")]
    assert risk.drain_state_changes() == []


def test_restart_keeps_halt_reason_and_daily_counters() -> None:
    risk = engine(max_consecutive_losses=2, max_new_positions_per_day=2, daily_loss_limit_usdt=D(100))
    risk.on_position_opened(EMA, "BTCUSDT", NOON)
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-10.5"), NOON + 1)
    risk.on_fill_closed_trade(EMA, "BTCUSDT", D("-20"), NOON + 2)
    persisted = {r.scope: json.dumps(r.to_dict()) for r in risk.drain_state_changes()}  # what the DB would hold
    before = risk.state(EMA_SCOPE)

    restored = {scope: StateRecord.from_dict(json.loads(text)) for scope, text in persisted.items()}
    again = RiskEngine(RiskLimits(max_consecutive_losses=2, max_new_positions_per_day=2,
                                  daily_loss_limit_usdt=D(100)), state=restored)
    after = again.state(EMA_SCOPE)
    assert after == before
    assert after.state is TradingState.HALTED and after.reason == before.reason
    assert after.realized_pnl_today == D("-30.5") and after.new_positions_today == 1
    assert not entry(again, NOON + 3).allowed and exit_allowed(again, NOON + 3)

    again.clear(EMA_SCOPE, NOON + 4)
    again.on_position_opened(EMA, "BTCUSDT", NOON + 5)
    assert entry(again, NOON + 6).guard == Guard.MAX_NEW_POSITIONS  # the count survived the restart
    again.on_unrealized(EMA, D("-69.5"), NOON + 7)
    assert again.state(EMA_SCOPE).state is TradingState.REDUCING  # so did the realized PnL
    assert [r.scope for r in again.drain_state_changes()] == [EMA_SCOPE]


def test_restored_state_is_checked() -> None:
    with pytest.raises(ValueError, match="holds a record"):
        RiskEngine(RiskLimits(), state={"global": StateRecord("strategy:ema")})
    with pytest.raises(ValueError, match="bad risk state record"):
        StateRecord.from_dict({"scope": "global", "state": "PAUSED"})
    with pytest.raises(ValueError, match="bad risk state record"):
        StateRecord.from_dict({"scope": "nonsense", "state": "ACTIVE"})


def test_time_helpers() -> None:
    assert format_time(DAY0 + 1) == "2024-05-01T00:00:00.001Z"
    assert [utc_day_start(t) for t in (DAY0, DAY1 - 1, DAY1)] == [DAY0, DAY0, DAY1]


def test_a_consecutive_loss_halt_lifts_itself_after_its_cool_down() -> None:
    risk = RiskEngine(RiskLimits(max_consecutive_losses=2, consecutive_losses_cooldown_minutes=30))
    risk.on_fill_closed_trade("ema", "BTCUSDT", D("-1"), NOON)
    risk.on_fill_closed_trade("ema", "BTCUSDT", D("-1"), NOON + 1_000)
    halted = risk.state("strategy:ema")
    assert halted.state is TradingState.HALTED and "for 30 min" in halted.reason
    risk.on_time(NOON + 1_000 + 29 * 60_000)
    assert risk.state("strategy:ema").state is TradingState.HALTED
    risk.on_time(NOON + 1_000 + 30 * 60_000)
    lifted = risk.state("strategy:ema")
    assert lifted.state is TradingState.ACTIVE and lifted.consecutive_losses == 0 and "cool-down" in lifted.reason
    assert [r.state for r in risk.drain_state_changes()][-1] is TradingState.ACTIVE  # persisted like any change


def test_without_a_cool_down_the_halt_waits_for_an_operator() -> None:
    risk = RiskEngine(RiskLimits(max_consecutive_losses=1))
    risk.on_fill_closed_trade("ema", "BTCUSDT", D("-1"), NOON)
    risk.on_time(NOON + 30 * 86_400_000)
    assert risk.state("strategy:ema").state is TradingState.HALTED


def test_a_funding_blackout_of_zero_minutes_is_off() -> None:
    risk = RiskEngine(RiskLimits(funding_blackout_minutes=0))
    decision = risk.check_entry(strategy="ema", symbol="BTCUSDT", notional=D(100), symbol_exposure=D(0),
                                now_ms=NOON)
    assert decision.allowed  # no funding time known, and none needed
