"""``main.py download`` as a user runs it: a separate process against the simulator server, stopped by Ctrl-C
and by kill -9 mid-way and run again; and the one-line errors for bad symbols, days and folders."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import main
from cli.download import download_base_url, symbol_list, utc_day_start
from config.settings import Settings
from tests.main_process import RunningMain, run_main
from tests.marketdata.week import KLINE_NAME, RealWeek, serve_week

ARGS = ["download", "--symbols", "btcusdt,ETHUSDT", "--from", "2023-04-20", "--to", "2023-04-27"]


async def _rows_at_least(path: Path, rows: int, timeout: float = 60) -> None:
    for _ in range(int(timeout / 0.01)):
        if path.exists() and path.read_bytes().count(b"\n") > rows:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"{path} did not reach {rows} rows")


@pytest.mark.shared_data
async def test_ctrl_c_and_kill_9_mid_way_then_the_same_command_finishes_the_same_files(
        sim_server_factory, real_week: RealWeek, env, tmp_path) -> None:
    btc = real_week.candles["BTCUSDT"]
    holed = {"BTCUSDT": btc[:5000] + btc[5090:], "ETHUSDT": real_week.candles["ETHUSDT"]}
    server = await serve_week(sim_server_factory, real_week, candles=holed)
    server.faults.delay(100, count=None, path="/fapi/v1/klines")  # slow enough to stop it mid-way
    env["REST_BASE_URL"] = server.rest_url
    out = tmp_path / "data"
    args = [*ARGS, "--out", str(out)]
    btc_file, eth_file = out / KLINE_NAME.format("BTCUSDT"), out / KLINE_NAME.format("ETHUSDT")

    first = RunningMain(args, env, tmp_path / "stderr-1.txt")
    await _rows_at_least(btc_file, 1500)
    first.process.send_signal(signal.SIGINT)
    code, _, stderr = await asyncio.to_thread(first.finish, 30)
    assert code == 130, stderr
    assert "download interrupted: the files hold every complete row fetched so far; run the same command again" \
        in stderr
    assert 1500 <= btc_file.read_bytes().count(b"\n") - 1 < 10_080 - 90

    second = RunningMain(args, env, tmp_path / "stderr-2.txt")
    await _rows_at_least(eth_file, 1500)
    second.process.kill()
    await asyncio.to_thread(second.finish, 30)

    server.faults.clear()
    third = await asyncio.to_thread(run_main, args, env)
    assert third.returncode == 0, third.stderr
    lines = real_week.lines("BTCUSDT")
    assert btc_file.read_text().splitlines() == lines[:5001] + lines[5091:]
    assert eth_file.read_bytes() == real_week.files["ETHUSDT"].read_bytes()
    assert f"BTCUSDT      klines   {btc_file}  9,990 rows (0 new), 90 minutes missing (see below)" in third.stdout
    assert f"ETHUSDT      klines   {eth_file}  10,080 rows (" in third.stdout
    assert "NOTE BTCUSDT klines: the exchange has no kline from 2023-04-23 11:20 to 2023-04-23 12:49 UTC " \
           "(90 minutes)" in third.stdout
    assert "download stopped" not in third.stderr


async def test_a_symbol_the_exchange_does_not_list_is_one_line_and_exit_2(sim_server, env, tmp_path) -> None:
    env["REST_BASE_URL"] = sim_server.rest_url
    result = await asyncio.to_thread(run_main, ["download", "--symbols", "BTCUSDT,BTCUSDX", "--from", "2023-04-20",
                                                "--to", "2023-04-21", "--out", str(tmp_path / "d")], env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "download stopped: --symbols: BTCUSDX is not listed by the exchange (exchangeInfo); check the spelling, "
        "e.g. BTCUSDT")
    assert not any((tmp_path / "d").iterdir())


@pytest.mark.parametrize(("arguments", "message"), [
    (["--from", "2024-02-01", "--to", "2024-01-01"],
     "--to 2024-01-01 is not after --from 2024-02-01: --to is the day after the last one to download "
     "(e.g. --from 2024-01-01 --to 2024-02-01 for January)"),
    (["--from", "2024-01-01", "--to", "2024-01-01"], "--to 2024-01-01 is not after --from 2024-01-01"),
    (["--from", "2999-01-01", "--to", "2999-02-01"], "--from 2999-01-01 is in the future"),
])
def test_a_range_that_is_not_a_range_is_one_line_and_exit_2(arguments, message, tmp_path, monkeypatch,
                                                            capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main.main(["download", "--symbols", "BTCUSDT", *arguments]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and error.startswith(message)
    assert not (tmp_path / "data").exists()


def test_an_out_folder_that_cannot_be_written_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main.main(["download", "--symbols", "BTCUSDT", "--from", "2024-01-01", "--to", "2024-01-02",
                      "--out", str(blocker / "data")]) == 2
    error = capsys.readouterr().err
    assert error == (f"--out={blocker / 'data'} is not a folder this user can write to (NotADirectoryError: "
                     "Not a directory): make it writable, or set --out to another folder.\n")


@pytest.mark.parametrize(("arguments", "message"), [
    (["--symbols", "BTCUSDT", "--from", "2024-1-1", "--to", "2024-02-01"],
     "argument --from: must be a UTC day such as 2024-01-01 (got '2024-1-1')"),
    (["--symbols", "BTCUSDT", "--from", "2024-01-01", "--to", "2024-02-30"],
     "argument --to: must be a UTC day such as 2024-01-01 (got '2024-02-30')"),
    (["--symbols", "BTC-USDT", "--from", "2024-01-01", "--to", "2024-02-01"],
     "argument --symbols: must be symbols separated by commas, such as BTCUSDT,ETHUSDT (got 'BTC-USDT' in "
     "'BTC-USDT')"),
    (["--symbols", "BTCUSDT,", "--from", "2024-01-01", "--to", "2024-02-01"],
     "argument --symbols: must be symbols separated by commas, such as BTCUSDT,ETHUSDT (got '' in 'BTCUSDT,')"),
    (["--from", "2024-01-01", "--to", "2024-02-01"], "the following arguments are required: --symbols"),
])
def test_bad_arguments_name_the_option(arguments, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main.main(["download", *arguments])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)


@pytest.mark.parametrize(("environment", "url"), [
    ({}, "https://fapi.binance.com"),  # sim mode: public market data from mainnet, no order is ever sent
    ({"MODE": "testnet", "BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"}, "https://demo-fapi.binance.com"),
    ({"REST_BASE_URL": "http://127.0.0.1:8765/"}, "http://127.0.0.1:8765"),
])
def test_the_server_comes_from_the_settings(environment, url, monkeypatch) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert download_base_url(Settings(_env_file=None)) == url


def test_a_server_that_does_not_answer_is_one_line_and_exit_2(tmp_path, unused_tcp_port, monkeypatch,
                                                              capsys) -> None:
    monkeypatch.setenv("REST_BASE_URL", f"http://127.0.0.1:{unused_tcp_port}")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    assert main.main(["--env-file", str(empty), "download", "--symbols", "BTCUSDT", "--from", "2024-01-01",
                      "--to", "2024-01-02", "--out", str(tmp_path / "d")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"download stopped: cannot reach http://127.0.0.1:{unused_tcp_port}: GET /fapi/v1/time: "
                            "could not connect (")
    assert error.endswith("; check the network or REST_BASE_URL\n") and error.count("\n") == 1


@given(day=st.dates(min_value=date(2000, 1, 1), max_value=date(9999, 12, 31)))
def test_any_utc_day_is_read_as_its_midnight(day) -> None:
    assert utc_day_start(day.isoformat()) == int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


@given(text=st.text(max_size=30))
def test_any_other_text_for_a_day_or_symbols_is_refused_with_a_message(text) -> None:
    for parse in (utc_day_start, symbol_list):
        try:
            value = parse(text)
        except argparse.ArgumentTypeError as error:
            assert repr(text) in str(error) or repr(text.strip()) in str(error)
            continue
        if parse is utc_day_start:
            assert re.fullmatch(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*", text) and value % 86_400_000 == 0
        else:
            assert value and all(re.fullmatch(r"[A-Z0-9]{2,20}", symbol) for symbol in value)
