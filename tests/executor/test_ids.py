"""Client order ids: deterministic, within Binance's rule, retries never confused with their original."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from executor.ids import (
    CLIENT_ORDER_ID_PATTERN,
    algo_client_id,
    client_order_id,
    is_our_client_order_id,
    retry_client_order_id,
)

names = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)
symbols = st.from_regex(r"[A-Z]{2,20}USDT", fullmatch=True)
purposes = st.sampled_from(["entry", "exit", "reverse"])
sides = st.sampled_from(["BUY", "SELL"])


@given(names, symbols, st.integers(0, 4_102_444_800_000), purposes, sides)
def test_our_ids_follow_binance_and_are_recognised_as_ours(strategy, symbol, time, purpose, side) -> None:
    cid = client_order_id(strategy, symbol, time, purpose, side)
    assert CLIENT_ORDER_ID_PATTERN.match(cid) and cid == client_order_id(strategy, symbol, time, purpose, side)
    assert is_our_client_order_id(cid)
    for protective in (algo_client_id(cid, "stop_loss"), algo_client_id(cid, "take_profit")):
        assert CLIENT_ORDER_ID_PATTERN.match(protective) and is_our_client_order_id(protective)


@given(names, symbols, st.integers(0, 4_102_444_800_000), purposes, sides, st.integers(1, 99))
def test_a_retry_id_is_new_valid_and_unique(strategy, symbol, time, purpose, side, attempt) -> None:
    base = client_order_id(strategy, symbol, time, purpose, side)
    for original in (base, algo_client_id(base, "stop_loss"), algo_client_id(base, "take_profit")):
        retry = retry_client_order_id(original, attempt)
        assert CLIENT_ORDER_ID_PATTERN.match(retry) and retry != original
        assert retry != retry_client_order_id(original, attempt + 1)
        assert is_our_client_order_id(retry)
    sl, tp = algo_client_id(base, "stop_loss"), algo_client_id(base, "take_profit")
    assert retry_client_order_id(sl, attempt) != retry_client_order_id(tp, attempt)


def test_ids_of_others_are_not_ours() -> None:
    for foreign in ("web_AbC123", "autoclose-1", "adl_autoclose", "x-Cb7ytekJ1234", "ios_xyz", "manual-stop", ""):
        assert not is_our_client_order_id(foreign), foreign
