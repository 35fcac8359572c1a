"""A planted canary secret must never reach the console, the log file, reprs, summaries or error messages."""

from __future__ import annotations

import json
import logging
import os
import traceback

import pytest

from config import ConfigError, load_config
from tests.config.conftest import SHIPPED_SYMBOLS_FILE
from utils.log import setup_logging

CANARY_SECRET = "CANARY-SECRET-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e"
CANARY_KEY = "CANARYKEY0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"

logger = logging.getLogger("tests.canary")


@pytest.fixture
def canary_config(monkeypatch: pytest.MonkeyPatch, write_file):
    monkeypatch.setenv("MODE", "testnet")
    apikey_file = write_file(".apikey", f"BINANCE_API_KEY={CANARY_KEY}\nBINANCE_API_SECRET={CANARY_SECRET}\n", 0o600)
    config = load_config(env_file=None, symbols_file=SHIPPED_SYMBOLS_FILE, apikey_file=apikey_file)
    assert config.api_keys is not None
    assert config.api_keys.api_secret.get_secret_value() == CANARY_SECRET  # the real value is there for signing
    return config


def assert_no_canary(text: str) -> None:
    assert CANARY_SECRET not in text
    assert CANARY_KEY not in text
    assert CANARY_SECRET[-12:] not in text  # not even a recognisable tail of the secret


def test_the_canary_never_reaches_console_or_log_file(canary_config, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    log_dir = tmp_path / "logs"
    setup_logging("DEBUG", log_dir)
    config = canary_config
    keys = config.api_keys

    logger.info("settings %s", config.settings)
    logger.info("settings repr %r", config.settings)
    logger.info("config %r", config)
    logger.info("keys %s / %r", keys, keys)
    logger.info("masked summary", extra={"summary": config.masked_summary()})
    logger.info("dump %s", config.settings.model_dump())
    # Mistakes someone could make: the raw secret in the message, in the arguments, in extra fields.
    logger.warning("raw secret " + keys.api_secret.get_secret_value())
    logger.warning("raw secret as argument %s", keys.api_secret.get_secret_value())
    logger.warning(
        "raw secret in extra",
        extra={"secret": keys.api_secret.get_secret_value(), "nested": {"headers": {"X-MBX-APIKEY": keys.api_key.get_secret_value()}}},
    )
    try:
        raise RuntimeError(f"signing failed with secret={keys.api_secret.get_secret_value()}")
    except RuntimeError:
        logger.exception("request failed")
        logger.error("request failed again", exc_info=True, stack_info=True)

    for handler in logging.getLogger().handlers:
        handler.flush()
    captured = capsys.readouterr()
    log_text = (log_dir / "trader.log").read_text(encoding="utf-8")

    assert_no_canary(captured.err)
    assert_no_canary(captured.out)
    assert_no_canary(log_text)
    lines = [json.loads(line) for line in log_text.splitlines()]
    assert len(lines) == 11  # everything was logged, just redacted
    assert "****" in lines[6]["message"] and "****" in lines[8]["secret"]
    assert lines[8]["nested"]["headers"]["X-MBX-APIKEY"] == "****"
    assert "RuntimeError: signing failed with secret=****" in lines[9]["exception"]
    assert "stack" in lines[10]


def test_the_canary_is_absent_from_reprs_summaries_and_dumps(canary_config) -> None:
    config = canary_config
    texts = [
        repr(config),
        str(config),
        repr(config.settings),
        str(config.settings),
        repr(config.api_keys),
        json.dumps(config.masked_summary()),
        json.dumps(config.settings.masked()),
        config.settings.model_dump_json(),
        str(config.settings.model_dump()),
    ]
    for text in texts:
        assert_no_canary(text)
    summary = config.masked_summary()
    assert summary["api_keys"]["BINANCE_API_SECRET"] == "****"
    assert summary["api_keys"]["BINANCE_API_KEY"] == "****" + CANARY_KEY[-4:]


def test_the_canary_is_absent_from_config_errors_and_tracebacks(monkeypatch: pytest.MonkeyPatch, write_file) -> None:
    monkeypatch.setenv("MODE", "testnet")
    monkeypatch.setenv("RECV_WINDOW_MS", "-1")
    # A world-readable file, a secret on a malformed line, and a secret in the environment.
    monkeypatch.setenv("BINANCE_API_SECRET", CANARY_SECRET)
    apikey_file = write_file(".apikey", f"{CANARY_SECRET}\nBINANCE_API_KEY={CANARY_KEY}\n", 0o644)
    env_file = write_file(".env", f"BINANCE_API_SECRET={CANARY_SECRET}\nBINANCE_API_KEYS={CANARY_KEY}\n", 0o644)
    with pytest.raises(ConfigError) as caught:
        load_config(env_file=env_file, symbols_file=SHIPPED_SYMBOLS_FILE, apikey_file=apikey_file)
    assert_no_canary(str(caught.value))
    assert_no_canary("".join(traceback.format_exception(caught.value)))
    assert "BINANCE_API_KEYS: unknown setting (did you mean BINANCE_API_KEY?)" in str(caught.value)

    apikey_file.chmod(0o600)
    env_file.write_text("BINANCE_API_KEY=", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(env_file=env_file, symbols_file=SHIPPED_SYMBOLS_FILE, apikey_file=apikey_file)
    assert_no_canary(str(caught.value))
    assert "line 1: expected NAME=value" in str(caught.value)


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_a_bad_secret_type_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even pydantic's own fallback message for a secret field does not show the input."""
    from pydantic import ValidationError

    from config.problems import problems_from_validation_error
    from config.settings import SECRET_FIELDS, Settings

    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, binance_api_secret=12345678901234)  # not a string
    problems = problems_from_validation_error(caught.value, source="test", root=Settings, upper_first=True, hidden_fields=SECRET_FIELDS)
    assert problems and all("12345678901234" not in str(problem) for problem in problems)
    assert "12345678901234" not in str(caught.value)  # hide_input_in_errors
