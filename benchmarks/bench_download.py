"""Throughput of ``main.py download`` against the simulator server, next to bare HTTP fetches of the same pages.

    uv run python benchmarks/bench_download.py [--repeat 3]

The simulator server runs in this process (one event loop with the client) holding the 97,920-bar BTCUSDT file
``../shared/data/usdm_1m/BTCUSDT_usdm_1m_2023-01-01_2023-03-09.csv`` (or, without ../shared, the same number of
seeded synthetic candles), with its weight limit raised so the limit is not what is measured. Figures:
  * the download (``marketdata.download.Downloader`` on the bot's ``RestClient``: rate limiter, every row checked,
    written and fsynced a page at a time), 66 pages of 1,500 klines, in klines per second;
  * baseline: the same 66 GET /fapi/v1/klines requests sent with a bare aiohttp session, bodies read and parsed as
    JSON and nothing else, in the same run (the server's own cost is in both);
  * a second run over the finished file (reopened and checked; nothing fetched but premiumIndex and fundingRate);
  * what Binance's budget allows: 2,400 weight a minute / 10 per page = 240 pages = 360,000 klines a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from marketdata.download import KLINES_PER_PAGE, Downloader, TimeRange  # noqa: E402
from marketdata.synthetic import synthetic_candles  # noqa: E402
from simulator.server import ServerConfig, SimServer  # noqa: E402
from simulator.server.ratelimit import RateLimitConfig  # noqa: E402
from utils.klines_csv import load_klines_csv  # noqa: E402
from utils.rest import RestClient  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "usdm_1m" / "BTCUSDT_usdm_1m_2023-01-01_2023-03-09.csv"
START_MS = 1_672_531_200_000  # 2023-01-01
BARS = 97_920
MINUTE = 60_000


async def _download(url: str, out: Path, span: TimeRange) -> float:
    async with RestClient(url) as rest:
        downloader = Downloader(rest, out)
        started = time.perf_counter()
        await downloader.start(["BTCUSDT"])
        result = await downloader.download("BTCUSDT", span)
        elapsed = time.perf_counter() - started
    assert result.complete and not result.klines.gaps
    return elapsed


async def _bare(url: str, span: TimeRange) -> float:
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        rows = 0
        for start in range(span.start_ms, span.end_ms, KLINES_PER_PAGE * MINUTE):
            params = {"symbol": "BTCUSDT", "interval": "1m", "startTime": str(start),
                      "endTime": str(min(start + KLINES_PER_PAGE * MINUTE, span.end_ms) - 1), "limit": "1500"}
            async with session.get(f"{url}/fapi/v1/klines", params=params) as response:
                rows += len(await response.json())
        elapsed = time.perf_counter() - started
    assert rows == span.minutes
    return elapsed


async def main(repeat: int) -> None:
    if DATA.is_file():
        candles, source = load_klines_csv(DATA), f"real: {DATA.name}"
    else:
        candles, source = list(synthetic_candles("BTCUSDT", start_ms=START_MS, count=BARS)), "synthetic candles"
    span = TimeRange(candles[0].open_time, candles[-1].open_time + MINUTE)
    server = SimServer(ServerConfig(candles={"BTCUSDT": candles},
                                    rate_limits=RateLimitConfig(request_weight_per_minute=10**9)))
    await server.start()
    try:
        await server.advance_to(span.end_ms + 5 * MINUTE)
        ours, bare, again = [], [], []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as folder:
                ours.append(await _download(server.rest_url, Path(folder), span))
                again.append(await _download(server.rest_url, Path(folder), span))
            bare.append(await _bare(server.rest_url, span))
    finally:
        await server.stop()
    best_ours, best_bare, best_again = min(ours), min(bare), min(again)
    pages = -(-span.minutes // KLINES_PER_PAGE)
    print(f"input: {span.minutes:,} 1m klines ({source}), {pages} pages of {KLINES_PER_PAGE}; best of {repeat}")
    print(f"download (parse, check, write, fsync): {best_ours:.3f} s = {span.minutes / best_ours:,.0f} klines/s "
          f"(median {statistics.median(ours):.3f} s)")
    print(f"baseline, bare aiohttp GETs + json:    {best_bare:.3f} s = {span.minutes / best_bare:,.0f} klines/s "
          f"(median {statistics.median(bare):.3f} s); ratio {best_ours / best_bare:.2f}")
    print(f"second run over the finished file:    {best_again:.3f} s (median {statistics.median(again):.3f} s)")
    print("Binance's budget: 2,400 weight/min / 10 per page = 240 pages = 360,000 klines/min = 6,000 klines/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args().repeat))
