"""The download against the simulator server holding a real week of klines: the files equal the served data row
for row, an interrupted run is continued without a duplicate, rate limits are honoured, gaps are reported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from cli.download import _print_results
from marketdata.download import Downloader, DownloadError, Gap, SymbolResult, TimeRange
from simulator.server.ratelimit import RateLimitConfig
from tests.marketdata.week import (
    FUNDING_NAME,
    HOUR,
    KLINE_NAME,
    MINUTE,
    WEEK_END_MS,
    WEEK_SPAN,
    WEEK_START_MS,
    ShiftedClock,
    serve_week,
)
from tests.sim_server import BinanceTestClient
from utils.klines_csv import KlinesReport, read_klines_csv
from utils.rest import RestClient

pytestmark = pytest.mark.shared_data

async def download(server, out: Path, symbols: Sequence[str] = ("BTCUSDT",), span: TimeRange = WEEK_SPAN,
                   notices: list[str] | None = None, progress=None) -> list[SymbolResult]:
    async with RestClient(server.rest_url) as rest:
        downloader = Downloader(rest, out, retry_pause_sec=0.01,
                                notice=(notices.append if notices is not None else lambda line: None))
        if progress is not None:
            downloader.progress = progress
        await downloader.start(symbols)
        return [await downloader.download(symbol, span) for symbol in symbols]


async def test_the_files_equal_the_served_real_data_row_for_row(sim_server_factory, real_week, tmp_path) -> None:
    server = await serve_week(sim_server_factory, real_week)
    results = await download(server, tmp_path, ("BTCUSDT", "ETHUSDT"))
    for symbol, result in zip(("BTCUSDT", "ETHUSDT"), results, strict=True):
        kline_file = tmp_path / KLINE_NAME.format(symbol)
        # The served week is ../shared's file; what we wrote is that file, byte for byte (header, decimals, order).
        assert kline_file.read_bytes() == real_week.files[symbol].read_bytes()
        assert (result.klines.rows, result.klines.gaps, result.complete) == (10_080, [], True)
        # ... and the project's reader reads it back as the very candles the server replayed.
        report = KlinesReport(kline_file)
        assert list(read_klines_csv(kline_file, report=report)) == real_week.candles[symbol]
        assert (report.skipped, report.gaps) == ([], [])
        # Funding: what the server settled, which is Binance's real rate at each funding of the week (the server
        # settles on the hour; Binance's times sit a few ms after it). The server started at 00:01 on the 20th,
        # so the 00:00 funding of that day is not in its history.
        served = server.replay.funding_history(symbol, start_time=WEEK_START_MS, end_time=WEEK_END_MS - 1,
                                               limit=1000)
        funding_lines = (tmp_path / FUNDING_NAME.format(symbol)).read_text().splitlines()
        assert funding_lines == ["funding_time_ms,funding_rate",
                                 *(f"{r.funding_time},{r.funding_rate:.8f}" for r in served)]
        real = [(time - time % HOUR, rate) for time, rate in real_week.funding[symbol]][1:]
        assert [(int(t), Decimal(rate)) for t, rate in (line.split(",") for line in funding_lines[1:])] == real
        assert result.funding.gaps == []


async def test_an_interrupted_run_is_continued_to_the_same_file_without_a_duplicate(sim_server_factory, real_week,
                                                                                     tmp_path) -> None:
    server = await serve_week(sim_server_factory, real_week, real_funding=False)
    pages = []

    def fail_after_three_pages(symbol: str, minutes: int) -> None:
        pages.append(minutes)
        if len(pages) == 3:  # the server stops answering: every later request fails, retries included
            server.faults.service_unavailable(count=None)

    with pytest.raises(DownloadError, match="failed 6 times, last: HTTP 503 -1001 Service Unavailable"):
        await download(server, tmp_path, progress=fail_after_three_pages)
    kline_file = tmp_path / KLINE_NAME.format("BTCUSDT")
    assert kline_file.read_text().splitlines() == real_week.lines("BTCUSDT")[:1 + 3 * 1500]

    server.faults.clear()
    [result] = await download(server, tmp_path)
    assert kline_file.read_bytes() == real_week.files["BTCUSDT"].read_bytes()
    assert (result.klines.rows_before, result.klines.rows_written, result.complete) == (4500, 5580, True)

    [again] = await download(server, tmp_path)  # a finished file: nothing is fetched or written again
    assert (again.klines.rows_before, again.klines.rows_written, again.funding.rows_written) == (10_080, 0, 0)
    assert kline_file.read_bytes() == real_week.files["BTCUSDT"].read_bytes()


async def test_a_row_cut_short_by_a_crash_is_dropped_and_fetched_again(sim_server_factory, real_week,
                                                                       tmp_path) -> None:
    server = await serve_week(sim_server_factory, real_week, real_funding=False)
    lines = real_week.lines("BTCUSDT")
    kline_file = tmp_path / KLINE_NAME.format("BTCUSDT")
    kline_file.write_text("\n".join(lines[:2001]) + "\n" + lines[2001][:37])  # power lost mid-row
    [result] = await download(server, tmp_path)
    assert kline_file.read_bytes() == real_week.files["BTCUSDT"].read_bytes()
    assert (result.klines.rows_before, result.klines.dropped_partial_bytes) == (2000, 37)


async def test_the_forming_candle_is_not_written_and_a_later_run_completes_the_range(sim_server_factory, real_week,
                                                                                    tmp_path) -> None:
    server = await sim_server_factory(candles=real_week.candles)
    middle = WEEK_START_MS + 3 * 86_400_000 + 17 * MINUTE
    await server.advance_to(middle + 30_000)  # the 00:17 candle of the 23rd is half formed
    [result] = await download(server, tmp_path)
    kline_file = tmp_path / KLINE_NAME.format("BTCUSDT")
    closed = (middle - WEEK_START_MS) // MINUTE
    assert kline_file.read_text().splitlines() == real_week.lines("BTCUSDT")[:1 + closed]
    assert (result.complete, result.until_ms, result.klines.gaps) == (False, middle, [])

    await server.advance_to(WEEK_END_MS + MINUTE)
    [result] = await download(server, tmp_path)
    assert kline_file.read_bytes() == real_week.files["BTCUSDT"].read_bytes()
    assert (result.complete, result.klines.rows_written) == (True, 10_080 - closed)


async def test_gaps_in_the_served_data_are_reported_not_filled(sim_server_factory, real_week, tmp_path) -> None:
    btc = real_week.candles["BTCUSDT"]
    # Missing: the first 30 minutes, 100 minutes across the first page boundary (minute 1500), and the last 5.
    holed = btc[30:1450] + btc[1550:-5]
    server = await serve_week(sim_server_factory, real_week, candles={"BTCUSDT": holed}, real_funding=False)
    [result] = await download(server, tmp_path)
    kline_file = tmp_path / KLINE_NAME.format("BTCUSDT")
    lines = real_week.lines("BTCUSDT")
    assert kline_file.read_text().splitlines() == [lines[0], *lines[31:1451], *lines[1551:-5]]
    assert result.klines.gaps == [Gap(WEEK_START_MS, WEEK_START_MS + 29 * MINUTE),
                                  Gap(btc[1450].open_time, btc[1549].open_time),
                                  Gap(btc[-5].open_time, btc[-1].open_time)]
    assert [gap.minutes for gap in result.klines.gaps] == [30, 100, 5]
    assert result.klines.gaps[1].describe() == "2023-04-21 00:10 to 2023-04-21 01:49 UTC (100 minutes)"

    [again] = await download(server, tmp_path)  # a second run reports the same gaps from the file
    assert (again.klines.gaps, again.klines.rows_written) == (result.klines.gaps, 0)


async def test_data_ending_early_is_a_kline_gap_and_a_funding_gap_in_the_notes(sim_server_factory, real_week,
                                                                               tmp_path, capsys) -> None:
    two_days = {"BTCUSDT": real_week.candles["BTCUSDT"][:2 * 1440]}  # the symbol "stopped trading" after two days
    server = await serve_week(sim_server_factory, real_week, candles=two_days, real_funding=False)
    three_days = TimeRange(WEEK_START_MS, WEEK_START_MS + 3 * 1440 * MINUTE)
    [result] = await download(server, tmp_path, span=three_days)
    day_3 = WEEK_START_MS + 2 * 1440 * MINUTE
    assert result.klines.gaps == [Gap(day_3, three_days.end_ms - MINUTE)]
    # The last funding the server settled was at 00:00 on the third day, as the last candle closed.
    assert (result.funding.rows, result.funding.gaps) == (6, [Gap(day_3 + 1, three_days.end_ms - 1)])
    _print_results([result])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].endswith("2023-04-20_2023-04-22.csv  2,880 rows (2,880 new), 1,440 minutes missing (see below)")
    assert "NOTE BTCUSDT klines: the exchange has no kline from 2023-04-22 00:00 to 2023-04-22 23:59 UTC " \
           "(1440 minutes)" in printed
    assert "NOTE BTCUSDT funding: the exchange has no funding for more than 8 hours from 2023-04-22 00:00 to " \
           "2023-04-22 23:59 UTC (1440 minutes)" in printed


async def test_weight_used_by_others_on_the_same_ip_is_waited_out_without_a_429(sim_server_factory, real_week,
                                                                                 tmp_path) -> None:
    clock = ShiftedClock()
    limits = RateLimitConfig(request_weight_per_minute=120)
    server = await serve_week(sim_server_factory, real_week, real_funding=False, wall_clock=clock,
                              rate_limits=limits)
    clock.to_second_of_minute(57.5 - 60)
    async with BinanceTestClient(server.rest_url) as other:  # another program on this IP takes 110 of the 120
        for _ in range(11):
            reply = await other.public("GET", "/fapi/v1/premiumIndex")
            assert reply.status == 200
    notices: list[str] = []
    started = time.monotonic()
    [result] = await download(server, tmp_path, notices=notices)
    assert notices == [] and result.complete  # never refused: it waited for the next minute window
    assert time.monotonic() - started > 1.5
    assert (tmp_path / KLINE_NAME.format("BTCUSDT")).read_bytes() == real_week.files["BTCUSDT"].read_bytes()


async def test_a_429_is_honoured_until_its_retry_after_without_earning_a_418(sim_server_factory, real_week,
                                                                              tmp_path) -> None:
    # A small budget, so the other client fills it in a few requests while a page is in flight (the page before
    # used about 30: the time sync, exchangeInfo, premiumIndex and two pages of 10).
    limit = 60
    clock = ShiftedClock()
    server = await serve_week(sim_server_factory, real_week, real_funding=False, wall_clock=clock,
                              rate_limits=RateLimitConfig(request_weight_per_minute=limit))
    server.faults.delay(300, count=None, path="/fapi/v1/klines")
    kline_file = tmp_path / "BTCUSDT_usdm_1m_2023-04-20_2023-04-22.csv"

    async def use_up_the_weight_while_a_page_is_in_flight() -> None:
        while not kline_file.exists() or kline_file.stat().st_size < 100_000:  # the first page is written
            await asyncio.sleep(0.005)
        async with BinanceTestClient(server.rest_url) as other:
            used = 0
            while used < limit:  # up to the limit exactly, never past it: this client is not refused
                path = "/fapi/v1/premiumIndex" if used + 10 <= limit else "/fapi/v1/ping"
                reply = await other.public("GET", path)
                assert reply.status == 200, reply.body
                used = int(reply.headers["X-MBX-USED-WEIGHT-1M"])

    clock.to_second_of_minute(57 - 60)
    notices: list[str] = []
    other = asyncio.create_task(use_up_the_weight_while_a_page_is_in_flight())
    started = time.monotonic()
    three_days = TimeRange(WEEK_START_MS, WEEK_START_MS + 3 * 1440 * MINUTE)  # three pages
    [result] = await download(server, tmp_path, notices=notices, span=three_days)
    await other
    # The page after the in-flight one met the 429; the download sent nothing more until Retry-After (a request
    # before it would have been answered 418, an IP ban) and then finished.
    assert len(notices) == 1 and "HTTP 429" in notices[0], notices
    assert time.monotonic() - started > 1.0
    assert result.complete
    assert kline_file.read_text().splitlines() == real_week.lines("BTCUSDT")[:1 + 3 * 1440]


async def test_an_ip_still_banned_from_before_waits_out_the_418_then_downloads(sim_server_factory, real_week,
                                                                               tmp_path) -> None:
    clock = ShiftedClock()
    server = await serve_week(sim_server_factory, real_week, real_funding=False, wall_clock=clock,
                              rate_limits=RateLimitConfig(request_weight_per_minute=25, first_ban_ms=2_000))
    clock.to_second_of_minute(58.5 - 60)  # the ban ends just after the weight window, so only the ban is in the way
    async with BinanceTestClient(server.rest_url) as other:  # a careless program on this IP: 429, then a 418
        statuses = [(await other.public("GET", "/fapi/v1/premiumIndex")).status for _ in range(4)]
    assert statuses == [200, 200, 429, 418]  # premiumIndex without a symbol weighs 10
    notices: list[str] = []
    started = time.monotonic()
    [result] = await download(server, tmp_path, notices=notices, span=TimeRange(WEEK_START_MS,
                                                                                 WEEK_START_MS + 1440 * MINUTE))
    assert notices[0].startswith("rate limited (HTTP 418, -1003): waiting 2 s as the exchange asks"), notices
    assert time.monotonic() - started >= 1.5
    assert result.complete and result.klines.rows == 1440


async def test_a_server_that_is_not_there_is_one_error_at_once(tmp_path, unused_tcp_port) -> None:
    async with RestClient(f"http://127.0.0.1:{unused_tcp_port}") as rest:
        with pytest.raises(DownloadError, match=rf"^cannot reach http://127.0.0.1:{unused_tcp_port}: GET "
                                                r"/fapi/v1/time: could not connect \(.*\); check the network or "
                                                r"REST_BASE_URL$"):
            await Downloader(rest, tmp_path).start(["BTCUSDT"])


async def test_a_symbol_the_exchange_does_not_list_is_refused_before_anything_is_written(sim_server, tmp_path) -> None:
    with pytest.raises(DownloadError, match=r"--symbols: DOGEUSDT, XRPUSDT are not listed by the exchange"):
        await download(sim_server, tmp_path, ("BTCUSDT", "DOGEUSDT", "XRPUSDT"))
    assert list(tmp_path.iterdir()) == []
