"""Turns Binance's REST klines and funding-rate entries into the exact CSV rows the project's readers accept.

A kline (``GET /fapi/v1/klines``: an array of 12, times as JSON integers, prices and volumes as decimal strings)
becomes the 11-column row of ``utils/klines_csv.py`` (``ignore`` dropped), its decimal strings kept exactly as
Binance sent them. A funding entry (``GET /fapi/v1/fundingRate``) becomes ``funding_time_ms,funding_rate``, the
layout of ``../shared/data/funding_mark``. Anything the readers would refuse (an impossible candle, a number that is
not a plain decimal) raises :class:`RowError` naming the field, so nothing unreadable is ever written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from utils.klines_csv import MICROSECONDS_THRESHOLD

MINUTE_MS = 60_000
KLINE_FIELDS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades",
                "taker_buy_volume", "taker_buy_quote_volume")
FUNDING_HEADER = ("funding_time_ms", "funding_rate")
# Times from 10**15 on are read as microseconds by utils/klines_csv.py (some 2025+ archives use them); Binance's
# REST API sends milliseconds, so a larger one is not a time it could send.
LARGEST_TIME_MS = MICROSECONDS_THRESHOLD
# Plain positional decimals only: what Binance sends, and what every reader (Decimal, float, numpy) parses alike.
_UNSIGNED_DECIMAL = re.compile(r"[0-9]{1,30}(\.[0-9]{1,30})?")
_SIGNED_DECIMAL = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")
_DIGITS = re.compile(r"[0-9]{1,20}")
_EIGHT_DECIMALS = re.compile(r"(?:[0-9]{1,30}(?:\.[0-9]{1,30})?,){7}[0-9]{1,30}(?:\.[0-9]{1,30})?")


class RowError(ValueError):
    """A kline or funding entry that does not have the shape or values Binance documents."""


@dataclass(frozen=True, slots=True)
class KlineRow:
    """One closed 1m kline: its open time and the 11 CSV fields, as written."""

    open_time: int
    close_time: int
    fields: tuple[str, ...]

    def csv_line(self) -> str:
        return ",".join(self.fields)


@dataclass(frozen=True, slots=True)
class FundingRow:
    """One settled funding: its time (ms) and rate, as written."""

    funding_time: int
    funding_rate: str

    def csv_line(self) -> str:
        return f"{self.funding_time},{self.funding_rate}"


def _integer(value: Any, name: str) -> int:
    # JSON integers only (Binance sends times and trade counts as numbers); a bool is not an integer here.
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError(f"{name} is not an integer ({value!r})")
    if value < 0:
        raise RowError(f"{name} is negative ({value!r})")
    return value


def _time(value: Any, name: str) -> int:
    time = _integer(value, name)
    if time >= LARGEST_TIME_MS:
        raise RowError(f"{name} {time} is not a time in milliseconds")
    return time


def _decimal_text(value: Any, name: str, pattern: re.Pattern[str] = _UNSIGNED_DECIMAL) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise RowError(f"{name} is not a plain decimal string ({value!r})")
    return value


def parse_kline(raw: Any, interval_ms: int = MINUTE_MS) -> KlineRow:
    """A REST kline array as a CSV row; raises :class:`RowError` for anything the kline reader would refuse.

    The usual case, a well-formed kline, is checked with one pattern over its eight decimal fields; anything that
    does not pass goes through the field-by-field check that says what is wrong.
    """
    if type(raw) is not list or len(raw) not in (11, 12):
        return _parse_kline_field_by_field(raw, interval_ms)
    open_time, open_, high, low, close, volume, close_time, quote, trades, taker, taker_quote = raw[:11]
    try:
        decimals = ",".join((open_, high, low, close, volume, quote, taker, taker_quote))
    except TypeError:
        return _parse_kline_field_by_field(raw, interval_ms)
    if (type(open_time) is not int or type(close_time) is not int or type(trades) is not int or trades < 0
            or not 0 <= open_time < close_time < LARGEST_TIME_MS or open_time % interval_ms
            or close_time != open_time + interval_ms - 1 or _EIGHT_DECIMALS.fullmatch(decimals) is None):
        return _parse_kline_field_by_field(raw, interval_ms)
    low_price, high_price = Decimal(low), Decimal(high)
    if not (low_price > 0 and low_price <= Decimal(open_) <= high_price and low_price <= Decimal(close) <= high_price):
        return _parse_kline_field_by_field(raw, interval_ms)
    return KlineRow(open_time, close_time, (str(open_time), open_, high, low, close, volume, str(close_time), quote,
                                            str(trades), taker, taker_quote))


def _parse_kline_field_by_field(raw: Any, interval_ms: int) -> KlineRow:
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)) or len(raw) not in (11, 12):
        raise RowError(f"a kline is an array of 12 fields ({raw!r})")
    open_time = _time(raw[0], "open_time")
    close_time = _time(raw[6], "close_time")
    trades = _integer(raw[8], "trades")
    texts = {name: _decimal_text(raw[index], name) for index, name in enumerate(KLINE_FIELDS)
             if name not in ("open_time", "close_time", "trades")}
    if open_time % interval_ms:
        raise RowError(f"open_time {open_time} is not on a {interval_ms // 1000} s boundary")
    if close_time != open_time + interval_ms - 1:
        raise RowError(f"close_time {close_time} is not open_time {open_time} + {interval_ms - 1}")
    open_, high, low, close = (Decimal(texts[name]) for name in ("open", "high", "low", "close"))
    for name, price in (("open", open_), ("high", high), ("low", low), ("close", close)):
        if price <= 0:
            raise RowError(f"{name} must be a price above 0 ({texts[name]!r})")
    if high < low:
        raise RowError(f"high {texts['high']} is below low {texts['low']}")
    for name, price in (("open", open_), ("close", close)):
        if not low <= price <= high:
            raise RowError(f"{name} {texts[name]} is outside the candle's low..high ({texts['low']}..{texts['high']})")
    fields = (str(open_time), texts["open"], texts["high"], texts["low"], texts["close"], texts["volume"],
              str(close_time), texts["quote_volume"], str(trades), texts["taker_buy_volume"],
              texts["taker_buy_quote_volume"])
    return KlineRow(open_time, close_time, fields)


def parse_funding(raw: Any, symbol: str) -> FundingRow:
    """A REST funding-rate entry as a CSV row; the entry must be for ``symbol``."""
    if not isinstance(raw, Mapping):
        raise RowError(f"a funding entry is an object ({raw!r})")
    if raw.get("symbol") != symbol:
        raise RowError(f"funding entry for {raw.get('symbol')!r}, not {symbol}")
    funding_time = _time(raw.get("fundingTime"), "fundingTime")
    rate = _decimal_text(raw.get("fundingRate"), "fundingRate", _SIGNED_DECIMAL)
    return FundingRow(funding_time, rate)


def kline_open_time(line: str) -> int | None:
    """The open time of a CSV line this module wrote, or ``None`` if the line is not a complete kline row."""
    fields = line.split(",")
    if len(fields) != len(KLINE_FIELDS) or any(_DIGITS.fullmatch(fields[i]) is None for i in (0, 6, 8)):
        return None
    raw = [int(fields[0]), *fields[1:6], int(fields[6]), fields[7], int(fields[8]), *fields[9:]]
    try:
        return parse_kline(raw).open_time
    except RowError:
        return None


def funding_time(line: str) -> int | None:
    """The funding time of a CSV line this module wrote, or ``None`` if it is not a complete funding row."""
    fields = line.split(",")
    if len(fields) != 2 or _DIGITS.fullmatch(fields[0]) is None or _SIGNED_DECIMAL.fullmatch(fields[1]) is None:
        return None
    return int(fields[0])
