"""The fill model: where inside a closed candle the price reached a level, and at what price an order fills.

A closed 1m candle is replayed as a path of straight segments through four points: open, the nearer-in-time
extreme, the other extreme, close. A bullish candle (close >= open) is taken to dip first (O -> L -> H -> C), a
bearish one to rally first (O -> H -> L -> C). Everything that happens inside a candle (resting limit fills,
stop/take-profit triggers, liquidations) is ordered by where on this path its price is first reached.

A position on the path is a ``PathKey`` (segment index, distance travelled along that segment), which sorts in
path order. Prices here are exact Decimals on the symbol's tick grid; see docs/simulator.md for the rules.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from utils.domain import ZERO, Candle

ONE = Decimal(1)

PathKey = tuple[int, Decimal]
PATH_START: PathKey = (0, ZERO)


def candle_path(candle: Candle) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """The four turning points of the candle, in the order the model assumes they traded."""
    if candle.close >= candle.open:
        return candle.open, candle.low, candle.high, candle.close
    return candle.open, candle.high, candle.low, candle.close


def price_at(path: tuple[Decimal, ...], key: PathKey) -> Decimal:
    segment, distance = key
    start = path[segment]
    return start + distance if path[segment + 1] >= start else start - distance


def first_reach(
    path: tuple[Decimal, ...],
    level: Decimal,
    falling: bool,
    *,
    strict: bool = False,
    start: PathKey = PATH_START,
) -> PathKey | None:
    """First point at or after ``start`` where the price is at or below ``level`` (``falling``) or at or above it.

    ``strict`` asks for strictly below/above ("traded through"). Returns None when the path never gets there.
    """
    segment, distance = start
    begin = price_at(path, start)
    # Already there at the starting point.
    if falling:
        if begin < level or (not strict and begin == level):
            return start
    elif begin > level or (not strict and begin == level):
        return start
    # Distances are measured from the segment's first point, whatever point of it the search started from.
    for index in range(segment, len(path) - 1):
        b = path[index + 1]
        if falling:
            if b < level or (not strict and b == level):
                return index, path[index] - level
        elif b > level or (not strict and b == level):
            return index, level - path[index]
    return None


def round_to_tick(price: Decimal, tick: Decimal, up: bool) -> Decimal:
    """Round onto the tick grid, up or down (the adverse direction for the side that pays)."""
    return (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR) * tick


def clamp(price: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return low if price < low else high if price > high else price


def taker_price(reference: Decimal, buying: bool, slippage: Decimal, tick: Decimal,
                low: Decimal, high: Decimal) -> Decimal:
    """A taker fill near ``reference``: slipped against the taker, rounded to the adverse tick, kept in [low, high]."""
    if buying:
        return clamp(round_to_tick(reference * (ONE + slippage), tick, up=True), low, high)
    return clamp(round_to_tick(reference * (ONE - slippage), tick, up=False), low, high)


def resting_fill_price(limit: Decimal, buying: bool, low: Decimal, high: Decimal) -> Decimal:
    """A resting limit order the candle traded through fills at its limit, or at the worst traded price that is
    still no worse than the limit when the whole candle gapped past it (a buy above the high fills at the high)."""
    if buying:
        return high if limit > high else limit
    return low if limit < low else limit


def volume_cap(volume: Decimal, fraction: Decimal, step: Decimal) -> Decimal:
    """Most quantity the model lets us take from ``volume`` traded, rounded down to the lot step."""
    if fraction <= 0:
        return ZERO
    return (volume * fraction / step).to_integral_value(rounding=ROUND_FLOOR) * step
