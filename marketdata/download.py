"""Downloads 1m klines and funding rates over Binance's public REST API into the project's CSV files.

For each symbol, ``SYMBOL_usdm_1m_FIRST_LAST.csv`` (the kline layout ``utils/klines_csv.py`` reads) and
``SYMBOL_funding_rate_FIRST_LAST.csv`` (``funding_time_ms,funding_rate``), FIRST and LAST being the first and last
UTC day of the range. Klines are asked for in fixed windows of 1,500 minutes (``startTime`` .. ``endTime``,
``limit=1500``), so every minute of the range is asked for exactly once however the exchange's data is holed; only
candles that have closed by the market's own time (``premiumIndex.time``) are written. A file already there is
continued after its last complete row (see ``marketdata/history_files.py``), so a second run resumes an
interrupted one and a finished file costs one request. Minutes the exchange has no kline for are reported as
gaps, never filled in. Rate limits are the REST client's job (request weight, ``X-MBX-USED-WEIGHT-1M``, 429 / 418
with Retry-After).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from marketdata.history_files import HistoryFile, HistoryFileError, Reopened
from marketdata.history_rows import (
    FUNDING_HEADER,
    MINUTE_MS,
    FundingRow,
    KlineRow,
    RowError,
    funding_time,
    kline_open_time,
    parse_funding,
    parse_kline,
)
from utils.errors import BinanceError, NotSentError, OutcomeUnknownError, RateLimitedError
from utils.klines_csv import HEADER as KLINE_HEADER
from utils.ratelimit import RateLimitConfigError, parse_rate_limits
from utils.rest import Params, RestClient

logger = logging.getLogger("marketdata.download")

KLINES_PER_PAGE = 1500
FUNDING_PER_PAGE = 1000

# A kline counts as closed once the market's clock is this far past its close time (Binance may still be
# settling the last trades of the minute for a moment after it ends).
CLOSE_SETTLE_MS = 2_000
# Funding is settled every 8 hours at most (4 h, 2 h and 1 h exist): a longer silence is a hole in the history.
LONGEST_FUNDING_INTERVAL_MS = 8 * 3_600_000 + MINUTE_MS
# A request that fails for a passing reason (no answer, a 5xx) is tried this many times in all, waiting twice as
# long after each failure; a rate limit (429 / 418) is waited out for its Retry-After, up to RATE_LIMITED_ATTEMPTS.
TRANSIENT_ATTEMPTS = 6
RATE_LIMITED_ATTEMPTS = 20


def klines_weight(limit: int) -> int:
    """Binance's weight of GET /fapi/v1/klines by ``limit``: [1, 100) 1, [100, 500) 2, [500, 1000] 5, above 10."""
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


class DownloadError(Exception):
    """A download that cannot go on: one line naming the symbol, file or request and what to do.

    ``after_writing`` is set when files were already written to (so running again continues them)."""

    after_writing = False


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Whole minutes from ``start_ms`` (included) to ``end_ms`` (excluded)."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.start_ms % MINUTE_MS or self.end_ms % MINUTE_MS:
            raise ValueError("a download range starts and ends on whole minutes")
        if self.end_ms <= self.start_ms:
            raise ValueError("a download range ends after it starts")

    @property
    def minutes(self) -> int:
        return (self.end_ms - self.start_ms) // MINUTE_MS

    @property
    def name_part(self) -> str:
        """``FIRST_LAST``: the range's first and last UTC day, as the project's data files are named."""
        return f"{utc_day(self.start_ms)}_{utc_day(self.end_ms - 1)}"


