"""Exchange filters: parsing real exchangeInfo, every Binance code they prevent, and rounding properties."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from utils.domain import OrderType, Side
from utils.filters import FilterParseError, LotSize, SymbolFilters, parse_exchange_info
from utils.precision import to_wire

BTC_ENTRY = {
    "symbol": "BTCUSDT", "status": "TRADING", "pricePrecision": 2, "quantityPrecision": 3,
    "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000", "baseAsset": "BTC", "quoteAsset": "USDT",
    "marginAsset": "USDT",
    "filters": [
        {"minPrice": "402", "maxPrice": "1246396.60", "filterType": "PRICE_FILTER", "tickSize": "0.10"},
        {"stepSize": "0.001", "filterType": "LOT_SIZE", "maxQty": "1000", "minQty": "0.001"},
        {"stepSize": "0.001", "filterType": "MARKET_LOT_SIZE", "maxQty": "120", "minQty": "0.001"},
        {"limit": 200, "filterType": "MAX_NUM_ORDERS"},
        {"limit": 10, "filterType": "MAX_NUM_ALGO_ORDERS"},
        {"notional": "100", "filterType": "MIN_NOTIONAL"},
        {"multiplierDown": "0.9500", "multiplierUp": "1.0500", "multiplierDecimal": "4",
         "filterType": "PERCENT_PRICE"},
    ],
}
BTC = SymbolFilters.from_exchange_info(BTC_ENTRY)
MARK = D("30000")


def test_parses_every_real_payload(payloads_dir) -> None:
    for name in ("rest_exchange_info.json", "thirdparty_nautilus_http_futures_usdt_exchange_info.json"):
        symbols = parse_exchange_info(json.loads((payloads_dir / name).read_text()))
        assert symbols, name
        for filters in symbols.values():
            assert filters.tick_size > 0 and filters.lot.step_size > 0
    blz = parse_exchange_info(json.loads((payloads_dir / "rest_exchange_info.json").read_text()))["BLZUSDT"]
    assert blz.tick_size == D("0.0001") and blz.lot == LotSize(D("1"), D("10000000"), D("1"))
    assert blz.market_lot.max_qty == D("590119") and blz.min_notional == D("5.0")
    assert (blz.multiplier_up, blz.multiplier_down, blz.max_num_orders) == (D("1.1500"), D("0.8500"), 200)


def test_missing_filter_is_a_clear_error() -> None:
    entry = {**BTC_ENTRY, "filters": [f for f in BTC_ENTRY["filters"] if f["filterType"] != "LOT_SIZE"]}
    with pytest.raises(FilterParseError, match="BTCUSDT.*LOT_SIZE"):
        SymbolFilters.from_exchange_info(entry)


@pytest.mark.parametrize(
    ("order_type", "quantity", "price", "reduce_only", "code"),
    [
        (OrderType.LIMIT, D("0"), D("30000"), False, -4003),
        (OrderType.LIMIT, D("-0.01"), D("30000"), False, -4003),
        (OrderType.LIMIT, D("0.0015"), D("30000"), False, -1111),
        (OrderType.LIMIT, D("0.010"), D("30000.005"), False, -1111),
        (OrderType.LIMIT, D("1001"), D("30000"), False, -4005),
        (OrderType.MARKET, D("121"), None, False, -4005),  # MARKET_LOT_SIZE, not LOT_SIZE
        (OrderType.LIMIT, D("0.010"), D("30000.01"), False, -4014),
        (OrderType.LIMIT, D("0.010"), D("31500.1"), False, -4016),
        (OrderType.LIMIT, D("0.010"), D("28499.9"), False, -4024),
        (OrderType.LIMIT, D("0.003"), D("30000"), False, -4164),
        (OrderType.MARKET, D("0.003"), None, False, -4164),
        (OrderType.LIMIT, D("0.010"), D("401.9"), False, -4013),
        (OrderType.LIMIT, D("0.010"), D("0"), False, -4001),
    ],
)
def test_each_rule_names_the_binance_code(order_type, quantity, price, reduce_only, code) -> None:
    violation = BTC.validate(order_type=order_type, quantity=quantity, price=price, mark_price=MARK,
                             reduce_only=reduce_only)
    assert violation is not None and violation.code == code, violation


def test_step_multiple_counted_from_min_qty() -> None:
    odd = SymbolFilters.from_exchange_info({**BTC_ENTRY, "quantityPrecision": 3, "filters": [
        *(f for f in BTC_ENTRY["filters"] if f["filterType"] not in ("LOT_SIZE", "MARKET_LOT_SIZE")),
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "10", "stepSize": "0.005"},
    ]})
    assert odd.check_quantity(D("0.006"), OrderType.LIMIT) is None
    violation = odd.check_quantity(D("0.005"), OrderType.LIMIT)
    assert violation is not None and violation.code == -4023


def test_valid_orders_pass_and_percent_bounds_are_inclusive() -> None:
    low, high = BTC.percent_price_bounds(MARK)
    assert (low, high) == (D("28500.0"), D("31500.0"))
    for price in (low, high, MARK):
        assert BTC.validate(order_type=OrderType.LIMIT, quantity=D("0.004"), price=price, mark_price=MARK) is None
    assert BTC.validate(order_type=OrderType.MARKET, quantity=D("0.004"), price=None, mark_price=MARK) is None


def test_reduce_only_is_exempt_from_min_notional() -> None:
    assert BTC.validate(order_type=OrderType.LIMIT, quantity=D("0.001"), price=MARK, mark_price=MARK,
                        reduce_only=True) is None


def test_max_num_orders() -> None:
    violation = BTC.validate(order_type=OrderType.LIMIT, quantity=D("0.01"), price=MARK, mark_price=MARK,
                             open_orders=200)
    assert violation is not None and violation.code == -2025
    assert BTC.validate(order_type=OrderType.LIMIT, quantity=D("0.01"), price=MARK, mark_price=MARK,
                        open_orders=199) is None


def test_price_rounds_in_the_safe_direction() -> None:
    assert BTC.round_price(D("30000.07"), Side.BUY) == D("30000.0")
    assert BTC.round_price(D("30000.07"), Side.SELL) == D("30000.1")
    assert BTC.round_price(D("30000.1"), Side.SELL) == D("30000.1")


def test_min_quantity_for_notional() -> None:
    quantity = BTC.min_quantity_for_notional(D("30000"))
    assert quantity == D("0.004")
    assert BTC.check_notional(quantity, D("30000"), False) is None
    assert BTC.check_notional(quantity - BTC.lot.step_size, D("30000"), False) is not None


# --------------------------------------------------------------------------------------- properties
def _filters_strategy():
    steps = st.sampled_from([D("1"), D("0.1"), D("0.01"), D("0.001"), D("0.005"), D("0.0001")])
    ticks = st.sampled_from([D("0.1"), D("0.01"), D("0.001"), D("0.0001"), D("0.05"), D("0.5")])

    @st.composite
    def build(draw):
        step = draw(steps)
        tick = draw(ticks)
        quantity_precision = max(0, -step.normalize().as_tuple().exponent)
        price_precision = max(0, -tick.normalize().as_tuple().exponent)
        min_qty = step * draw(st.integers(1, 5))
        min_price = tick * draw(st.integers(1, 100))
        return SymbolFilters.from_exchange_info({
            "symbol": "TESTUSDT", "pricePrecision": price_precision, "quantityPrecision": quantity_precision,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": str(min_price), "maxPrice": "1000000",
                 "tickSize": str(tick)},
                {"filterType": "LOT_SIZE", "minQty": str(min_qty), "maxQty": "100000", "stepSize": str(step)},
                {"filterType": "MARKET_LOT_SIZE", "minQty": str(min_qty), "maxQty": "5000", "stepSize": str(step)},
                {"filterType": "MIN_NOTIONAL", "notional": str(draw(st.sampled_from([5, 10, 20, 100])))},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.1000", "multiplierDown": "0.9000",
                 "multiplierDecimal": "4"},
            ],
        })

    return build()


decimals = st.decimals(min_value=D("0.00000001"), max_value=D("200000"), allow_nan=False, allow_infinity=False,
                       places=8)


@settings(max_examples=400, deadline=None)
@given(filters=_filters_strategy(), quantity=decimals, side=st.sampled_from(list(Side)),
       order_type=st.sampled_from([OrderType.LIMIT, OrderType.MARKET]),
       mark=st.decimals(min_value=D("1"), max_value=D("100000"), places=4),
       offset=st.decimals(min_value=D("0.9"), max_value=D("1.1"), places=6))
def test_anything_rounded_passes_the_filters(filters, quantity, side, order_type, mark, offset) -> None:
    rounded_quantity = filters.round_quantity(quantity, order_type)
    assert rounded_quantity <= quantity  # never more than asked
    assert "E" not in to_wire(rounded_quantity) and "e" not in to_wire(rounded_quantity)
    if rounded_quantity == 0:
        assert quantity < filters.lot_for(order_type).min_qty
        return
    assert filters.check_quantity(rounded_quantity, order_type) is None
    # And it is the largest valid quantity not above the request.
    assert filters.check_quantity(rounded_quantity + filters.lot_for(order_type).step_size, order_type) is not None \
        or rounded_quantity + filters.lot_for(order_type).step_size > quantity
    price = filters.round_price(mark * offset, side)
    assume(filters.min_price <= price)
    assert filters.check_price(price) is None
    assert "E" not in to_wire(price)
    if side is Side.BUY:
        assert price <= max(mark * offset, filters.min_price)
    else:
        assert price >= min(mark * offset, filters.max_price)
    low, high = filters.percent_price_bounds(mark)
    assume(low <= high)  # a tick coarse against the band can leave no valid price at all (then none passes)
    clamped = min(max(price, low), high)
    assert filters.check_percent_price(clamped, mark) is None


def test_below_min_quantity_is_4004() -> None:
    entry = {**BTC_ENTRY, "filters": [
        *(f for f in BTC_ENTRY["filters"] if f["filterType"] != "LOT_SIZE"),
        {"filterType": "LOT_SIZE", "minQty": "0.010", "maxQty": "100", "stepSize": "0.001"},
    ]}
    filters = SymbolFilters.from_exchange_info(entry)
    violation = filters.validate(order_type=OrderType.LIMIT, quantity=D("0.005"), price=MARK, mark_price=MARK)
    assert violation is not None and (violation.code, violation.filter_type) == (-4004, "LOT_SIZE")
    assert filters.round_quantity(D("0.0099")) == 0  # cannot be rounded up to the minimum: refused, not enlarged
    assert filters.round_quantity(D("0.0109")) == D("0.010")
