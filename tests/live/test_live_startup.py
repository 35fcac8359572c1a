"""The live shell's start-up as a separate process (``MODE=testnet``, or mainnet without its confirmation): what
stops it before anything is traded, naming the reason, and the heartbeat fields of a short session."""

from __future__ import annotations

import signal
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from runtime.live import LIVE_READY_LINE
from tests.live.helpers import BotProcess, bot_environment, until
from tests.main_process import run_main
from tests.sim_server import OTHER_CREDENTIALS, TEST_API_KEY, TEST_API_SECRET, TEST_CREDENTIALS, BinanceTestClient

SPEED = 120


def test_mainnet_refuses_to_start_without_the_confirmation(tmp_path: Path, env: dict[str, str]) -> None:
    apikey = tmp_path / ".apikey"
    apikey.write_text(f"BINANCE_API_KEY={TEST_API_KEY}\nBINANCE_API_SECRET={TEST_API_SECRET}\n", encoding="utf-8")
    apikey.chmod(0o600)
    env.update({"MODE": "mainnet", "APIKEY_FILE": str(apikey), "REST_BASE_URL": "http://127.0.0.1:9",
                "MAINNET_CONFIRM": "yes"})
    result = run_main([], env, timeout=60)
    assert result.returncode == 2
    assert "MAINNET_CONFIRM=I-UNDERSTAND-REAL-MONEY" in result.stderr and "REAL MONEY" in result.stderr
    assert TEST_API_SECRET not in result.stderr + result.stdout


def test_sim_only_options_are_refused_in_the_live_modes(tmp_path: Path, env: dict[str, str]) -> None:
    apikey = tmp_path / ".apikey"
    apikey.write_text(f"BINANCE_API_KEY={TEST_API_KEY}\nBINANCE_API_SECRET={TEST_API_SECRET}\n", encoding="utf-8")
    apikey.chmod(0o600)
    env.update({"MODE": "testnet", "APIKEY_FILE": str(apikey), "REST_BASE_URL": "http://127.0.0.1:9"})
    result = run_main(["run", "--speed", "60", "--fresh-account"], env, timeout=60)
    assert result.returncode == 2
    assert "--speed, --fresh-account: only for MODE=sim" in result.stderr