def utc_day(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%d")


def utc_minute(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def kline_file_name(symbol: str, span: TimeRange) -> str:
    return f"{symbol}_usdm_1m_{span.name_part}.csv"


def funding_file_name(symbol: str, span: TimeRange) -> str:
    return f"{symbol}_funding_rate_{span.name_part}.csv"


@dataclass(frozen=True, slots=True)
class Gap:
    """Minutes (or, for funding, a stretch of time) the exchange has no data for: ``first_ms`` .. ``last_ms``."""

    first_ms: int
    last_ms: int

    @property
    def minutes(self) -> int:
        return (self.last_ms - self.first_ms) // MINUTE_MS + 1

    def describe(self) -> str:
        return f"{utc_minute(self.first_ms)} to {utc_minute(self.last_ms)} UTC ({self.minutes} minutes)"


def kline_gaps(open_times: Sequence[int], span: TimeRange, until_ms: int) -> list[Gap]:
    """The missing minutes of ``span`` up to ``until_ms`` (excluded), given the open times present, in order."""
    gaps = []
    expected = span.start_ms
    for open_time in open_times:
        if open_time > expected:
            gaps.append(Gap(expected, open_time - MINUTE_MS))
        expected = open_time + MINUTE_MS
    if until_ms > expected:
        gaps.append(Gap(expected, until_ms - MINUTE_MS))
    return gaps


def funding_gaps(times: Sequence[int], span: TimeRange, until_ms: int) -> list[Gap]:
    """Stretches of more than 8 hours without a funding in ``span`` up to ``until_ms``."""
    gaps = []
    previous = span.start_ms - 1
    for time in [*times, until_ms]:
        if time - previous > LONGEST_FUNDING_INTERVAL_MS:
            gaps.append(Gap(previous + 1, time - 1))
        previous = time
    return gaps


@dataclass
class FileResult:
    """What one file holds after the run."""

    path: Path
    rows_before: int = 0
    rows_written: int = 0
    dropped_rows: int = 0
    dropped_partial_bytes: int = 0
    gaps: list[Gap] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.rows_before + self.rows_written


@dataclass
class SymbolResult:
    symbol: str
    klines: FileResult
    funding: FileResult
    # The end of what could be downloaded: the range's end, or the last closed minute when it lies in the future.
    until_ms: int
    range_end_ms: int

    @property
    def complete(self) -> bool:
        return self.until_ms >= self.range_end_ms


Progress = Callable[[str, int], None]  # (symbol, minutes done since the last call)
Notice = Callable[[str], None]  # a line worth showing while it runs (waiting out a rate limit, retrying)


def _no_progress(symbol: str, minutes: int) -> None:
    return None


class Downloader:
    """Downloads symbols over ``rest`` into ``out_dir``; ``progress`` hears how many minutes each page covered."""

    def __init__(self, rest: RestClient, out_dir: Path, *, progress: Progress = _no_progress,
                 notice: Notice = logger.warning, retry_pause_sec: float = 1.0) -> None:
        self.rest = rest
        self.out_dir = out_dir
        self.progress = progress
        self.notice = notice
        self.retry_pause_sec = retry_pause_sec
        self.rate_limited = 0  # 429 / 418 answers met (each waited out)
        self.retried = 0  # requests sent again after a passing failure

    async def _get(self, path: str, params: Params, weight: int) -> Any:
        """One public GET; passing failures are retried, rate limits waited out, anything else is a DownloadError."""
        what = f"GET {path} {' '.join(f'{k}={v}' for k, v in params.items())}".rstrip()
        return await self._retrying(what, lambda: self.rest.request("GET", path, params, weight=weight))

    async def _retrying(self, what: str, call: Callable[[], Awaitable[Any]], *, transient_attempts: int = 0) -> Any:
        transient = rate_limited = 0
        attempts = transient_attempts or TRANSIENT_ATTEMPTS
        while True:
            try:
                return await call()
            except RateLimitedError as error:
                rate_limited += 1
                self.rate_limited += 1
                if rate_limited > RATE_LIMITED_ATTEMPTS:
                    raise DownloadError(f"{what}: still rate limited after {RATE_LIMITED_ATTEMPTS} waits "
                                        f"({error.code} {error.msg}): try again later") from None
                wait_ms = error.retry_after_ms
                self.notice(f"rate limited (HTTP {error.http_status}, {error.code}): waiting "
                            f"{'a while' if wait_ms is None else f'{wait_ms / 1000:g} s'} as the exchange asks")
                # The REST client holds its own requests until then; a call that does not go through its rate
                # limiter (the time sync) must wait here.
                await asyncio.sleep((wait_ms if wait_ms is not None else 60_000) / 1000)
                continue
            except NotSentError as error:
                problem = error.msg
            except OutcomeUnknownError as error:
                problem = str(error)
            except BinanceError as error:
                if not (error.http_status >= 500 or error.http_status == 408):
                    raise DownloadError(f"{what}: the exchange refused it: {error.code} {error.msg}") from None
                problem = f"HTTP {error.http_status} {error.code} {error.msg}"
            transient += 1
            if transient >= attempts:
                tries = f"failed {transient} times, last: " if transient > 1 else ""
                raise DownloadError(f"{what}: {tries}{problem}; check the network or REST_BASE_URL") from None
            self.retried += 1
            pause = self.retry_pause_sec * 2 ** (transient - 1)
            self.notice(f"{what}: {problem}; trying again in {pause:g} s")
            await asyncio.sleep(pause)

    async def start(self, symbols: Sequence[str]) -> None:
        """Measure the server-time offset, read the rate limits, and refuse symbols the exchange does not list
        (naming every one) before anything is written."""
        # The first contact: a rate limit (an IP still banned from an earlier run) is waited out, anything else
        # ends the run at once, as it is most likely a wrong REST_BASE_URL.
        await self._retrying(f"cannot reach {self.rest.base_url}", self.rest.time_sync.sync, transient_attempts=1)
        info = await self._get("/fapi/v1/exchangeInfo", {}, 1)
        if not isinstance(info, Mapping):
            raise DownloadError(f"GET /fapi/v1/exchangeInfo answered {str(info)[:200]!r}, not an object")
        try:
            limits = parse_rate_limits(info.get("rateLimits") or [])
        except RateLimitConfigError as error:
            raise DownloadError(str(error)) from None
        if limits:
            self.rest.rate_limiter.configure(limits)
        listed = {entry.get("symbol") for entry in info.get("symbols", []) if isinstance(entry, Mapping)}
        unknown = [symbol for symbol in symbols if symbol not in listed]
        if unknown:
            raise DownloadError(f"--symbols: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not "
                                "listed by the exchange (exchangeInfo); check the spelling, e.g. BTCUSDT")

    async def market_time(self, symbol: str) -> int:
        """The market's own clock (``premiumIndex.time``): klines closed before it are final."""
        body = await self._get("/fapi/v1/premiumIndex", {"symbol": symbol}, 1)
        value = body.get("time") if isinstance(body, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, int):
            raise DownloadError(f"{symbol}: premiumIndex has no market time ({body!r})")
        return value

    async def download(self, symbol: str, span: TimeRange) -> SymbolResult:
        try:
            return await self._download(symbol, span)
        except DownloadError as error:
            error.after_writing = True
            raise

    async def _download(self, symbol: str, span: TimeRange) -> SymbolResult:
        now = await self.market_time(symbol)
        closed_until = min(span.end_ms, (now - CLOSE_SETTLE_MS + 1) // MINUTE_MS * MINUTE_MS)
        klines = await self._klines(symbol, span, max(closed_until, span.start_ms))
        funding = await self._funding(symbol, span, min(span.end_ms, now))
        return SymbolResult(symbol, klines, funding, max(closed_until, span.start_ms), span.end_ms)

    def minutes_left(self, symbol: str, span: TimeRange) -> int:
        """Minutes of ``span`` not yet in the kline file (for sizing a progress bar before the run)."""
        path = self.out_dir / kline_file_name(symbol, span)
        if not path.exists():
            return span.minutes
        last = _last_key(path, kline_open_time)
        return span.minutes if last is None else max(0, (span.end_ms - last - MINUTE_MS) // MINUTE_MS)

    async def _klines(self, symbol: str, span: TimeRange, until_ms: int) -> FileResult:
        path = self.out_dir / kline_file_name(symbol, span)
        with HistoryFile(path, KLINE_HEADER, kline_open_time) as file:
            reopened = _open(file)
            outside = [key for key in reopened.keys if not span.start_ms <= key < span.end_ms]
            if outside:
                raise DownloadError(f"{path} holds a kline at {utc_minute(outside[0])} UTC, outside its range: "
                                    "the file was changed by something else; delete it to download it again")
            result = FileResult(path, len(reopened.keys), 0, reopened.dropped_rows, reopened.dropped_partial_bytes)
            open_times = reopened.keys
            cursor = open_times[-1] + MINUTE_MS if open_times else span.start_ms
            while cursor < until_ms:
                window_end = min(cursor + KLINES_PER_PAGE * MINUTE_MS, until_ms)
                raw = await self._get("/fapi/v1/klines", {
                    "symbol": symbol, "interval": "1m", "startTime": cursor, "endTime": window_end - 1,
                    "limit": KLINES_PER_PAGE}, klines_weight(KLINES_PER_PAGE))
                rows = _kline_page(symbol, raw, cursor, window_end)
                file.append([row.csv_line() for row in rows])
                open_times.extend(row.open_time for row in rows)
                result.rows_written += len(rows)
                self.progress(symbol, (window_end - cursor) // MINUTE_MS)
                cursor = window_end
            result.gaps = kline_gaps(open_times, span, until_ms)
        return result

    async def _funding(self, symbol: str, span: TimeRange, until_ms: int) -> FileResult:
        path = self.out_dir / funding_file_name(symbol, span)
        with HistoryFile(path, FUNDING_HEADER, funding_time) as file:
            reopened = _open(file)
            result = FileResult(path, len(reopened.keys), 0, reopened.dropped_rows, reopened.dropped_partial_bytes)
            times = reopened.keys
            cursor = times[-1] + 1 if times else span.start_ms
            while cursor < until_ms:
                raw = await self._get("/fapi/v1/fundingRate", {
                    "symbol": symbol, "startTime": cursor, "endTime": until_ms - 1, "limit": FUNDING_PER_PAGE}, 0)
                rows = _funding_page(symbol, raw, cursor, until_ms)
                file.append([row.csv_line() for row in rows])
                times.extend(row.funding_time for row in rows)
                result.rows_written += len(rows)
                if not rows or len(raw) < FUNDING_PER_PAGE:
                    break
                cursor = rows[-1].funding_time + 1
            result.gaps = funding_gaps(times, span, until_ms)
        return result


def _open(file: HistoryFile) -> Reopened:
    try:
        return file.open()
    except HistoryFileError as error:
        raise DownloadError(str(error)) from None


def _last_key(path: Path, key_of_line: Callable[[str], int | None]) -> int | None:
    """The key of the last complete row of ``path`` (reading only its end)."""
    with open(path, "rb") as file:
        size = file.seek(0, 2)
        file.seek(max(0, size - 4096))
        lines = file.read().split(b"\n")[:-1]
    for line in reversed(lines):
        key = key_of_line(line.decode("utf-8", errors="replace"))
        if key is not None:
            return key
    return None


def _kline_page(symbol: str, raw: Any, start_ms: int, end_ms: int) -> list[KlineRow]:
    """The page's klines, checked: each parses, lies in the window asked for, and comes after the one before."""
    if not isinstance(raw, list):
        raise DownloadError(f"{symbol}: GET /fapi/v1/klines answered {str(raw)[:200]!r}, not a list of klines")
    rows: list[KlineRow] = []
    for entry in raw:
        try:
            row = parse_kline(entry)
        except RowError as error:
            raise DownloadError(f"{symbol}: the exchange sent a kline the project cannot store ({error})") from None
        if not start_ms <= row.open_time < end_ms:
            raise DownloadError(f"{symbol}: asked for klines from {utc_minute(start_ms)} to before "
                                f"{utc_minute(end_ms)} UTC, got one at {utc_minute(row.open_time)}")
        if rows and row.open_time <= rows[-1].open_time:
            raise DownloadError(f"{symbol}: the exchange sent the kline at {utc_minute(row.open_time)} UTC twice "
                                "or out of order")
        rows.append(row)
    return rows


def _funding_page(symbol: str, raw: Any, start_ms: int, end_ms: int) -> list[FundingRow]:
    if not isinstance(raw, list):
        raise DownloadError(f"{symbol}: GET /fapi/v1/fundingRate answered {str(raw)[:200]!r}, not a list")
    rows: list[FundingRow] = []
    for entry in raw:
        try:
            row = parse_funding(entry, symbol)
        except RowError as error:
            raise DownloadError(f"{symbol}: the exchange sent a funding entry the project cannot store "
                                f"({error})") from None
        if not start_ms <= row.funding_time < end_ms:
            continue
        if rows and row.funding_time <= rows[-1].funding_time:
            raise DownloadError(f"{symbol}: the exchange sent the funding at {row.funding_time} twice or out of "
                                "order")
        rows.append(row)
    return rows
