"""pytest plugin providing `fhir_server`: one FHIR test server per session, reset before each test.

Register with ``pytest_plugins = ["tests.fhir_fixture_plugin"]`` in conftest.py.
"""

from collections.abc import Iterator

import pytest

from tests.fhirserver import FhirTestServer


@pytest.fixture(scope="session")
def fhir_server_session() -> Iterator[FhirTestServer]:
    # Starting uvicorn costs a thread and a port; one server per session keeps the suite fast.
    with FhirTestServer() as server:
        yield server


@pytest.fixture
def fhir_server(fhir_server_session: FhirTestServer) -> Iterator[FhirTestServer]:
    """The shared server with default behaviour and an empty request log."""
    fhir_server_session.reset()
    yield fhir_server_session
    # Also reset afterwards so a knob left set cannot leak into tests using the session fixture directly.
    fhir_server_session.reset()
