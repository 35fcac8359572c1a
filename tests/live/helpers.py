"""Running the whole bot as a separate process (``MODE=testnet``) against a simulator server started by the test.

The server runs in the test's event loop (so a test can switch its faults and read its records directly); the
bot is ``main.py`` in a subprocess whose REST and WebSocket URLs point at it, with a ``.apikey`` of mode 0600.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.server import SimServer
from simulator.server.ratelimit import RateLimited
from tests.main_process import REPO, empty_env_file, user_environment
from tests.sim_server import TEST_API_KEY, TEST_API_SECRET
from utils.secrets import format_apikey_text

#: A strategy that crosses often (EMA 2 / 3 on 1m closes) on two symbols, with protective orders, and risk
#: limits that never stop it: a session trades every few candles.
BUSY_SYMBOLS = """
[risk]
daily_loss_limit_usdt = 100000
max_new_positions_per_day = 10000
max_symbol_exposure_usdt = 100000
order_ttl_sec = 120
max_consecutive_losses = 10000
funding_blackout_minutes = 0

[[symbols]]
symbol = "BTCUSDT"
leverage = 5
margin_type = "ISOLATED"

[[symbols.strategies]]
name = "ema_crossover"
params = { fast = 2, slow = 3 }
sizing = { mode = "fixed_notional", value = 200 }
stop_loss_pct = 0.5
take_profit_pct = 0.5

[[symbols]]
symbol = "ETHUSDT"
leverage = 4
margin_type = "CROSSED"

[[symbols.strategies]]
name = "ema_crossover"
params = { fast = 2, slow = 3 }
sizing = { mode = "fixed_notional", value = 100 }
"""


class PausableClock:
    """Monotonic milliseconds that stop while paused (the server's market clock runs on it)."""

    def __init__(self) -> None:
        self._paused_at: int | None = None
        self._paused_total = 0

    @staticmethod
    def _real() -> int:
        return time.monotonic_ns() // 1_000_000

    def now_ms(self) -> int:
        now = self._paused_at if self._paused_at is not None else self._real()
        return now - self._paused_total

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = self._real()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._paused_total += self._real() - self._paused_at
            self._paused_at = None


@dataclass(frozen=True, slots=True)
class Admission:
    """One REST request as the server's rate limiter saw it (real time, weight, HTTP status it got)."""

    time: int
    weight: int
    status: int
    retry_after_sec: int = 0


@dataclass
class WeightLog:
    """Every request the server's rate limiter counted, the weight per real-time minute, and what the test itself
    sent (the rest is the bot's)."""

    admissions: list[Admission] = field(default_factory=list)
    used: dict[int, int] = field(default_factory=dict)  # minute window start -> the highest count seen
    by_test: dict[int, int] = field(default_factory=dict)  # minute window start -> weight the test sent itself

    def install(self, server: SimServer) -> None:
        limiter = server.ip_limiter
        original = limiter.admit
        log = self

        def admit(ip: str, weight: int, now: int, *, funding_pool: bool = False) -> int:
            window = now - now % 60_000
            status, retry_after, used = 200, 0, 0
            try:
                used = original(ip, weight, now, funding_pool=funding_pool)
            except RateLimited as refused:
                status, retry_after, used = refused.error.http_status, refused.retry_after, refused.used_weight
                raise
            finally:
                log.used[window] = max(log.used.get(window, 0), used)
                log.admissions.append(Admission(now, weight, status, retry_after))
            return used

        limiter.admit = admit  # type: ignore[method-assign]

    def note_test_request(self, now: int, weight: int) -> None:
        window = now - now % 60_000
        self.by_test[window] = self.by_test.get(window, 0) + weight

    def bot_weight(self) -> dict[int, int]:
        return {window: used - self.by_test.get(window, 0) for window, used in self.used.items()}

    def between(self, start: int, end: int) -> list[Admission]:
        return [a for a in self.admissions if start < a.time < end]


def bot_environment(folder: Path, server: SimServer, **settings: str) -> dict[str, str]:
    """A user's environment pointing MODE=testnet at ``server`` with the busy strategy and a private .apikey."""
    apikey = folder / ".apikey"
    apikey.write_text(format_apikey_text(TEST_API_KEY, TEST_API_SECRET), encoding="utf-8")
    apikey.chmod(0o600)
    symbols = folder / "symbols.toml"
    symbols.write_text(BUSY_SYMBOLS, encoding="utf-8")
    env = user_environment(folder)
    env.update({
        "MODE": "testnet", "REST_BASE_URL": server.rest_url, "WS_MARKET_URL": server.market_ws_url,
        "WS_PRIVATE_URL": server.private_ws_url, "APIKEY_FILE": str(apikey), "SYMBOLS_FILE": str(symbols),
        "HEARTBEAT_INTERVAL_SEC": "0.3", "LOG_LEVEL": "INFO",
    })
    env.update(settings)
    return env


class BotProcess:
    """``main.py`` as a subprocess of the test's event loop: stdout read line by line, stderr to a file."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.stderr_path = folder / "bot.stderr"
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._new_line = asyncio.Event()

    async def start(self, *args: str) -> BotProcess:
        env_file = empty_env_file(self.folder)
        self._stderr = open(self.stderr_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in wait()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "main.py", "--env-file", str(env_file), *args, cwd=REPO, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=self._stderr)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
            self._new_line.set()

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8") if self.stderr_path.exists() else ""

    def describe(self) -> str:
        return f"stdout: {self.lines[-15:]}\nstderr (end): {self.stderr()[-3000:]}"

    async def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.lines:
            if self.process is not None and self.process.returncode is not None:
                raise AssertionError(f"main.py exited ({self.process.returncode}) before {text!r}\n{self.describe()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"main.py did not print {text!r} within {timeout:g} s\n{self.describe()}")
            self._new_line.clear()
            try:
                await asyncio.wait_for(self._new_line.wait(), timeout=min(remaining, 0.5))
            except TimeoutError:
                pass

    async def wait(self, timeout: float) -> int:
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), timeout=timeout)
        if self._reader is not None:
            await self._reader
        self._stderr.close()
        return code

    async def stop(self, signal_number: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal_number)
        return await self.wait(timeout)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if not self._stderr.closed:
            self._stderr.close()

    def heartbeat(self) -> dict[str, Any]:
        path = Path(self.env["STATUS_DIR"]) / "heartbeat.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
        except (OSError, json.JSONDecodeError):
            return {}


async def until(condition: Any, timeout: float, what: str, bot: BotProcess | None = None,
                every: float = 0.1) -> Any:
    """Poll ``condition()`` (sync) until it returns something true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if bot is not None and bot.process is not None and bot.process.returncode is not None:
            raise AssertionError(f"main.py exited ({bot.process.returncode}) while waiting for {what}\n"
                                 f"{bot.describe()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s" + (f"\n{bot.describe()}" if bot else ""))
        await asyncio.sleep(every)


def root_id(client_order_id: str) -> str:
    """The client order id a retry was derived from (``<id>.r1`` -> ``<id>``)."""
    return client_order_id.split(".r", 1)[0]

