"""The exchange's typed user-data events (``SimExchange.deliver_typed_events``) are what parsing its wire dicts
gives: the same backtest run both ways sees the same events and books the same journal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backtest.data import load_bars
from backtest.engine import Backtest
from config.symbols import RiskConfig, load_symbols
from utils.domain import PositionMode, SizingMode

pytestmark = pytest.mark.shared_data

REPO = Path(__file__).resolve().parents[2]
START = 1_681_948_800_000  # 2023-04-20


def normalised(value: Any) -> Any:
    """Every Decimal of a (nested) event without trailing zeros, so that even the digits are compared."""
    if isinstance(value, Decimal):
        return "0" if not value else format(value.normalize(), "f")
    if isinstance(value, (list, tuple)):
        return [normalised(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: normalised(getattr(value, name)) for name in value.__dataclass_fields__}
    return value


@pytest.mark.parametrize("mode", [PositionMode.ONEWAY, PositionMode.HEDGE])
@pytest.mark.parametrize("leverage", [5, 50])
def test_typed_events_equal_the_parsed_wire_events(mode: PositionMode, leverage: int, usdm_1m_dir: Path) -> None:
    config = load_symbols(REPO / "config" / "symbols.toml")
    sizing = config.symbols[0].strategies[0].sizing.model_copy(update={"mode": SizingMode.FIXED_NOTIONAL,
                                                                       "value": Decimal(2000)})
    symbols = [s.model_copy(update={"leverage": leverage, "strategies": [
        st.model_copy(update={"sizing": sizing} if leverage > 5 else {}) for st in s.strategies]})
        for s in config.symbols]
    config = config.model_copy(update={"symbols": symbols, "risk": RiskConfig() if leverage > 5 else config.risk})
    series = [load_bars(usdm_1m_dir / f"{symbol}_usdm_1m_2023-04-20_2023-04-26.csv").window(START, START + 86_400_000)
              for symbol in ("BTCUSDT", "ETHUSDT")]
    runs = []
    for typed in (False, True):
        backtest = Backtest(config, series, position_mode=mode, typed_events=typed)
        seen: list[Any] = []
        take = backtest.gateway.take_user_events

        def recording(take: Any = take, seen: list[Any] = seen) -> list[Any]:
            events = take()
            seen.extend(events)
            return events

        backtest.gateway.take_user_events = recording  # type: ignore[method-assign]
        backtest.applier.user_events = recording
        result = backtest.run()
        runs.append((seen, result))
    (wire, wire_result), (typed, typed_result) = runs
    assert len(wire) > 500 and {type(event).__name__ for event in wire} >= {"OrderUpdate", "AccountUpdate",
                                                                             "AlgoUpdate"}
    assert typed == wire
    assert normalised(typed) == normalised(wire)
    assert typed_result.journal.commands == wire_result.journal.commands
