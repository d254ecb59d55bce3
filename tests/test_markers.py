"""The inner loop leaves out what is slow, and `make test` (what CI runs) leaves out nothing."""

from __future__ import annotations

import inspect
import re

import pytest

from tests.conftest import ROOT

# What starts a process or a server in a test's own body.
STARTS_SOMETHING = re.compile(
    r"\bsubprocess\.(run|Popen|call|check_output)\(|\bstart_server\(|\bServe\(|\bLiveService\("
)


def _recipe(target: str) -> str:
    text = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, flags=re.MULTILINE)
    assert match, f"no `{target}` target in the Makefile"
    return match.group(1)


def test_make_test_runs_every_test_and_test_fast_leaves_out_integration_and_browser() -> None:
    assert "pytest $(PYTEST_ARGS)" in _recipe("test")
    assert not re.search(r"pytest .*-m ['\"]", _recipe("test")), "make test must select every test"
    assert '-m "not integration and not browser"' in _recipe("test-fast")
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_test_that_starts_a_process_or_server_itself_is_integration(
    request: pytest.FixtureRequest,
) -> None:
    """Over the tests of this run (the whole suite in `make test` and `make test-fast`): one that starts
    a process or a server in its own body, without a fixture tests/markers.py knows, must be marked."""
    unmarked = []
    for item in request.session.items:
        function = getattr(item, "function", None)
        if function is None or item.get_closest_marker("integration"):
            continue
        if STARTS_SOMETHING.search(inspect.getsource(function)):
            unmarked.append(item.nodeid)
    assert unmarked == [], "mark these @pytest.mark.integration (tests/markers.py): " + ", ".join(unmarked)


def test_the_markers_are_registered(pytestconfig: pytest.Config) -> None:
    registered = " ".join(pytestconfig.getini("markers"))
    assert "integration:" in registered and "browser:" in registered
