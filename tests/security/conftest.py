"""Fixtures for tests/security. The suite at large runs with authentication off; these tests turn it on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.security.keys import PUBLIC_URL, JwksServer, default_trust


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


@pytest.fixture
def secured(service_with: Callable[..., httpx.Client], tmp_path: Path) -> httpx.Client:
    """The live service with authentication on: trusting ISSUER, called at https://cds.example.org.
    Refused calls are counted and written every 0.1 s (wait_for_refusals)."""
    return service_with(
        insecure_no_auth=False,
        trust_file=default_trust(tmp_path),
        public_url=PUBLIC_URL,
        refusal_write_seconds=0.1,
    )