async def test_a_position_mode_that_cannot_be_changed_stops_the_start_naming_it(sim_server_factory,
                                                                               tmp_path: Path) -> None:
    server = await sim_server_factory(credentials=[TEST_CREDENTIALS, OTHER_CREDENTIALS], history_minutes=5)
    async with BinanceTestClient(server.rest_url) as client:  # the account holds a position (one-way mode)
        reply = await client.signed("POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                              "quantity": "0.010"})
        assert reply.status == 200, reply.body
    bot = BotProcess(bot_environment(tmp_path, server, POSITION_MODE="HEDGE"), tmp_path)
    try:
        await bot.start()
        code = await bot.wait(timeout=60)
    finally:
        await bot.kill()
    stderr = bot.stderr()
    assert code == 2, bot.describe()
    assert "POSITION_MODE=HEDGE" in stderr and "1 position(s)" in stderr and "POSITION_MODE=ONEWAY" in stderr
    assert server.exchange(TEST_API_KEY).dual_side_position is False
    assert [p.amount for p in server.exchange(TEST_API_KEY).positions("BTCUSDT") if p.amount] == [Decimal("0.010")]


async def test_a_refused_api_key_stops_the_start_naming_the_step(sim_server_factory, tmp_path: Path) -> None:
    server = await sim_server_factory(history_minutes=5)
    env = bot_environment(tmp_path, server)
    (tmp_path / ".apikey").write_text(f"BINANCE_API_KEY={TEST_API_KEY}\nBINANCE_API_SECRET=notTheSecret0000000000\n",
                                      encoding="utf-8")
    bot = BotProcess(env, tmp_path)
    try:
        await bot.start()
        code = await bot.wait(timeout=60)
    finally:
        await bot.kill()
    assert code == 2, bot.describe()
    stderr = bot.stderr()
    assert "refused the API key at the start-up step 'account settings' (-1022" in stderr, stderr[-2000:]
    assert "notTheSecret" not in stderr + "\n".join(bot.lines)
    assert not server.exchange(TEST_API_KEY).open_orders()


async def test_the_heartbeat_names_every_live_field(sim_server_factory, tmp_path: Path) -> None:
    """A short session on synthetic candles: the heartbeat carries each field the runbook explains."""
    server = await sim_server_factory(speed=SPEED, history_minutes=30)
    bot = BotProcess(bot_environment(tmp_path, server), tmp_path)
    try:
        await bot.start()
        await bot.wait_for_line(LIVE_READY_LINE, timeout=30)
        heartbeat = await until(lambda: (hb := bot.heartbeat()).get("streams", {}).get("market", {}).get(
            "connections") and hb, 10, "a heartbeat with the streams", bot)
        assert await bot.stop(signal.SIGINT) == 0, bot.describe()
    finally:
        await bot.kill()
    market, user = heartbeat["streams"]["market"], heartbeat["streams"]["user"]
    for key in ("state", "last_message_age_sec", "reconnects"):
        assert key in market["connections"][0] and key in user
    assert {"missed_candle_backfills", "candles_backfilled"} <= set(market)
    assert user["listen_key_age_sec"] is not None
    assert "time_offset_ms" in heartbeat["rest"] and "pools" in heartbeat["rest"]["rate_limits"]
    assert heartbeat["database"]["state"] == "ok"
    assert {"trading", "open_orders", "positions", "account", "executor", "market_time"} <= set(heartbeat)
    assert bot.heartbeat()["process"]["state"] == "stopped"
    assert "Live run (testnet) stopped" in "\n".join(bot.lines)



async def _session_with_a_key_that_allows_withdrawals(sim_server_factory, tmp_path: Path,
                                                      sapi: bool) -> tuple[dict, BotProcess]:
    """A short session with such a key; ``sapi``: SAPI_BASE_URL points at the simulator. The first heartbeat
    that has read the permissions, and the stopped bot."""
    server = await sim_server_factory(speed=SPEED, history_minutes=30,
                                      credentials=[replace(TEST_CREDENTIALS, allows_withdrawals=True)])
    env = bot_environment(tmp_path, server)
    if sapi:
        env["SAPI_BASE_URL"] = env["REST_BASE_URL"]
    bot = BotProcess(env, tmp_path)
    try:
        await bot.start()
        await bot.wait_for_line(LIVE_READY_LINE, timeout=30)
        heartbeat = await until(lambda: (hb := bot.heartbeat()).get("mode", {}).get("key_permissions") not in (
            None, "not read yet") and hb, 10, "a heartbeat with the key's permissions", bot)
        assert await bot.stop(signal.SIGINT) == 0, bot.describe()
    finally:
        await bot.kill()
    return heartbeat, bot


async def test_a_key_that_allows_withdrawals_is_warned_about_at_start(sim_server_factory, tmp_path: Path) -> None:
    """The key's permissions are read where ``SAPI_BASE_URL`` points (here the simulator, which serves Binance's
    ``GET /sapi/v1/account/apiRestrictions``): a key that allows withdrawals is named loudly on the console and in
    the log, the heartbeat shows it, and the bot trades on (the operator may need it to close positions)."""
    heartbeat, bot = await _session_with_a_key_that_allows_withdrawals(sim_server_factory, tmp_path, sapi=True)
    assert heartbeat["mode"]["key_permissions"] == {"futures": True, "withdrawals": True, "reading": True,
                                                    "ip_restricted": False}
    assert any(line.startswith("WARNING: THE API KEY ALLOWS WITHDRAWALS") for line in bot.lines), bot.describe()
    assert "THE API KEY ALLOWS WITHDRAWALS" in bot.stderr()  # the CRITICAL log line too


async def test_without_sapi_base_url_a_simulated_exchange_is_not_asked_for_permissions(
        sim_server_factory, tmp_path: Path) -> None:
    heartbeat, bot = await _session_with_a_key_that_allows_withdrawals(sim_server_factory, tmp_path, sapi=False)
    assert heartbeat["mode"]["key_permissions"] == "not checked (this exchange does not expose them)"
    assert not any("WITHDRAWALS" in line for line in bot.lines)
