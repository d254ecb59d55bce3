"""Results inside the calculations' windows, every chart link opened, the log watched.

Each example is a request whose results and orders sit within hours of the service's "now" (strategies
in tests/fuzz/windows.py), posted to one of the three services. It must be answered 200 with a valid
CDS Hooks response; every chart link on its cards must open, the page and the image, without the
image's last-resort "could not be drawn"; and nothing may be logged at ERROR or with a traceback while
that happens, even though every answer was 200. Bounded like the other fuzzers (docs/fuzzing.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cds_service.app import create_app
from cds_service.config import Settings
from tests.fuzz import FUZZ_CHARTS
from tests.fuzz.strategies import SERVICES
from tests.fuzz.watch import Call, LogWatch, chart_paths, in_process
from tests.fuzz.windows import NOW, windowed_requests
from tests.invariants import response_problems

JSON = {"content-type": "application/json"}


@pytest.fixture
def service(settings: Settings) -> Iterator[tuple[Call, LogWatch]]:
    app = create_app(dataclasses.replace(settings, fetch_deadline_seconds=0.2), clock=lambda: NOW)
    with in_process(app) as running:
        yield running


@FUZZ_CHARTS
@given(service_id=st.sampled_from(sorted(SERVICES)), data=st.data())
def test_results_inside_the_windows_are_answered_and_every_chart_opens(
    service: tuple[Call, LogWatch], service_id: str, data: st.DataObject
) -> None:
    call, watch = service
    body = data.draw(windowed_requests(service_id), label="body")
    watch.clear()
    response = call("POST", f"/cds-services/{service_id}", content=body, headers=JSON)
    assert response.status_code == 200, response.text[:2000]
    answer = response.json()
    assert response_problems(answer) == []
    for path in chart_paths(answer):
        page = call("GET", path)
        assert page.status_code == 200, (path, page.text[:1000])
        image = call("GET", path + "/chart.svg")
        assert image.status_code == 200, (path, image.text[:1000])
        assert "could not be drawn" not in image.text
    assert watch.problems() == []
