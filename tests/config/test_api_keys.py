"""API keys: the .apikey format and permission rule, environment precedence, and when keys are required."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from config import ConfigError, Mode, load_config
from tests.config.conftest import SHIPPED_SYMBOLS_FILE
from utils.secrets import (
    ApiKeyFileError,
    ApiKeys,
    format_apikey_text,
    mask_secret,
    parse_apikey_text,
    read_apikey_file,
)

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
APIKEY_TEXT = f"# testnet account\n\nBINANCE_API_KEY={KEY}\nBINANCE_API_SECRET = {SECRET}\n"

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")


def values(parsed: dict[str, SecretStr]) -> dict[str, str]:
    return {name: secret.get_secret_value() for name, secret in parsed.items()}


# ---- the format ----------------------------------------------------------------------------------------------


def test_parse_two_lines_with_comments_blank_lines_and_spaces() -> None:
    assert values(parse_apikey_text(APIKEY_TEXT)) == {"BINANCE_API_KEY": KEY, "BINANCE_API_SECRET": SECRET}


def test_parse_accepts_quotes_crlf_and_a_byte_order_mark() -> None:
    text = f'\ufeffBINANCE_API_KEY="{KEY}"\r\nBINANCE_API_SECRET=\'{SECRET}\'\r\n'
    assert values(parse_apikey_text(text)) == {"BINANCE_API_KEY": KEY, "BINANCE_API_SECRET": SECRET}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{SECRET}\n", "line 1: expected NAME=value"),
        (f"BINANCE_API_SECRT={SECRET}\n", "line 1: unknown name BINANCE_API_SECRT (did you mean BINANCE_API_SECRET?)"),
        (f"{SECRET[:20]}={SECRET[20:]}\n", "line 1: unknown name (not shown: it does not look like a setting name)"),
        ("BINANCE_API_KEY=\n", "line 1: BINANCE_API_KEY has an empty value"),
        (f"BINANCE_API_KEY={KEY}\nBINANCE_API_KEY={KEY}\n", "line 2: BINANCE_API_KEY is given twice"),
        (f"BINANCE_API_KEY={KEY[:10]} {KEY[10:]}\n", "line 1: BINANCE_API_KEY value contains whitespace"),
    ],
)
def test_parse_errors_name_the_line_but_never_the_value(text: str, expected: str) -> None:
    with pytest.raises(ValueError, match="line") as caught:
        parse_apikey_text(text)
    assert expected in str(caught.value)
    assert SECRET not in str(caught.value) and SECRET[:20] not in str(caught.value)
    assert KEY[10:] not in str(caught.value)


def test_parse_reports_every_bad_line() -> None:
    with pytest.raises(ValueError) as caught:
        parse_apikey_text("oops\nBINANCE_API_KEY=\nNOPE_NAME=1\n")
    assert str(caught.value).count("line ") == 3


secret_text = st.text(alphabet=string.ascii_letters + string.digits + "+/=_-.", min_size=1, max_size=100)
noise_line = st.one_of(
    st.just(""),
    st.just("   "),
    st.text(alphabet=string.printable.replace("\n", "").replace("\r", "").replace("\x0b", "").replace("\x0c", ""), max_size=30).map(
        lambda text: "#" + text
    ),
)


@given(api_key=secret_text, api_secret=secret_text)
def test_format_then_parse_gives_the_same_keys(api_key: str, api_secret: str) -> None:
    parsed = values(parse_apikey_text(format_apikey_text(api_key, api_secret)))
    assert parsed == {"BINANCE_API_KEY": api_key, "BINANCE_API_SECRET": api_secret}


@given(
    api_key=secret_text,
    api_secret=secret_text,
    noise=st.lists(noise_line, max_size=6),
    order=st.permutations([0, 1]),
    padding=st.sampled_from(["", " ", "\t", "  "]),
)
def test_comments_blank_lines_order_and_padding_do_not_matter(
    api_key: str, api_secret: str, noise: list[str], order: list[int], padding: str
) -> None:
    lines = [f"{padding}BINANCE_API_KEY{padding}={padding}{api_key}{padding}", f"BINANCE_API_SECRET={api_secret}"]
    lines = [lines[index] for index in order]
    text = "\n".join(noise[:3] + lines[:1] + noise[3:] + lines[1:])
    assert values(parse_apikey_text(text)) == {"BINANCE_API_KEY": api_key, "BINANCE_API_SECRET": api_secret}


@given(
    secret=st.text(alphabet=string.ascii_letters + string.digits, min_size=24, max_size=64),
    template=st.sampled_from(
        ["{s}", "KEY {s}", "x{s}", "BINANCE_API_KEY{s}", "{s}={s}", "x={s}", "NAME_X={s}", "BINANCE_API_KEY={a} {b}",
         "BINANCE_API_SECRET: {s}", "'{s}"]
    ),
)  # fmt: skip
def test_a_malformed_line_never_echoes_the_secret(secret: str, template: str) -> None:
    line = template.format(s=secret, a=secret[:12], b=secret[12:])
    with pytest.raises(ValueError) as caught:
        parse_apikey_text(f"BINANCE_API_KEY=abc\n{line}\n")
    assert secret not in str(caught.value)
    assert secret[:12] not in str(caught.value) and secret[12:] not in str(caught.value)


# ---- the file and its permissions ---------------------------------------------------------------------------


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o007])
def test_a_file_others_can_access_is_refused_with_the_fix(write_file, mode: int) -> None:
    path = write_file(".apikey", APIKEY_TEXT, mode)
    with pytest.raises(ApiKeyFileError) as caught:
        read_apikey_file(path)
    assert f"chmod 600 {path}" in str(caught.value)
    assert f"mode {mode:04o}" in str(caught.value)
    assert SECRET not in str(caught.value)


@posix_only
@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_file_is_read(write_file, mode: int) -> None:
    path = write_file(".apikey", APIKEY_TEXT, mode)
    assert values(read_apikey_file(path)) == {"BINANCE_API_KEY": KEY, "BINANCE_API_SECRET": SECRET}


def test_a_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(ApiKeyFileError, match="no such file; create it with BINANCE_API_KEY=... and BINANCE_API_SECRET=..."):
        read_apikey_file(tmp_path / ".apikey")


def test_masking_and_repr_never_show_a_secret() -> None:
    keys = ApiKeys(SecretStr(KEY), SecretStr(SECRET), "environment")
    assert mask_secret(keys.api_key, show_last=4) == "****" + KEY[-4:]
    assert mask_secret(keys.api_secret) == "****"
    assert mask_secret("short", show_last=4) == "****"  # too short to show any of it
    assert mask_secret(None) is None
    for text in (repr(keys), str(keys)):
        assert SECRET not in text and KEY not in text


# ---- load_config -----------------------------------------------------------------------------------------------


def load(**kwargs):
    kwargs.setdefault("env_file", None)
    kwargs.setdefault("symbols_file", SHIPPED_SYMBOLS_FILE)
    return load_config(**kwargs)


@posix_only
def test_testnet_reads_a_private_apikey_file(monkeypatch: pytest.MonkeyPatch, write_file) -> None:
    monkeypatch.setenv("MODE", "testnet")
    path = write_file(".apikey", APIKEY_TEXT, 0o600)
    config = load(apikey_file=path)
    assert config.api_keys is not None
    assert config.api_keys.api_key.get_secret_value() == KEY
    assert config.api_keys.api_secret.get_secret_value() == SECRET
    assert config.api_keys.source == str(path)


@posix_only
def test_the_default_apikey_file_is_dot_apikey_in_the_working_folder(monkeypatch: pytest.MonkeyPatch, write_file) -> None:
    monkeypatch.setenv("MODE", "mainnet")
    write_file(".apikey", APIKEY_TEXT, 0o600)
    config = load()
    assert config.api_keys is not None and config.api_keys.source == ".apikey"


@posix_only
def test_an_apikey_file_readable_by_others_is_refused_with_the_chmod_hint(monkeypatch: pytest.MonkeyPatch, write_file) -> None:
    monkeypatch.setenv("MODE", "testnet")
    path = write_file(".apikey", APIKEY_TEXT, 0o644)
    with pytest.raises(ConfigError) as caught:
        load(apikey_file=path)
    text = str(caught.value)
    assert f"chmod 600 {path}" in text and "mode 0644" in text
    assert SECRET not in text and KEY not in text


def test_environment_keys_are_used_without_any_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE", "mainnet")
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)
    config = load(apikey_file=Path("does-not-exist"))
    assert config.api_keys is not None and config.api_keys.source == "environment"
    assert config.api_keys.api_secret.get_secret_value() == SECRET


@posix_only
def test_an_environment_key_overrides_the_file(monkeypatch: pytest.MonkeyPatch, write_file) -> None:
    monkeypatch.setenv("MODE", "testnet")
    monkeypatch.setenv("BINANCE_API_KEY", "K" * 64)
    path = write_file(".apikey", APIKEY_TEXT, 0o600)
    config = load(apikey_file=path)
    assert config.api_keys is not None
    assert config.api_keys.api_key.get_secret_value() == "K" * 64
    assert config.api_keys.api_secret.get_secret_value() == SECRET  # from the file
    assert config.api_keys.source == f"environment and {path}"


def test_testnet_without_keys_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODE", "testnet")
    with pytest.raises(ConfigError) as caught:
        load(apikey_file=tmp_path / ".apikey")
    text = str(caught.value)
    assert "BINANCE_API_KEY, BINANCE_API_SECRET: required when MODE=testnet" in text
    assert f"create {tmp_path / '.apikey'}" in text and "chmod 600" in text


@posix_only
def test_a_file_missing_the_secret_names_it(monkeypatch: pytest.MonkeyPatch, write_file) -> None:
    monkeypatch.setenv("MODE", "mainnet")
    path = write_file(".apikey", f"BINANCE_API_KEY={KEY}\n", 0o600)
    with pytest.raises(ConfigError) as caught:
        load(apikey_file=path)
    assert f"BINANCE_API_SECRET: required when MODE=mainnet; set it in the environment or in {path}" in str(caught.value)


@posix_only
def test_sim_needs_no_keys_and_does_not_read_the_file(write_file) -> None:
    path = write_file(".apikey", APIKEY_TEXT, 0o644)  # would be refused in testnet
    config = load(apikey_file=path)
    assert config.settings.mode is Mode.SIM
    assert config.api_keys is None


@posix_only
def test_a_dotenv_holding_keys_must_be_private(write_file) -> None:
    env_file = write_file(".env", f"BINANCE_API_KEY={KEY}\nBINANCE_API_SECRET={SECRET}\n", 0o644)
    with pytest.raises(ConfigError) as caught:
        load(env_file=env_file)
    assert f"chmod 600 {env_file}" in str(caught.value)
    env_file.chmod(0o600)
    config = load(env_file=env_file)
    assert config.api_keys is not None and config.api_keys.source == "environment"


@posix_only
def test_a_malformed_apikey_file_is_reported_with_other_problems(monkeypatch: pytest.MonkeyPatch, write_file) -> None:
    monkeypatch.setenv("MODE", "testnet")
    monkeypatch.setenv("RECV_WINDOW_MS", "0")
    path = write_file(".apikey", f"{SECRET}\nBINANCE_API_KEY={KEY}\n", 0o600)
    with pytest.raises(ConfigError) as caught:
        load(apikey_file=path)
    text = str(caught.value)
    assert "RECV_WINDOW_MS: must be between 1 and 60000 (got 0)" in text
    assert "line 1: expected NAME=value" in text
    assert SECRET not in text


@posix_only
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.integers(min_value=0o400, max_value=0o777))
def test_permission_rule_is_exactly_no_group_or_other_bits(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "prop.apikey"
    path.write_text(APIKEY_TEXT, encoding="utf-8")
    path.chmod(mode)
    try:
        read_apikey_file(path)
        accepted = True
    except ApiKeyFileError:
        accepted = False
    assert accepted == (mode & 0o077 == 0)
