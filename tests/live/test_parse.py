"""The live parsers on Binance's documented payloads (../shared/binance/payloads) and on a real exchangeInfo."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from live.parse import parse_account, parse_algo_ack, parse_exchange_info_document
from utils.binance_parse import PayloadError, parse_premium_index, parse_rest_kline
from utils.domain import AlgoStatus
from utils.ratelimit import RateLimit

pytestmark = pytest.mark.shared_data


def _load(payloads_dir, name: str):
    return json.loads((payloads_dir / name).read_text())


def test_exchange_info_documents_parse_with_their_rate_limits(payloads_dir):
    documented = parse_exchange_info_document(_load(payloads_dir, "rest_exchange_info.json"))
    assert documented.rate_limits == (RateLimit("REQUEST_WEIGHT", 60_000, 2400), RateLimit("ORDERS", 60_000, 1200))
    real = parse_exchange_info_document(_load(payloads_dir, "thirdparty_nautilus_http_futures_usdt_exchange_info.json"))
    assert RateLimit("ORDERS", 10_000, 300) in real.rate_limits
    assert RateLimit("REQUEST_WEIGHT", 60_000, 6000) in real.rate_limits
    for info in (documented, real):
        assert info.symbols and not info.problems
        for filters in info.symbols.values():
            assert filters.tick_size > 0 and filters.lot.step_size > 0


def test_a_symbol_entry_that_does_not_parse_is_named_not_fatal(payloads_dir):
    document = _load(payloads_dir, "rest_exchange_info.json")
    broken = dict(document["symbols"][0], symbol="BROKENUSDT", filters=[])
    info = parse_exchange_info_document(dict(document, symbols=[*document["symbols"], broken]))
    assert "BROKENUSDT" in info.problems and "BROKENUSDT" not in info.symbols
    assert not info.trading("BROKENUSDT")
    with pytest.raises(PayloadError):
        parse_exchange_info_document({"rateLimits": []})


def test_algo_account_premium_index_and_kline_payloads(payloads_dir):
    ack = parse_algo_ack(_load(payloads_dir, "rest_new_algo_order_response.json"))
    assert (ack.algo_id, ack.client_algo_id, ack.symbol, ack.status) == (
        2146760, "6B2I9XVcJpCjqPAJ4YoFX7", "BNBUSDT", AlgoStatus.NEW)
    assert ack.triggered_order_id is None
    account = parse_account(_load(payloads_dir, "rest_account_v3_single_asset.json"))
    assert account.wallet_balance == Decimal("103.12345678") and account.equity == Decimal("103.12345678")
    mark = parse_premium_index(_load(payloads_dir, "rest_premium_index_symbol.json"))
    assert mark.mark_price == Decimal("11793.63104562") and mark.next_funding_time == 1597392000000
    row = _load(payloads_dir, "rest_klines.json")[0]
    candle = parse_rest_kline(row, "BTCUSDT")
    assert (candle.open_time, candle.close_time, candle.trades) == (1499040000000, 1499644799999, 308)
    assert candle.taker_buy_quote_volume == Decimal("28.46694368") and candle.closed
