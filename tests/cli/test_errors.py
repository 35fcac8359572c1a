"""What a user gets when something around the bot is wrong: one clear line, exit code 2, and nothing run or lost.

Each case runs ``main.py`` as a user would: a database that is read-only, locked, of an unsupported kind, in a
folder that cannot be made, or on a PostgreSQL server that does not answer; LOG_DIR or STATUS_DIR not writable;
data files that are folders, empty, for another symbol, or that hold bad, duplicated, out-of-order rows and gaps.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from database.access import LOCK_WAIT_SEC
from marketdata.synthetic import synthetic_candles
from tests.main_process import run_main

START_MS = 1_681_948_800_000  # 2023-04-20 00:00 UTC


def refused(result, message: str) -> None:
    assert result.returncode == 2, (result.stdout[-1000:], result.stderr[-2000:])
    assert message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "Run summary" not in result.stdout


def test_migrate_applies_the_migrations_and_says_so(env) -> None:
    first = run_main(["migrate"], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"database {env['DB_URL']} is at the newest schema (0003_signal_outcomes)"
    again = run_main(["migrate"], env)
    assert again.returncode == 0 and again.stdout == first.stdout


def test_a_read_only_database_is_refused_before_the_run(env) -> None:
    assert run_main(["migrate"], env).returncode == 0
    path = env["DB_URL"].removeprefix("sqlite:///")
    env["DB_URL"] = f"sqlite:///file:{path}?mode=ro&uri=true"  # SQLite opens it read-only, as for a chmod 444 file
    refused(run_main(["run", "--days", "0.1"], env), f"the database {env['DB_URL']} is read-only (attempt to write a "
                                                       "readonly database): give this user write permission")


def test_a_database_locked_by_another_process_fails_fast(env) -> None:
    assert run_main(["migrate"], env).returncode == 0
    other = sqlite3.connect(env["DB_URL"].removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        started = time.monotonic()
        result = run_main(["run", "--days", "0.1"], env)
        elapsed = time.monotonic() - started
    finally:
        other.rollback()
        other.close()
    refused(result, f"the database {env['DB_URL']} is locked by another process (waited {LOCK_WAIT_SEC:g} s): stop "
                    "the other run or program using it")
    assert elapsed < LOCK_WAIT_SEC + 8  # the engine's own 10 s busy timeout was not waited for


def test_a_database_folder_that_cannot_be_created_is_named(env, tmp_path) -> None:
    (tmp_path / "in-the-way").write_text("a file where the folder should be")
    env["DB_URL"] = f"sqlite:///{tmp_path / 'in-the-way' / 'db' / 'trader.db'}"
    refused(run_main(["run", "--days", "0.1"], env),
            f"cannot create the folder {tmp_path / 'in-the-way' / 'db'} for the database {env['DB_URL']} "
            "(NotADirectoryError: Not a directory): create it by hand, or point DB_URL at a folder")


@pytest.mark.parametrize("url", ["mysql://bot:hunter2-long-password@db/trader", "mssql+pyodbc://bot@db/trader"])
def test_an_unsupported_database_is_a_configuration_error(env, url) -> None:
    env["DB_URL"] = url
    result = run_main(["run"], env)
    refused(result, f"DB_URL: unsupported database {url.split('://')[0]}://")
    assert "hunter2" not in result.stderr


def test_an_unreachable_postgresql_server_is_named_without_its_password(env) -> None:
    env["DB_URL"] = "postgresql+psycopg://trader:hunter2-long-password@127.0.0.1:1/trader"
    for args in (["run", "--days", "0.1"], ["orders"], ["migrate"]):
        result = run_main(args, env)
        refused(result, "cannot use the PostgreSQL database postgresql+psycopg://trader:****@127.0.0.1:1/trader: "
                        'connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused')
        assert "hunter2" not in result.stdout + result.stderr


@pytest.mark.parametrize("setting", ["LOG_DIR", "STATUS_DIR"])
def test_a_logs_or_status_folder_that_cannot_be_written_is_refused_at_the_start(env, tmp_path, setting) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    env[setting] = str(tmp_path / "a-file")
    result = run_main(["run", "--days", "0.1"], env)
    refused(result, f"{setting}={tmp_path / 'a-file'} is not a folder this user can write to (FileExistsError: "
                    f"File exists): make it writable, or set {setting} to another folder.")
    assert not Path(env["DB_URL"].removeprefix("sqlite:///")).exists()  # refused before anything was stored


def test_data_that_is_a_folder_is_refused(env, tmp_path) -> None:
    refused(run_main(["run", "--data", str(tmp_path)], env),
            f"--data {tmp_path} is a folder, not a kline file: name the files in it, e.g. --data {tmp_path}/*.csv")


def write_csv(path: Path, count: int) -> list[str]:
    from utils.klines_csv import write_klines_csv

    write_klines_csv(path, synthetic_candles("BTCUSDT", start_ms=START_MS, count=count))
    return path.read_text().splitlines()


def test_bad_duplicated_and_out_of_order_rows_are_skipped_and_gaps_reported(env, tmp_path) -> None:
    path = tmp_path / "BTCUSDT-1m-2023-04-20.csv"
    lines = write_csv(path, 400)  # line 1 is the header, line n + 2 the candle of minute n
    fields = lines[300].split(",")
    high_below_low = ",".join([fields[0], fields[1], fields[3], fields[2], *fields[4:]])  # high and low swapped
    negative_volume = ",".join([*lines[301].split(",")[:5], "-1", *lines[301].split(",")[6:]])
    bad = {
        150: lines[149],  # the minute before again: a duplicate (and so minute 149 is missing: a gap)
        250: lines[200],  # a minute long past: out of order
        300: high_below_low,
        301: negative_volume,
        350: "1681969740000,not-a-price,1,1,1,1,1681969799999,1,1,1,1",
    }
    assert fields[2] != fields[3]
    for index, row in bad.items():
        lines[index] = row
    del lines[380:383]  # three minutes missing
    path.write_text("\n".join(lines) + "\n")
    foreign = tmp_path / "DOGEUSDT-1m-2023-04-20.csv"
    foreign.write_text(path.read_text())
    empty = tmp_path / "ETHUSDT-1m-2023-04-20.csv"
    empty.write_text("")
    result = run_main(["run", "--data", str(path), str(foreign), str(empty)], env)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout.splitlines()
    assert "NOTE: DOGEUSDT-1m-2023-04-20.csv is for DOGEUSDT, which is not a configured symbol (BTCUSDT, ETHUSDT, " \
           "LTCUSDT): not replayed" in out
    assert "NOTE: ETHUSDT-1m-2023-04-20.csv holds no candles (it is empty, or has nothing but a header or bad " \
           "rows): not replayed" in out
    assert "NOTE: no data for ETHUSDT, LTCUSDT: not traded in this run." in out
    # lines are counted from 1 with the header first: list index i is file line i + 1
    assert ("NOTE: BTCUSDT-1m-2023-04-20.csv: 5 bad rows skipped (lines 151, 251, 301, 302, 351); 5 gaps in time, "
            "8 candles missing (the first after 2023-04-20 02:28:00 UTC, before line 152); each is in the log.") in out
    # 400 rows - 3 deleted - 5 skipped = 392 candles; 104 of them warm the strategies up
    assert "  minutes         288 (288 candles)" in out, result.stdout
    logged = [json.loads(line) for line in (tmp_path / "logs" / "trader.log").read_text().splitlines()]
    skipped = [(record["path"], record["line_number"]) for record in logged
               if record["message"] == "skipped a bad kline row"]
    assert skipped == [(str(path), line) for line in (151, 251, 301, 302, 351)]
    assert [record["problem"].split(" (")[0] for record in logged if record["message"] == "skipped a bad kline row"
            and record["line_number"] in (301, 302)] == [f"high {fields[3]} is below low {fields[2]}",
                                                         "volume is negative"]


def test_data_with_no_usable_file_is_refused(env, tmp_path) -> None:
    empty = tmp_path / "BTCUSDT-1m-2023-04-20.csv"
    empty.write_text("open_time,open,high,low,close,volume\n")
    foreign = tmp_path / "DOGEUSDT-1m-2023-04-20.csv"
    write_csv(foreign, 10)
    result = run_main(["run", "--data", str(empty), str(foreign)], env)
    refused(result, "cannot start the sim run: none of the data files")
    assert "DOGEUSDT-1m-2023-04-20.csv is for DOGEUSDT, which is not a configured symbol" in result.stderr
    assert "BTCUSDT-1m-2023-04-20.csv holds no candles" in result.stderr
