"""JSON logging: line format, structured fields, handlers and rotation, idempotent set-up, and secret redaction."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from utils.domain import Side
from utils.log import (
    LOG_FILE_NAME,
    CompactConsoleHandler,
    JsonFormatter,
    RedactingFilter,
    forget_secrets,
    parse_level,
    redact,
    register_secret,
    report_suppressed,
    reset_logging,
    setup_logging,
)

TIME_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SECRET = "s3cr3t-VALUE-0123456789abcdef"

logger = logging.getLogger("tests.log")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    reset_logging()
    root.setLevel(level)
    forget_secrets()


def flush() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def file_lines(log_dir: Path) -> list[dict]:
    flush()
    return [json.loads(line) for line in (log_dir / LOG_FILE_NAME).read_text(encoding="utf-8").splitlines()]


def test_one_json_object_per_line_with_the_standard_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", tmp_path)
    logger.info("order %s sent", "x-1")
    (line,) = file_lines(tmp_path)
    assert set(line) == {"time", "level", "logger", "message"}
    assert TIME_PATTERN.match(line["time"])
    assert (line["level"], line["logger"], line["message"]) == ("INFO", "tests.log", "order x-1 sent")
    console = capsys.readouterr().err.splitlines()
    assert len(console) == 1 and json.loads(console[0]) == line


def test_structured_fields_from_extra(tmp_path: Path) -> None:
    setup_logging("INFO", tmp_path, console=False)
    logger.info(
        "fill",
        extra={"symbol": "BTCUSDT", "price": Decimal("65000.10"), "side": Side.BUY, "quantity": 3, "tags": ("a", "b"),
               "detail": {"maker": True, "fee": Decimal("0.01")}, "path": Path("x/y")},
    )  # fmt: skip
    (line,) = file_lines(tmp_path)
    assert line["symbol"] == "BTCUSDT"
    assert line["price"] == "65000.10"  # Decimals stay exact, as strings
    assert line["side"] == "BUY"
    assert line["quantity"] == 3
    assert line["tags"] == ["a", "b"]
    assert line["detail"] == {"maker": True, "fee": "0.01"}
    assert line["path"] == "x/y"


def test_exception_text_is_included(tmp_path: Path) -> None:
    setup_logging("INFO", tmp_path, console=False)
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("division failed", extra={"symbol": "ETHUSDT"})
    (line,) = file_lines(tmp_path)
    assert line["level"] == "ERROR" and line["symbol"] == "ETHUSDT"
    assert line["exception"].startswith("Traceback") and "ZeroDivisionError: division by zero" in line["exception"]


def test_non_ascii_and_newlines_stay_on_one_line(tmp_path: Path) -> None:
    setup_logging("INFO", tmp_path, console=False)
    logger.info("line one\nline two — ünïcode")
    (line,) = file_lines(tmp_path)
    assert line["message"] == "line one\nline two — ünïcode"


def test_level_filters_records(tmp_path: Path) -> None:
    setup_logging("warning", tmp_path, console=False)
    logger.info("hidden")
    logger.warning("shown")
    assert [line["message"] for line in file_lines(tmp_path)] == ["shown"]


def test_setup_twice_installs_one_set_of_handlers(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    setup_logging("INFO", tmp_path)
    setup_logging("INFO", tmp_path)
    assert len(root.handlers) == before + 2
    logger.info("once")
    assert [line["message"] for line in file_lines(tmp_path)] == ["once"]


def test_setup_again_can_move_the_log_file(tmp_path: Path) -> None:
    setup_logging("INFO", tmp_path / "first", console=False)
    logger.info("to first")
    setup_logging("INFO", tmp_path / "second", console=False)
    logger.info("to second")
    assert [line["message"] for line in file_lines(tmp_path / "first")] == ["to first"]
    assert [line["message"] for line in file_lines(tmp_path / "second")] == ["to second"]


def test_the_file_handler_rotates_by_size_in_log_dir(tmp_path: Path) -> None:
    log_dir = tmp_path / "nested" / "logs"
    log_file = setup_logging("INFO", log_dir, console=False, max_bytes=2000, backup_count=2)
    assert log_file == log_dir / "trader.log"
    for index in range(200):
        logger.info("message number %d with some padding to fill the file quickly", index)
    flush()
    names = sorted(path.name for path in log_dir.iterdir())
    assert names == ["trader.log", "trader.log.1", "trader.log.2"]
    for path in log_dir.iterdir():
        assert path.stat().st_size <= 2000
        for text in path.read_text(encoding="utf-8").splitlines():
            json.loads(text)


def test_console_only_and_file_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup_logging("INFO", None) is None
    logger.info("console only")
    assert "console only" in capsys.readouterr().err
    setup_logging("INFO", tmp_path, console=False)
    logger.info("file only")
    assert capsys.readouterr().err == ""
    assert [line["message"] for line in file_lines(tmp_path)] == ["file only"]


def test_text_console_format(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", None, console_format="text")
    logger.info("started", extra={"mode": "sim", "reason": "two words", "long": "x" * 300})
    text = capsys.readouterr().err.strip()
    match = re.match(r'^\d\d:\d\d:\d\d INFO    tests.log: started mode=sim reason="two words" long=(x+)\.\.\.$', text)
    assert match is not None, text
    assert len(match.group(1)) == 97  # values are cut to 100 characters on the console


def test_text_console_shows_a_few_of_each_repeated_message_and_counts_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("INFO", tmp_path, console_format="text", console_burst=2)
    for number in range(5):
        logger.warning("order refused", extra={"number": number})
    logger.info("something else")
    report_suppressed()
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "WARNING tests.log: order refused number=0",
        "WARNING tests.log: order refused number=1",
        "INFO    tests.log: something else",
        f"WARNING tests.log: ... 3 more 'order refused' not shown here; every one is in {tmp_path / LOG_FILE_NAME}",
    ]
    flush()
    assert [line["number"] for line in file_lines(tmp_path) if line["message"] == "order refused"] == [0, 1, 2, 3, 4]
    report_suppressed()
    assert capsys.readouterr().err == ""  # each count is written once


def test_text_console_opens_a_new_window_after_window_sec(capsys: pytest.CaptureFixture[str]) -> None:
    now = [100.0]
    handler = CompactConsoleHandler(burst=1, window_sec=60, log_file=None, clock=lambda: now[0])
    handler.setFormatter(logging.Formatter("%(message)s"))
    record = logging.LogRecord("tests.log", logging.INFO, __file__, 1, "tick", None, None)
    for at in (100.0, 130.0, 159.0, 160.0, 161.0):
        now[0] = at
        handler.handle(record)
    handler.close()
    lines = [line.split(" ", 1)[-1] for line in capsys.readouterr().err.splitlines()]
    assert lines == [
        "tick",  # 100: a window opens
        "INFO    tests.log: ... 2 more 'tick' not shown here",  # 130 and 159 were held back; 160 opens a new window
        "tick",
        "INFO    tests.log: ... 1 more 'tick' not shown here",  # 161, written on close
    ]


def test_an_unknown_level_is_refused() -> None:
    assert parse_level("debug") == logging.DEBUG
    with pytest.raises(ValueError, match="log level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        setup_logging("LOUD", None)


# ---- redaction ------------------------------------------------------------------------------------------------


def test_a_registered_secret_is_redacted_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    register_secret(SECRET)
    setup_logging("DEBUG", tmp_path)
    logger.info("in the message " + SECRET)
    logger.info("in the arguments %s and %r", SECRET, {"secret": SECRET})
    logger.info("in extra", extra={"secret": SECRET, "deep": {"list": [SECRET, 1]}, SECRET: "as a key"})
    try:
        raise ValueError(f"bad signature for {SECRET}")
    except ValueError:
        logger.exception("in the exception")
    logger.info("in the stack", stack_info=True)
    lines = file_lines(tmp_path)
    console = capsys.readouterr().err
    assert SECRET not in console
    assert SECRET not in (tmp_path / LOG_FILE_NAME).read_text(encoding="utf-8")
    assert lines[0]["message"] == "in the message ****"
    assert lines[1]["message"] == "in the arguments **** and {'secret': '****'}"
    assert lines[2]["secret"] == "****" and lines[2]["deep"] == {"list": ["****", 1]}
    assert "ValueError: bad signature for ****" in lines[3]["exception"]
    assert "stack" in lines[4]


def test_secrets_registered_after_setup_are_redacted_too(tmp_path: Path) -> None:
    setup_logging("INFO", tmp_path, console=False)
    register_secret(SECRET)
    logger.info("late %s", SECRET)
    assert file_lines(tmp_path)[0]["message"] == "late ****"


def test_secret_objects_and_json_escaped_secrets(tmp_path: Path) -> None:
    from pydantic import SecretStr

    quoted = 'with"quote\\and-backslash'
    register_secret(SecretStr(SECRET))
    register_secret(quoted)
    setup_logging("INFO", tmp_path, console=False)
    logger.info("%s %s", SECRET, quoted)
    flush()
    text = (tmp_path / LOG_FILE_NAME).read_text(encoding="utf-8")
    assert SECRET not in text and "quote" not in text


def test_short_and_empty_values_are_not_registered() -> None:
    register_secret("")
    register_secret(None)
    register_secret("abc")
    assert redact("abc and more") == "abc and more"


def test_redaction_happens_even_with_another_formatter(tmp_path: Path) -> None:
    """The filter changes the record itself, so a handler added later sees the redacted record too."""
    register_secret(SECRET)
    setup_logging("INFO", tmp_path, console=False)
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    collector = Collect()
    logging.getLogger().addHandler(collector)
    try:
        logger.info("value %s", SECRET)
    finally:
        logging.getLogger().removeHandler(collector)
    assert seen == ["value ****"]


def test_a_bad_format_string_is_kept_readable_by_the_filter() -> None:
    register_secret(SECRET)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "two placeholders %s %s", (SECRET,), None)
    assert RedactingFilter().filter(record)
    assert record.args is None
    assert "two placeholders" in record.getMessage() and SECRET not in record.getMessage()


def test_formatter_works_without_the_filter() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.symbol = "BTCUSDT"
    line = json.loads(JsonFormatter().format(record))
    assert (line["message"], line["symbol"]) == ("hello world", "BTCUSDT")
