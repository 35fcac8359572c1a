"""The REST client fixtures of tests/live, for the transport's own tests."""

from tests.live.conftest import gateway, rest  # noqa: F401 - fixtures
