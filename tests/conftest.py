"""Fixtures shared across the test suite: the ../shared folder and a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.main_process import user_environment

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _need(condition: bool, reason: str) -> None:
    """Skip with a clear reason on a user's machine; fail in CI, where everything must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    _need(
        (SHARED_DIR / "data").is_dir(),
        f"needs the shared folder with real Binance data at {SHARED_DIR} (present only beside the project's CI checkout)",
    )
    return SHARED_DIR


@pytest.fixture(scope="session")
def payloads_dir(shared_dir: Path) -> Path:
    return shared_dir / "binance" / "payloads"


@pytest.fixture(scope="session")
def usdm_1m_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "usdm_1m"


def _postgres_available() -> str | None:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    problem = _postgres_available()
    _need(problem is None, f"needs PostgreSQL at {POSTGRES_ADMIN_URL} ({problem})")
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_admin_url: str):
    """A brand-new PostgreSQL database for one test, dropped afterwards (the server keeps state between runs)."""
    import sqlalchemy as sa

    name = f"trader_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path) -> str:
    """Every database test runs on both SQLite (a temp file) and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'trader.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A user's environment for running main.py: no bot settings but a database, status and logs folder of its own."""
    return user_environment(tmp_path)


@pytest.fixture
async def sim_server_factory():
    """Start Binance-wire simulator servers in-process on free ports (stepped market clock unless told), stopped
    after the test. ``await factory(candles=..., credentials=..., wall_clock=..., **ServerConfig fields)``."""
    from simulator.server import ServerConfig, SimServer
    from tests.sim_server import OTHER_CREDENTIALS, TEST_CREDENTIALS, default_candles

    started = []

    async def start(*, candles=None, wall_clock=None, two_accounts: bool = False, **config):
        config.setdefault("credentials", [TEST_CREDENTIALS, OTHER_CREDENTIALS] if two_accounts
                          else [TEST_CREDENTIALS])
        server = SimServer(ServerConfig(candles=candles if candles is not None else default_candles(), **config),
                           wall_clock=wall_clock)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def sim_server(sim_server_factory):
    """One simulator server: BTCUSDT and ETHUSDT synthetic candles, stepped clock, the key pair in tests/sim_server.py."""
    return await sim_server_factory()
