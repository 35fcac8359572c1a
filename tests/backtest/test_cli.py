"""`main.py backtest` as a user runs it: real klines in, a summary, the fingerprint and the report files out."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

from backtest.data import DataError, load_bars, load_funding
from main import main

pytestmark = pytest.mark.shared_data

BTC_WEEK = "BTCUSDT_usdm_1m_2023-04-20_2023-04-26.csv"
ANCHOR_CONFIG = Path(__file__).resolve().parents[2] / "benchmarks" / "ema_long_only.toml"


def test_a_run_writes_the_summary_trades_and_reports(usdm_1m_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["backtest", "--data", str(usdm_1m_dir / BTC_WEEK), "--config", str(ANCHOR_CONFIG),
                 "--param", "fast=10", "--param", "slow=20", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((out / "report.json").read_text())
    with open(out / "trades.csv", newline="") as file:
        trades = list(csv.DictReader(file))
    assert report["bars"] == 10_080 and report["closed_trades"] == len(trades) > 100
    assert report["fingerprint"] in printed and "Backtest summary" in printed
    assert report["orders"] >= 2 * len(trades) and report["engine_seconds"] > 0
    net = sum(Decimal(t["net_pnl"]) for t in trades)
    assert Decimal(report["summary"][-1]["net_pnl"]) == net
    # The wallet is the start plus every closed trade's net PnL plus funding (nothing is open at the end, or
    # its realized part is in the wallet too).
    if not report["open_positions"]:
        assert Decimal(report["wallet_balance"]) == Decimal("10000") + net + Decimal(report["funding"])
    assert (out / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "equity.html").read_text()
    assert "<svg" in page and "<script" not in page


def test_bad_input_gets_one_clear_line(usdm_1m_dir: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "BTCUSDT_nothing.csv"
    assert main(["backtest", "--data", str(missing), "--config", str(ANCHOR_CONFIG), "--no-progress"]) == 2
    assert str(missing) in capsys.readouterr().err
    assert main(["backtest", "--data", str(usdm_1m_dir / BTC_WEEK), "--config", str(ANCHOR_CONFIG),
                 "--param", "fast=30", "--param", "slow=20", "--no-progress"]) == 2
    assert "fast (30) must be less than slow (20)" in capsys.readouterr().err
    eth = usdm_1m_dir / "ETHUSDT_usdm_1m_2023-04-20_2023-04-26.csv"
    assert main(["backtest", "--data", str(eth), "--config", str(ANCHOR_CONFIG), "--no-progress"]) == 2
    assert "ETHUSDT, which the configuration does not list" in capsys.readouterr().err


def test_the_loader_keeps_the_exact_decimals_and_names_bad_rows(usdm_1m_dir: Path, shared_dir: Path,
                                                                 tmp_path: Path) -> None:
    series = load_bars(usdm_1m_dir / BTC_WEEK)
    first = series.candle(0)
    line = (usdm_1m_dir / BTC_WEEK).read_text().splitlines()[1].split(",")
    assert (str(first.open), str(first.close), str(first.volume)) == (line[1], line[4], line[5])
    assert len(series) == 10_080 and series.close[0] == float(line[4])
    short = load_bars(shared_dir / "data" / "usdm_1m_2025" / "BTCUSDT_usdm_1m_2025-05-04_2025-06-03.csv")
    assert len(short) == 43_199 and short.close_time[0] == short.open_time[0] + 59_999
    bad = tmp_path / "BTCUSDT_bad.csv"
    rows = (usdm_1m_dir / BTC_WEEK).read_text().splitlines()[:5]
    rows[3] = rows[3].replace(rows[3].split(",")[2], "1", 1)  # high below low
    bad.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"BTCUSDT_bad.csv:4: high is below open or close"):
        load_bars(bad)
    rates = load_funding(shared_dir / "data" / "funding_mark" / "BTCUSDT_funding_rate_2023-01-01_2023-04-26.csv")
    assert rates.rate_at(1672560000000) == Decimal("0.0001")


def test_funding_comes_from_the_funding_file(usdm_1m_dir: Path, tmp_path: Path) -> None:
    from backtest.engine import Backtest
    from backtest.report import funding_payments
    from config.symbols import load_symbols

    series = load_bars(usdm_1m_dir / BTC_WEEK)
    times = range(int(series.open_time[0]) // 28_800_000 * 28_800_000, int(series.close_time[-1]) + 1, 28_800_000)
    tenfold = tmp_path / "BTCUSDT_funding_rate.csv"
    tenfold.write_text("funding_time_ms,funding_rate\n" + "".join(f"{t + 7},0.001\n" for t in list(times)[:-3]))
    config = load_symbols(ANCHOR_CONFIG)
    symbol = config.symbols[0]
    strategy = symbol.strategies[0].model_copy(update={"params": {"fast": 30, "slow": 120, "long_only": True}})
    config = config.model_copy(update={"symbols": [symbol.model_copy(update={"strategies": [strategy]})]})
    default = Backtest(config, [series]).run()
    from_file = Backtest(config, [series], funding={"BTCUSDT": load_funding(tenfold)}).run()
    paid, paid_tenfold = funding_payments(default), funding_payments(from_file)
    assert len(paid) == len(paid_tenfold) > 3  # the same trades, so the same funding times with a position
    last_rate_time = list(times)[-4]
    for normal, higher in zip(paid, paid_tenfold, strict=True):
        assert normal.time == higher.time
        funding_time = higher.time // 28_800_000 * 28_800_000  # settled on the bar opening at it
        expected = normal.amount * 10 if funding_time <= last_rate_time else normal.amount  # past the file: default
        assert abs(higher.amount - expected) <= Decimal("0.00000010")
    assert from_file.funding_missing > 0 and default.funding_missing == 0


def test_two_symbols_of_six_column_files_in_a_window(shared_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_dir / "data" / "usdm_1m_2025"
    code = main(["backtest", "--data", str(folder / "BTCUSDT_usdm_1m_2025-05-04_2025-06-03.csv"),
                 str(folder / "ETHUSDT_usdm_1m_2025-05-04_2025-06-15.csv"), "--strategy", "donchian_breakout",
                 "--from", "2025-05-10", "--to", "2025-05-12", "--position-mode", "hedge", "--out", str(tmp_path),
                 "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["bars"] == 2 * 2 * 1440
    assert [row["symbol"] for row in report["summary"]] == ["BTCUSDT", "ETHUSDT", "all"]
    assert {row["strategy"] for row in report["summary"]} == {"donchian_breakout", "all"}
    assert all(row["trades"] > 0 for row in report["summary"])
