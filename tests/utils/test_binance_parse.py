"""Wire parsing: Binance's documented payloads become domain objects; malformed frames raise PayloadError."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.binance_parse import (
    AccountUpdate,
    AlgoUpdate,
    ListenKeyExpired,
    OrderUpdate,
    OtherUserEvent,
    PayloadError,
    parse_kline_event,
    parse_mark_price_event,
    parse_rest_order,
    parse_rest_position,
    parse_rest_trade,
    parse_user_event,
)
from utils.domain import AlgoStatus, ExecutionType, OrderStatus, OrderType, PositionSide, Side


def load(payloads_dir, name):
    return json.loads((payloads_dir / name).read_text())


def test_order_trade_update(payloads_dir) -> None:
    update = parse_user_event(load(payloads_dir, "uds_order_trade_update.json"))
    assert isinstance(update, OrderUpdate)
    assert update.execution_type is ExecutionType.NEW and update.fill is None
    order = update.order
    assert (order.symbol, order.client_order_id, order.order_id) == ("BTCUSDT", "TEST", 8886774)
    assert order.side is Side.SELL and order.order_type is OrderType.TRAILING_STOP_MARKET
    assert order.position_side is PositionSide.LONG and order.status is OrderStatus.NEW
    assert order.stop_price == D("7103.04") and order.quantity == D("0.001")


def test_trade_execution_carries_a_fill(payloads_dir) -> None:
    event = load(payloads_dir, "uds_order_trade_update.json")
    event["o"].update({"x": "TRADE", "X": "PARTIALLY_FILLED", "l": "0.0005", "L": "7100.5", "z": "0.0005",
                       "ap": "7100.5", "t": 42, "n": "0.0017", "rp": "-1.5", "m": True})
    update = parse_user_event(event)
    assert isinstance(update, OrderUpdate) and update.fill is not None
    fill = update.fill
    assert (fill.trade_id, fill.price, fill.quantity, fill.commission) == (42, D("7100.5"), D("0.0005"), D("0.0017"))
    assert fill.realized_pnl == D("-1.5") and fill.maker and fill.quote_quantity == D("3.55025")
    assert update.order.executed_quantity == D("0.0005")


def test_account_update(payloads_dir) -> None:
    update = parse_user_event(load(payloads_dir, "uds_account_update.json"))
    assert isinstance(update, AccountUpdate) and update.reason == "ORDER"
    assert update.balances[0].wallet_balance == D("122624.12345678")
    short = [p for p in update.positions if p.position_side is PositionSide.SHORT][0]
    assert short.amount == D("-10") and short.entry_price == D("6563.86000") and short.break_even_price == D("6563.6")


def test_algo_update(payloads_dir) -> None:
    update = parse_user_event(load(payloads_dir, "uds_algo_update.json"))
    assert isinstance(update, AlgoUpdate)
    assert update.status is AlgoStatus.CANCELED and update.order_type is OrderType.TAKE_PROFIT
    assert update.trigger_price == D("750") and update.reject_reason == "Reduce Only reject"


def test_other_events(payloads_dir) -> None:
    assert isinstance(parse_user_event(load(payloads_dir, "uds_listen_key_expired.json")), ListenKeyExpired)
    for name in ("uds_trade_lite.json", "uds_margin_call.json", "uds_account_config_update_leverage.json"):
        assert isinstance(parse_user_event(load(payloads_dir, name)), OtherUserEvent)


def test_market_streams(payloads_dir) -> None:
    candle = parse_kline_event(load(payloads_dir, "ws_kline.json"))
    assert candle.symbol == "BTCUSDT" and candle.close == D("0.0020") and not candle.closed
    assert candle.close_time - candle.open_time == 59_999
    wrapped = load(payloads_dir, "ws_combined_wrapper_kline_DERIVED.json")
    assert parse_kline_event(wrapped["data"]).symbol == wrapped["data"]["s"]
    mark = parse_mark_price_event(load(payloads_dir, "ws_mark_price_update.json"))
    assert mark.mark_price == D("11794.15000000") and mark.next_funding_time == 1562306400000
    assert mark.funding_rate == D("0.00038167")
    for item in load(payloads_dir, "ws_mark_price_update_all_market.json"):
        assert parse_mark_price_event(item).mark_price > 0


def test_rest_objects(payloads_dir) -> None:
    order = parse_rest_order(load(payloads_dir, "rest_query_order.json"))
    assert order.client_order_id == "abc" and order.create_time == 1579276756075
    new = parse_rest_order(load(payloads_dir, "rest_new_order_response.json"))
    assert new.order_id == 22542179
    for item in load(payloads_dir, "rest_open_orders.json"):
        assert parse_rest_order(item).status is OrderStatus.NEW
    trade = parse_rest_trade(load(payloads_dir, "rest_user_trades.json")[0])
    assert trade.trade_id == 698759 and trade.realized_pnl == D("-0.91539999")
    for name in ("rest_position_risk_v3_oneway.json", "rest_position_risk_v3_hedge.json",
                 "rest_position_risk_v2_oneway.json", "rest_position_risk_v2_hedge.json"):
        for item in load(payloads_dir, name):
            parse_rest_position(item)


@pytest.mark.parametrize("bad", [
    None, [], "x", {}, {"e": "ORDER_TRADE_UPDATE"}, {"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"s": "BTCUSDT"}},
    {"e": "ACCOUNT_UPDATE", "E": 1, "a": {"B": [{"a": "USDT", "wb": "NaN"}]}},
    {"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"s": "B", "c": "x", "S": "UP", "o": "LIMIT", "x": "NEW", "X": "NEW",
                                              "i": 1}},
])
def test_malformed_frames_raise_payload_error(bad) -> None:
    with pytest.raises(PayloadError):
        parse_user_event(bad)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(allow_nan=True),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(event_type=st.sampled_from(["ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "ALGO_UPDATE", "kline"]),
       body=st.dictionaries(st.sampled_from(["E", "T", "o", "a", "k", "x"]), json_values, max_size=5))
def test_arbitrary_frames_never_crash_with_anything_but_payload_error(event_type, body) -> None:
    frame = {"e": event_type, **body}
    try:
        if event_type == "kline":
            parse_kline_event(frame)
        else:
            parse_user_event(frame)
    except PayloadError:
        pass
