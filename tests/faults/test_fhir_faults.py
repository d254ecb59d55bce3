"""A FHIR server that is slow, down or answers garbage, while the service fetches absent prefetch from it.

Every fault is tried twice: on required keys (patient, labs) the call is refused with 412 and an
OperationOutcome naming the key; on optional keys (medication orders, conditions) it is answered 200
with the incomplete-data card saying what could not be read. Either way within the fetch deadline plus
a small margin, measured; never a hang, never a 5xx. Knobs: tests/fhirserver.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cds_service.cards.render import PROVENANCE_KEY
from cds_service.config import Settings
from tests.conftest import RULES, _check_invariants
from tests.fhirserver import FhirTestServer
from tests.live import LiveService
from tests.test_app import ORDER_SIGN, _fetching_request

DEADLINE = 0.5
# What a loaded 2-vCPU CI machine may add to the deadline. A hang would show as the slow modes'
# 30 s, far beyond it.
MARGIN = 1.0
STALL = 30.0
STALLED_CALLS = 20
REFUSED = "http://127.0.0.1:9/fhir"  # the discard port: nothing listens
PATIENT = {"resourceType": "Patient", "id": "mas-f1", "gender": "female", "birthDate": "1968-04-12"}
NO_LABS = {"resourceType": "Bundle", "type": "searchset", "entry": []}
TRUNCATED = b'{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Obs'


@dataclass(frozen=True)
class Fault:
    name: str
    apply: Callable[[FhirTestServer], None]
    # The reason the answer must give; for the 412, about the required keys.
    reason: str
    # Whether required data is lost (412) or read with a problem reported (200 with the card).
    refused: bool = True


def _knobs(**values: Any) -> Callable[[FhirTestServer], None]:
    def apply(server: FhirTestServer) -> None:
        for name, value in values.items():
            setattr(server, name, value)

    return apply


def _next_link(make: Callable[[str], str]) -> Callable[[FhirTestServer], None]:
    def apply(server: FhirTestServer) -> None:
        server.next_link = make(server.base_url)

    return apply


FAULTS = [
    Fault("slow", _knobs(delay_seconds=STALL), f"did not answer within the {DEADLINE:g} s deadline"),
    Fault("stalls-mid-body", _knobs(stall_body=True), f"did not answer within the {DEADLINE:g} s deadline"),
    Fault("refused", lambda server: None, "could not be reached"),  # the request names REFUSED
    Fault("http-500", _knobs(fail_status=500), "answered HTTP 500"),
    Fault("garbage-bytes", _knobs(raw_body=bytes(range(256)) * 4), "could not be read"),
    Fault(
        "html",
        _knobs(raw_body=b"<html><body><h1>502 Bad Gateway</h1></body></html>", raw_content_type="text/html"),
        "could not be read",
    ),
    Fault("truncated-json", _knobs(raw_body=TRUNCATED), "could not be read"),
    Fault("json-not-a-resource", _knobs(raw_body=b"[1, 2]"), "could not be read"),
    Fault("wrong-resource-type", _knobs(wrong_type="Basic"), "a Basic where"),
    Fault("next-link-unusable", _next_link(lambda base: base + "/Observation?page=\x00"), "not a usable URL"),
    Fault(
        "next-link-loops",
        _next_link(lambda base: "self"),
        "a next link pointed back to a page already read",
        refused=False,
    ),
    Fault(
        "next-link-to-another-host",
        # The same server under another name: were the link followed, the server would log it.
        _next_link(lambda base: base.replace("127.0.0.1", "localhost") + "/Observation?page=2"),
        "a next link left the FHIR server and was not followed",
        refused=False,
    ),
]


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """One service for the module, fetching with a short deadline (these tests say nothing of the
    database, so it is always a SQLite file here)."""
    database = tmp_path_factory.mktemp("fhir-faults") / "cds.db"
    settings = Settings(
        database_url=f"sqlite:///{database}",
        rules_dir=RULES,
        insecure_no_auth=True,
        fetch_deadline_seconds=DEADLINE,
        fetch_allow_private=True,  # the test FHIR server is on loopback
    )
    with (
        LiveService(settings) as live,
        httpx.Client(
            base_url=live.base_url, event_hooks={"response": [_check_invariants]}, timeout=STALL
        ) as client,
    ):
        yield client


def _call(http: httpx.Client, body: dict[str, Any]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = http.post(ORDER_SIGN, json=body)
    return response, time.monotonic() - started


def _request(server: FhirTestServer, fault: Fault, fetch: str) -> dict[str, Any]:
    """A call whose `fetch` keys ("required" or "optional") are absent, so fetched; the others sent."""
    body = _fetching_request(server)
    if fault.name == "refused":
        body["fhirServer"] = REFUSED
    if fetch == "required":
        body["prefetch"] = {"medications": None, "conditions": None}
    else:
        body["prefetch"] = {"patient": PATIENT, "labs": NO_LABS}
    return body


def _diagnostics(response: httpx.Response) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return " | ".join(issue["diagnostics"] for issue in body["issue"])


def _incomplete_data_card(response: httpx.Response) -> dict[str, Any]:
    (card,) = [
        c for c in response.json()["cards"] if c["extension"][PROVENANCE_KEY]["ruleId"] == "incomplete-data"
    ]
    assert card["indicator"] == "info"
    return card


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_required_data_lost_to_a_fault_is_412_within_the_deadline(
    http: httpx.Client, fhir_server: FhirTestServer, fault: Fault
) -> None:
    fault.apply(fhir_server)
    response, elapsed = _call(http, _request(fhir_server, fault, "required"))
    assert elapsed < DEADLINE + MARGIN, f"{fault.name}: answered after {elapsed:.2f} s"
    if fault.refused:
        assert response.status_code == 412, response.text
        text = _diagnostics(response)
        assert "prefetch.patient" in text or "prefetch.labs" in text
        assert fault.reason in text
    else:
        assert response.status_code == 200, response.text
        assert fault.reason in _incomplete_data_card(response)["detail"]
    assert "secret-token-123" not in response.text


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_optional_data_lost_to_a_fault_is_a_could_not_evaluate_card(
    http: httpx.Client, fhir_server: FhirTestServer, fault: Fault
) -> None:
    fault.apply(fhir_server)
    response, elapsed = _call(http, _request(fhir_server, fault, "optional"))
    assert elapsed < DEADLINE + MARGIN, f"{fault.name}: answered after {elapsed:.2f} s"
    assert response.status_code == 200, response.text
    card = _incomplete_data_card(response)
    assert fault.reason in card["detail"]
    assert "could not evaluate" in card["detail"]
    if fault.refused:  # the data is named by its label, not as "part of the data"
        assert "medication orders" in card["summary"] and "conditions" in card["summary"]


def test_a_wrong_resource_type_is_named_for_a_read_and_for_a_search(
    http: httpx.Client, fhir_server: FhirTestServer
) -> None:
    fhir_server.wrong_type = "Basic"
    response, _ = _call(http, _request(fhir_server, FAULTS[0], "required"))
    assert response.status_code == 412
    text = _diagnostics(response)
    assert "prefetch.patient" in text and "a Basic where Patient was asked for" in text  # the read
    assert "prefetch.labs" in text and "a Basic where Observation was asked for" in text  # the search


def test_a_looping_next_link_is_read_once_and_no_link_leaves_the_server(
    http: httpx.Client, fhir_server: FhirTestServer
) -> None:
    for fault in (f for f in FAULTS if f.name in ("next-link-loops", "next-link-to-another-host")):
        fhir_server.reset()
        fault.apply(fhir_server)
        response, _ = _call(http, _request(fhir_server, fault, "required"))
        assert response.status_code == 200
        # One page of labs read, not the same page again up to the page cap (which would count every
        # result ten times), and nothing sent to the other host name.
        assert [r.path for r in fhir_server.requests].count("/fhir/Observation") == 1, fault.name


def test_the_service_still_answers_normally_after_the_faults(
    http: httpx.Client, fhir_server: FhirTestServer
) -> None:
    # Twenty calls at once on a stalling server hold forty fetches, more than the FHIR client's pool
    # of 32 connections: were cancelled fetches to keep theirs, the next call would find none free.
    fhir_server.stall_body = True
    with ThreadPoolExecutor(max_workers=STALLED_CALLS) as pool:
        stalled = list(
            pool.map(
                lambda _: _call(http, _request(fhir_server, FAULTS[1], "required")), range(STALLED_CALLS)
            )
        )
    assert [response.status_code for response, _ in stalled] == [412] * STALLED_CALLS
    fhir_server.reset()
    response, elapsed = _call(http, _fetching_request(fhir_server))
    assert response.status_code == 200, response.text
    rules = [c["extension"][PROVENANCE_KEY]["ruleId"] for c in response.json()["cards"]]
    assert "incomplete-data" not in rules
    assert elapsed < DEADLINE + MARGIN
