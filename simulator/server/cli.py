"""``uv run main.py simserver``: start the Binance-wire simulator server from the command line and run it until
Ctrl-C / SIGTERM (then the state is saved when ``--state`` is given).

It prints the REST and WebSocket base URLs, the settings a bot points at it, and the API keys it accepts (a
generated secret in full, a secret given on the command line masked).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: `main.py --help` and the bot's start-up need only add_arguments
    from simulator.server.app import ServerConfig, SimServer
    from simulator.server.auth import Credentials
    from utils.domain import Candle


def add_arguments(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("simserver", help="run the Binance-wire simulator server")
    parser.add_argument("--data", nargs="+", type=Path, required=True,
                        help="1m kline CSV files to replay, one per symbol (data.binance.vision format)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="market clock: N x real time (default 1); 0 = stepped, moved only by the admin endpoint")
    parser.add_argument("--api-key", action="append", default=[], help="an API key (repeat for more accounts)")
    parser.add_argument("--api-secret", action="append", default=[],
                        help="its HMAC secret, or ed25519:PUBLIC_KEY.pem for an Ed25519 key (one per --api-key)")
    parser.add_argument("--balance", default="10000", help="starting USDT wallet of every account (default 10000)")
    parser.add_argument("--state", type=Path, help="remember orders, positions, trades and ids in this file")
    parser.add_argument("--order-log", type=Path, metavar="FILE",
                        help="append every new-order request received (time, account, symbol, client order id) to "
                             "FILE as JSON lines")
    parser.add_argument("--admin-token", help="enable the loopback-only admin endpoint with this token")
    parser.add_argument("--history", type=int, default=1,
                        help="minutes of candles already closed when the server starts (default 1)")
    parser.add_argument("--start-now", action="store_true",
                        help="shift the data so the replay starts at the current minute (market time = real time "
                             "at --speed 1)")


def _mask(secret: str) -> str:
    return secret[:4] + "..." if len(secret) > 8 else "****"


def _load_candles(paths: list[Path]) -> dict[str, list[Candle]]:
    from utils.klines_csv import interval_from_filename, load_klines_csv, symbol_from_filename

    candles: dict[str, list[Candle]] = {}
    for path in paths:
        symbol = symbol_from_filename(path)
        if interval_from_filename(path) != "1m":
            raise ValueError(f"{path}: the server replays 1m klines; this file is "
                             f"{interval_from_filename(path)}")
        if symbol in candles:
            raise ValueError(f"two data files for {symbol}: give one file per symbol ({path})")
        candles[symbol] = load_klines_csv(path, symbol, skip_bad=True)
        if not candles[symbol]:
            raise ValueError(f"{path}: no candles in the file")
    return candles


def build_config(args: argparse.Namespace) -> tuple[ServerConfig, list[tuple[Credentials, bool]]]:
    from simulator.server.app import ServerConfig
    from simulator.server.auth import Credentials

    """The server's configuration from the command line, and each key pair with "was it generated"."""
    if len(args.api_key) != len(args.api_secret):
        raise ValueError("give one --api-secret for every --api-key, in the same order")
    pairs = [(Credentials.from_cli(key, secret), False) for key, secret in zip(args.api_key, args.api_secret,
                                                                               strict=True)]
    if not pairs:
        if args.state is not None:
            raise ValueError("--state needs --api-key / --api-secret: a generated key changes at every start, and "
                             "the saved accounts belong to their keys")
        pairs = [(Credentials.generate(), True)]
    try:
        balance = Decimal(args.balance)
    except InvalidOperation:
        raise ValueError(f"--balance must be a number of USDT, got {args.balance!r}") from None
    if not balance.is_finite() or balance < 0:
        raise ValueError("--balance must be a non-negative number of USDT")
    missing = [str(p) for p in args.data if not Path(p).is_file()]
    if missing:
        raise ValueError(f"data file(s) not found: {', '.join(missing)}")
    config = ServerConfig(candles=_load_candles(args.data), speed=args.speed, credentials=[c for c, _ in pairs],
                          balance=balance, state_file=args.state, order_log=args.order_log,
                          admin_token=args.admin_token,
                          history_minutes=args.history, start_now=args.start_now)
    return config, pairs


def banner(server: SimServer, pairs: list[tuple[Credentials, bool]]) -> str:
    clock = "stepped (POST /admin/clock moves it)" if server.market_clock.stepped else (
        f"{server.market_clock.speed:g} x real time")
    lines = [
        f"Binance USD-M simulator on {server.rest_url}  (market clock: {clock})",
        f"  REST       {server.rest_url}/fapi/...",
        f"  market WS  {server.market_ws_url}/ws/<stream>  |  {server.market_ws_url}/stream?streams=a/b",
        f"  user data  {server.private_ws_url}/ws?listenKey=<key>  |  {server.private_ws_url}/stream",
        f"  symbols    {', '.join(server.replay.symbols)} (data)  |  trades {', '.join(server.symbols)}",
        "  point the bot at it:",
        f"    REST_BASE_URL={server.rest_url} WS_MARKET_URL={server.market_ws_url} "
        f"WS_PRIVATE_URL={server.private_ws_url}",
        "  API keys:",
    ]
    for credentials, generated in pairs:
        secret = credentials.secret if generated else (_mask(credentials.secret) if credentials.secret else "")
        shown = f"secret {secret}" if credentials.secret else "Ed25519 public key given"
        lines.append(f"    {credentials.api_key}  {shown}")
    lines.append("  admin endpoint: " + (f"{server.rest_url}/admin/status (X-Admin-Token, loopback only)"
                                         if server.config.admin_token else "off (start with --admin-token)"))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from simulator.server.app import SimServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        config, pairs = build_config(args)
    except (ValueError, OSError) as exc:
        print(f"cannot start the simulator server: {exc}", file=sys.stderr)
        return 2

    async def serve() -> None:
        server = SimServer(config)
        await server.start(args.host, args.port)
        print(banner(server, pairs), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await server.stop()
        print("simulator server stopped" + (f"; state saved to {config.state_file}" if config.state_file else ""),
              flush=True)

    try:
        asyncio.run(serve())
    except (ValueError, OSError) as exc:
        print(f"the simulator server stopped: {exc}", file=sys.stderr)
        return 2
    return 0
