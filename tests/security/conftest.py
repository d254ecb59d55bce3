"""Fixtures for tests/security. The suite at large runs with authentication off; these tests turn it on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.keys import JwksServer


@pytest.fixture(scope="session")
def _running_jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def jwks_server(_running_jwks_server: JwksServer) -> JwksServer:
    """A local JWKS server serving nothing yet, with an empty request log (one server per session:
    stopping uvicorn takes a noticeable moment)."""
    _running_jwks_server.documents.clear()
    _running_jwks_server.requests.clear()
    return _running_jwks_server
