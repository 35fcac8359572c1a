"""Fixtures for configuration tests: a clean environment, a private working folder, and file writers."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.settings import setting_names
from utils.log import forget_secrets, reset_logging

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_SYMBOLS_FILE = REPO_ROOT / "config" / "symbols.toml"

MINIMAL_SYMBOLS_TOML = """
[[symbols]]
symbol = "BTCUSDT"
leverage = 5
margin_type = "ISOLATED"

[[symbols.strategies]]
name = "ema_crossover"
params = { fast = 12, slow = 26 }
sizing = { mode = "fixed_notional", value = 200 }
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No setting leaks in from the machine's environment, and relative paths resolve inside tmp_path."""
    names = set(setting_names())
    for key in list(os.environ):
        if key.upper() in names:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    level = root.level
    yield
    reset_logging()
    root.setLevel(level)
    forget_secrets()


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    """Write ``text`` to ``tmp_path/name`` with permission ``mode`` and return the path."""

    def write(name: str, text: str, mode: int = 0o600) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)
        return path

    return write


@pytest.fixture
def symbols_file(write_file: Callable[..., Path]) -> Path:
    """A small valid symbols.toml (one symbol, one strategy)."""
    return write_file("symbols.toml", MINIMAL_SYMBOLS_TOML, 0o644)
