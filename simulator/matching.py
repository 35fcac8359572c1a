"""The fill model: where inside a closed candle the price reached a level, and at what price an order fills.

A closed 1m candle is replayed as a path of straight segments through four points: open, the nearer-in-time
extreme, the other extreme, close. A bullish candle (close >= open) is taken to dip first (O -> L -> H -> C), a
bearish one to rally first (O -> H -> L -> C). Everything that happens inside a candle (resting limit fills,
stop/take-profit triggers, liquidations) is ordered by where on this path its price is first reached.

A position on the path is a ``PathKey`` (segment index, distance travelled along that segment), which sorts in
path order. Prices here are exact Decimals on the symbol's tick grid; see docs/simulator.md for the rules.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal

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
                low: Decimal, high: Decimal, impact: Decimal = ZERO) -> Decimal:
    """A taker fill near ``reference``: moved against the taker by ``slippage`` (the half spread, kept inside the
    candle's [low, high]), then by the size's ``impact`` (not kept inside: a large order walks the book past what
    the candle traded), rounded to the adverse tick. Both are fractions of the price."""
    if buying:
        return round_to_tick(clamp(reference * (ONE + slippage), low, high) * (ONE + impact), tick, up=True)
    return round_to_tick(clamp(reference * (ONE - slippage), low, high) * (ONE - impact), tick, up=False)


# Impact is a modelling fraction (about 1e-6 to 1e-3 of the price) that ends up rounded to the tick: 16 significant
# digits are far more than it needs, and make the square roots several times cheaper than Decimal's default 28.
_IMPACT_CONTEXT = Context(prec=16, rounding=ROUND_HALF_EVEN)


def average_impact(impact: Decimal, taken: Decimal, quantity: Decimal, volume: Decimal) -> Decimal:
    """The average price impact (a fraction of the price) of taking ``quantity`` after ``taken`` was already taken
    from a candle that traded ``volume``: the mean of ``impact x sqrt(x / volume)`` over x in [taken, taken +
    quantity], i.e. ``impact x 2/3 x ((taken + quantity)^1.5 - taken^1.5) / (quantity x volume^0.5)``.

    ``impact`` is the impact at 100 % of the candle's volume (square-root law). Zero when either is zero.
    Computed with 16 significant digits (deterministic: the same inputs give the same Decimal).
    """
    if not impact or quantity <= 0 or volume <= 0:
        return ZERO
    c = _IMPACT_CONTEXT
    end = c.divide(taken + quantity, volume)  # the share of the volume taken once this fill is done
    root_end = end.sqrt(c)
    if taken <= 0:  # the mean of sqrt(x) over [0, end] is 2/3 sqrt(end)
        return c.multiply(c.divide(c.multiply(impact, 2), 3), root_end)
    start = c.divide(taken, volume)  # mean over [start, end]: 2/3 (end^1.5 - start^1.5) / (end - start)
    walked = c.subtract(c.multiply(end, root_end), c.multiply(start, start.sqrt(c)))
    return c.divide(c.multiply(c.multiply(impact, 2), walked), c.multiply(3, c.subtract(end, start)))


def marginal_impact(impact: Decimal, taken: Decimal, volume: Decimal) -> Decimal:
    """The impact (fraction of the price) of the last unit once ``taken`` has been taken from ``volume``."""
    if not impact or taken <= 0 or volume <= 0:
        return ZERO
    return _IMPACT_CONTEXT.multiply(impact, _IMPACT_CONTEXT.divide(taken, volume).sqrt(_IMPACT_CONTEXT))


def volume_cap(volume: Decimal, fraction: Decimal, step: Decimal) -> Decimal:
    """Most quantity the model lets us take from ``volume`` traded, rounded down to the lot step."""
    if fraction <= 0:
        return ZERO
    return (volume * fraction / step).to_integral_value(rounding=ROUND_FLOOR) * step
