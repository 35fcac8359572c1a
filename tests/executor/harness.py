"""A test harness: the real Executor on the real simulated exchange, a real database and bus, driven by hand."""

from __future__ import annotations

from decimal import Decimal

from database.repository import Repository
from executor.gateway import SimGateway
from executor.planner import ExecutionSettings
from executor.risk import RiskEngine, RiskLimits
from executor.service import Executor
from simulator.engine import SimExchange
from simulator.exchange_info import load_symbol_filters
from utils.bus import EventBus
from utils.clock import SimulatedClock
from utils.domain import Candle, MarkPrice, PositionMode, Signal, SignalSide, SizingMode

START = 1_681_948_800_000  # 2023-04-20 00:00 UTC
MINUTE = 60_000
D = Decimal


def settings(strategy: str = "alpha", symbol: str = "BTCUSDT", **overrides) -> ExecutionSettings:
    values = dict(strategy=strategy, symbol=symbol, sizing_mode=SizingMode.FIXED_NOTIONAL, sizing_value=D("300"),
                  leverage=5)
    values.update(overrides)
    return ExecutionSettings(**values)


class Harness:
    """One 'process': executor + repository over a shared exchange (pass ``exchange`` to simulate a restart)."""

    def __init__(self, db_url: str, *, exchange: SimExchange | None = None, clock: SimulatedClock | None = None,
                 limits: RiskLimits = RiskLimits(), strategies: list[ExecutionSettings] | None = None,
                 position_mode: PositionMode = PositionMode.ONEWAY, ephemeral: bool = True,
                 risk_state=None) -> None:
        self.clock = clock or SimulatedClock(START)
        filters = load_symbol_filters()
        self.filters = {s: filters[s] for s in ("BTCUSDT", "ETHUSDT")}
        self.exchange = exchange or SimExchange(self.filters, clock=self.clock, initial_balance=D("10000"))
        self.gateway = SimGateway(self.exchange)
        self.gateway.ephemeral = ephemeral
        self.repository = Repository.open(db_url, self.clock)
        self.bus = EventBus()
        self.requests = self.bus.subscribe("order.request", name="test.requests")
        self.risk = RiskEngine(limits, state=risk_state)
        self.executor = Executor(bus=self.bus, gateway=self.gateway, repository=self.repository, risk=self.risk,
                                 filters=self.filters, settings=strategies or [settings()],
                                 position_mode=position_mode, clock=self.clock)
        self.minute = 0

    def close(self) -> None:
        self.repository.close()

    async def pump(self) -> None:
        """Deliver exchange events and queued order requests until nothing is left."""
        while True:
            events = self.gateway.take_user_events()
            requests = []
            while (event := self.requests.get_nowait()) is not None:
                requests.append(event.payload)
            self.requests.ack()
            if not events and not requests:
                return
            for user_event in events:
                await self.executor.on_user_event(user_event)
            for intent in requests:
                await self.executor.on_order_request(intent)

    async def candle(self, close: str, *, symbol: str = "BTCUSDT", high: str | None = None, low: str | None = None,
                     open_: str | None = None, volume: str = "1000") -> Candle:
        """The next closed 1m candle: the exchange matches it, then the executor sees it (like the sim shell)."""
        open_time = START + self.minute * MINUTE
        self.minute += 1
        price = D(close)
        candle = Candle(symbol=symbol, open_time=open_time, close_time=open_time + MINUTE - 1,
                        open=D(open_) if open_ else price, high=D(high) if high else price,
                        low=D(low) if low else price, close=price, volume=D(volume))
        self.clock.set(max(self.clock.now_ms(), candle.close_time))
        self.exchange.on_candle(candle)
        await self.pump()
        await self.executor.on_candle(candle)
        await self.executor.on_mark_price(MarkPrice(symbol, self.clock.now_ms(), self.exchange.mark_price(symbol),
                                                    self.exchange.mark_price(symbol),
                                                    self.exchange.funding_rate(symbol),
                                                    self.exchange.next_funding_time(symbol)))
        await self.pump()
        return candle

    async def signal(self, side: SignalSide, *, strategy: str = "alpha", symbol: str = "BTCUSDT") -> Signal:
        signal = Signal(strategy, symbol, side, D(1), "test", self.clock.now_ms())
        await self.executor.on_signal(signal)
        await self.pump()
        return signal
