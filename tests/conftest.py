from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import create_engine

from cds_service.config import Settings
from cds_service.store.schema import metadata
from tests.invariants import response_problems
from tests.live import LiveService

pytest_plugins = ["tests.fhir_fixture_plugin", "tests.markers"]

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
# What the real CDS Hooks sandbox sent on the wire (method, path, headers, body), kept verbatim.
SANDBOX = ROOT / "tests" / "fixtures" / "real-clients" / "cds-hooks-sandbox"
# The trust file `make serve` uses, with the sandbox's published public key beside it.
SANDBOX_TRUST = ROOT / "docs" / "trust" / "cds-hooks-sandbox.yaml"


def sandbox_capture(name: str) -> dict[str, Any]:
    capture: dict[str, Any] = orjson.loads((SANDBOX / name).read_bytes())
    return capture


# A PostgreSQL database the suite may empty at will (.ci/run starts one). When set, every test that
# uses `database_url` runs twice, ids [sqlite] and [postgresql]; unset, ids are as they always were.
POSTGRES_URL = os.environ.get("CDS_TEST_DATABASE_URL") or None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: about SQLite itself (its file, WAL, busy timeout): not run on PostgreSQL"
    )
    config.addinivalue_line(
        "markers", "postgresql_only: about PostgreSQL itself: needs CDS_TEST_DATABASE_URL (.ci/run sets it)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("postgresql_only"):
        reason = "PostgreSQL only: set CDS_TEST_DATABASE_URL (.ci/run does)"
        marks = () if POSTGRES_URL else (pytest.mark.skip(reason=reason),)
        metafunc.parametrize("database_backend", [pytest.param("postgresql", marks=marks)], indirect=True)
    elif POSTGRES_URL and not metafunc.definition.get_closest_marker("sqlite_only"):
        metafunc.parametrize("database_backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def database_backend(request: pytest.FixtureRequest) -> str:
    """sqlite or postgresql: set by pytest_generate_tests; SQLite when there is no choice."""
    backend: str = getattr(request, "param", "sqlite")
    return backend


@pytest.fixture
def database_url(database_backend: str, tmp_path: Path) -> str:
    """A fresh SQLite file per test; or the CDS_TEST_DATABASE_URL database, emptied before the test."""
    if database_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'cds.db'}"
    assert POSTGRES_URL is not None
    engine = create_engine(POSTGRES_URL)
    metadata.drop_all(engine)
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The suite at large runs without authentication; tests/security covers it, with keys it makes. The
    # test FHIR server listens on loopback, which is refused unless allowed (tests/data/test_upstream.py).
    return Settings(
        database_url=database_url, rules_dir=RULES, insecure_no_auth=True, fetch_allow_private=True
    )


def _check_invariants(response: httpx.Response) -> None:
    """Every successful service call in the suite must be a valid CDS Hooks response."""
    request = response.request
    path = request.url.path
    if request.method == "POST" and path.startswith("/cds-services/") and not path.endswith("/feedback"):
        response.read()
        if response.status_code == 200:
            problems = response_problems(response.json())
            assert not problems, f"invalid CDS Hooks response: {problems}"
        else:
            body = response.json()
            assert body.get("resourceType") == "OperationOutcome", f"error without OperationOutcome: {body}"


@pytest.fixture
def service(settings: Settings) -> Iterator[LiveService]:
    with LiveService(settings) as live:
        yield live


@pytest.fixture
def http(service: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=service.base_url, event_hooks={"response": [_check_invariants]}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def service_with(settings: Settings) -> Iterator[Any]:
    """Start the service with some settings changed: service_with(fetch_deadline_seconds=0.3)."""
    started: list[LiveService] = []

    def start(**changes: Any) -> httpx.Client:
        live = LiveService(dataclasses.replace(settings, **changes))
        live.start()
        started.append(live)
        return httpx.Client(base_url=live.base_url, event_hooks={"response": [_check_invariants]}, timeout=10)

    yield start
    for live in started:
        live.stop()
