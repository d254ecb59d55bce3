"""The suite's two markers, applied here by directory and by fixture rather than test by test.

- `browser`: tests/browser, a real Chromium driving the pages.
- `integration`: what starts a server (in a thread or as a process), spawns processes, kills them,
  fuzzes, races processes on a database, or hot-reloads a whole ruleset; anything slow. Tests that do
  so without one of the fixtures below carry the mark themselves (`pytestmark` for a whole module).

`make test-fast` (`pytest -m "not integration and not browser"`) is the inner loop; `make test` runs
everything, and is what CI runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
BROWSER_DIRS = frozenset({"browser"})
# faults: servers as processes, outages, kill -9; fuzz: thousands of generated requests.
INTEGRATION_DIRS = frozenset({"faults", "fuzz"})
# Fixtures that start the service or another server: over real HTTP, with its lifespan.
INTEGRATION_FIXTURES = frozenset(
    {
        "service",  # tests/conftest.py: the service in a thread (also behind `http`)
        "service_with",
        "pages_service",
        "served",  # tests/test_client.py: `cds-service serve` as a process
        "two_workers",  # tests/security/test_workers.py
        "fhir_server_session",  # a FHIR server in a thread (also behind `fhir_server`)
        "jwks_server",
        "_running_jwks_server",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "integration: starts servers or processes, kills them, fuzzes, races processes; slow "
        '(deselect with -m "not integration")',
    )
    config.addinivalue_line("markers", "browser: drives a real Chromium (tests/browser)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            folder = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue  # not under tests/
        if folder in BROWSER_DIRS:
            item.add_marker(pytest.mark.browser)
        if folder in INTEGRATION_DIRS or INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
