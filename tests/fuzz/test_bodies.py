"""Hypothesis-mutated hook requests, posted to all three services through the app in process.

Whatever the body, the answer is 200 with a valid CDS Hooks response, or a 400 / 412 with an
OperationOutcome: never a 5xx (404 cannot happen: only real services are called). A body the protocol
layer accepts must be answered, 200, however odd the clinical content inside it. Each example picks
its service; strategies in tests/fuzz/strategies.py; a longer run: docs/fuzzing.md.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import given
from hypothesis import strategies as st

from cds_service.app import create_app
from cds_service.cards.render import PROVENANCE_KEY
from cds_service.config import Settings
from tests.conftest import ROOT
from tests.fuzz import FUZZ
from tests.fuzz.strategies import (
    DATE_KEYS,
    SERVICES,
    for_service,
    mutated_requests,
    seeds,
    slots,
    valid_envelope_requests,
)
from tests.fuzz.watch import in_process
from tests.invariants import response_problems

JSON = {"content-type": "application/json"}
SERVICE_IDS = st.sampled_from(sorted(SERVICES))
Post = Callable[[str, bytes], httpx.Response]


@pytest.fixture
def post(settings: Settings) -> Iterator[Post]:
    """post(service_id, body): the app with its lifespan, called in process (tests/fuzz/watch.py). Every
    call, answered or refused, must log nothing at ERROR and no traceback: a failure only logged while the
    answer is still 200 (a chart that could not be made, an audit row that could not be written) is a
    failure."""
    app = create_app(dataclasses.replace(settings, fetch_deadline_seconds=0.2))
    with in_process(app) as (call, watch):

        def send(service_id: str, body: bytes) -> httpx.Response:
            watch.clear()
            response = call("POST", f"/cds-services/{service_id}", content=body, headers=JSON)
            assert watch.problems() == [], (response.status_code, watch.problems())
            return response

        yield send


def assert_answered(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text[:2000]
    assert response_problems(response.json()) == []


def assert_answered_or_refused(response: httpx.Response) -> None:
    """200 with a valid CDS Hooks response, or 400 / 412 with an OperationOutcome that says why."""
    assert response.status_code in (200, 400, 412), (response.status_code, response.text[:2000])
    if response.status_code == 200:
        assert response_problems(response.json()) == []
    else:
        outcome = OperationOutcome.model_validate(response.json())
        assert outcome.issue and all(issue.diagnostics for issue in outcome.issue), response.text


def order_500mg_day(service_id: str = "anakinra-order-sign") -> dict[str, Any]:
    """The request behind the infusion-build card with its one-click updates (a realistic base)."""
    path = ROOT / "fhir_fixtures" / "requests" / "order-sign-500mg-day.json"
    return for_service(orjson.loads(path.read_bytes()), service_id)


def test_every_seed_is_answered(post: Post) -> None:
    """The realistic requests the mutations start from are answered, by every service: the fuzzing
    starts from inside the service, not from its front door."""
    for service_id in sorted(SERVICES):
        for seed in seeds():
            assert_answered(post(service_id, orjson.dumps(for_service(orjson.loads(seed), service_id))))


@FUZZ
@given(service_id=SERVICE_IDS, data=st.data())
def test_mutated_requests_are_answered_or_refused(post: Post, service_id: str, data: st.DataObject) -> None:
    body = data.draw(mutated_requests(service_id), label="body")
    assert_answered_or_refused(post(service_id, body))


@FUZZ
@given(service_id=SERVICE_IDS, data=st.data())
def test_odd_clinical_content_in_a_valid_request_is_answered(
    post: Post, service_id: str, data: st.DataObject
) -> None:
    body = data.draw(valid_envelope_requests(service_id), label="body")
    assert_answered(post(service_id, body))


BROKEN_DRAFTS: list[Callable[[dict[str, Any]], None]] = [
    # Found by the fuzzer: an element FHIR does not define, inside the drug's coding.
    lambda d: d["medicationCodeableConcept"]["coding"][0].update(unit="ug/L"),
    lambda d: d.update(contained="not a list"),
    lambda d: d.update(contained=["not a resource"]),
]


def test_a_draft_that_is_not_valid_fhir_still_gets_its_cards(post: Post) -> None:
    """The one-click update rewrites the EHR's draft; when the draft is not FHIR an update can be made
    from, the card still comes, without that update (before: a 500)."""
    for index, break_draft in enumerate(BROKEN_DRAFTS):
        body = order_500mg_day()
        break_draft(body["context"]["draftOrders"]["entry"][0]["resource"])
        response = post("anakinra-order-sign", orjson.dumps(body))
        assert response.status_code == 200, (index, response.text)
        cards = {c["extension"][PROVENANCE_KEY]["ruleId"]: c for c in response.json()["cards"]}
        assert "500 mg/day cannot be built" in cards["infusion-build"]["summary"], index
        actions = [a for s in cards["infusion-build"].get("suggestions", ()) for a in s["actions"]]
        assert all(a["type"] != "update" for a in actions), (index, actions)


def _bag_reference(draft: dict[str, Any], ingredient: Any) -> None:
    draft.pop("medicationCodeableConcept")
    draft["medicationReference"] = {"reference": "#bag"}
    draft["contained"] = [
        {"resourceType": "Medication", "id": "bag", "code": {"text": "anakinra"}, "ingredient": ingredient}
    ]


WRONG_JSON_TYPES: list[Callable[[dict[str, Any]], None]] = [
    # Found by the fuzzer: a truthy non-array where FHIR has an array.
    lambda d: d.update(dosageInstruction=True),
    lambda d: d.update(dosageInstruction=7),
    lambda d: d["dosageInstruction"][0].update(doseAndRate=1),
    lambda d: d["dosageInstruction"][0].update(route={"coding": 5}),
    lambda d: d["dosageInstruction"][0].update(timing={"repeat": {"boundsPeriod": 1}, "code": {"coding": 2}}),
    lambda d: d.update(medicationCodeableConcept={"coding": 1, "text": "anakinra"}),
    lambda d: _bag_reference(d, 3),
    lambda d: _bag_reference(d, [{"itemCodeableConcept": {"coding": True}, "strength": 1}]),
]


def test_draft_elements_of_the_wrong_json_type_are_read_leniently(post: Post) -> None:
    """Draft orders are read as raw JSON (only their top level is checked); an array that is a number or
    a boolean is no data, not a crash (before: a 500 for each of these)."""
    failures = []
    for service_id in ("anakinra-order-sign", "anakinra-order-select"):
        for index, break_draft in enumerate(WRONG_JSON_TYPES):
            body = order_500mg_day(service_id)
            break_draft(body["context"]["draftOrders"]["entry"][0]["resource"])
            response = post(service_id, orjson.dumps(body))
            if response.status_code != 200 or response_problems(response.json()):
                failures.append((service_id, index, response.status_code))
    assert failures == []


def test_lab_values_the_rules_engine_cannot_parse_as_written_are_answered(post: Post) -> None:
    """Found by the fuzzer: durable-rules' JSON parser refuses '1e-09' (an exponent without a fraction)
    and 'Infinity'; a neutrophil count of 1e-9 10*9/L made every service answer 503."""
    for value in (1e-9, 1e-5, -1e-7, 1e20, 1e308, 5e-324):
        for service_id in sorted(SERVICES):
            body = order_500mg_day(service_id)
            for entry in body["prefetch"]["labs"]["entry"]:
                entry["resource"]["valueQuantity"]["value"] = value
            response = post(service_id, orjson.dumps(body))
            assert response.status_code == 200, (value, service_id, response.text)
            assert response_problems(response.json()) == []


def test_a_draft_nested_deeper_than_the_service_reads_is_refused(post: Post) -> None:
    """Found by the fuzzer: a 300-level nested extension in a draft order decoded fine and then blew the
    stack where the one-click update copies the draft (a 500). Context deeper than the service reads is
    refused up front, like JSON too deep to decode; a deep but plausible one is answered."""
    for levels, status in ((300, 400), (40, 200)):
        body = order_500mg_day()
        nested: Any = {"url": "http://example.org/leaf", "valueString": "deep"}
        for _ in range(levels):
            nested = {"url": "http://example.org/level", "extension": [nested]}
        body["context"]["draftOrders"]["entry"][0]["resource"]["extension"] = [nested]
        response = post("anakinra-order-sign", json.dumps(body).encode())  # orjson stops at 255 levels
        assert response.status_code == status, (levels, response.text[:500])
        if status == 400:
            assert "context is nested more than" in response.json()["issue"][0]["diagnostics"]


def test_a_bound_below_an_exact_result_is_a_peak_range_not_a_crash(post: Post) -> None:
    """Found by the fuzzer: ferritin 5200 ug/L and a newer "<6000" put the peak in [5200, 6000); the
    note naming the censored result looked only for ">" results and raised StopIteration (a 500)."""
    for service_id in sorted(SERVICES):
        body = order_500mg_day(service_id)
        ferritins = [
            e["resource"]
            for e in body["prefetch"]["labs"]["entry"]
            if e["resource"]["code"]["coding"][0]["code"] == "2276-4"
        ]
        ferritins[-1]["valueQuantity"].update(value=6000, comparator="<")  # the newest
        response = post(service_id, orjson.dumps(body))
        assert response.status_code == 200, (service_id, response.text)
        assert response_problems(response.json()) == []


def test_a_daily_dose_too_large_to_build_is_answered(post: Post) -> None:
    """Found by the fuzzer: 1e308 mg/day overflowed to infinity when split into bags (a 500)."""
    for value in (1e308, -1e308, 1.7976931348623157e308):
        body = order_500mg_day()
        dosage = body["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]
        dosage["doseAndRate"][0]["rateQuantity"]["value"] = value
        response = post("anakinra-order-sign", orjson.dumps(body))
        assert response.status_code == 200, (value, response.text)
        assert response_problems(response.json()) == []


def test_an_annotation_alone_as_a_unit_is_answered(post: Post) -> None:
    """Found by the fuzzer: "{score}" is UCUM (an annotated unity), but ucumvert parses it to a token,
    not a quantity, and converting it raised AttributeError (a 500) for a lab and for a draft's rate."""
    for unit in ("{score}", "{cells}", "{a}.{b}"):
        for service_id in sorted(SERVICES):
            body = order_500mg_day(service_id)
            body["prefetch"]["labs"]["entry"][0]["resource"]["valueQuantity"]["code"] = unit
            if "draftOrders" in body["context"]:
                dosage = body["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]
                dosage["doseAndRate"][0]["rateQuantity"]["code"] = unit
            response = post(service_id, orjson.dumps(body))
            assert response.status_code == 200, (unit, service_id, response.text)
            assert response_problems(response.json()) == []


def test_a_bag_strength_that_underflows_to_zero_is_answered(post: Post) -> None:
    """Found by the fuzzer: 5e-324 mg in 250 mL is a concentration of 0.0 (underflow) and the bag volume
    was then divided by it (a 500)."""
    body = order_500mg_day()
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft.pop("medicationCodeableConcept")
    draft["medicationReference"] = {"reference": "#bag"}
    strength = {
        "numerator": {"value": 5e-324, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
        "denominator": {"value": 250, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"},
    }
    ingredient = {"itemCodeableConcept": {"text": "anakinra"}, "isActive": True, "strength": strength}
    draft["contained"] = [{"resourceType": "Medication", "id": "bag", "ingredient": [ingredient]}]
    draft["dosageInstruction"][0]["doseAndRate"] = [
        {"doseQuantity": {"value": 800, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}
    ]
    response = post("anakinra-order-sign", orjson.dumps(body))
    assert response.status_code == 200, response.text
    assert response_problems(response.json()) == []


def test_sentinel_dates_at_the_ends_of_the_calendar_are_answered(post: Post) -> None:
    """Found by the fuzzer: an active anakinra order authored "0001-01-01" (the null date of some EHRs)
    overflowed the calendar when the ferritin lookback was subtracted from it (a 500). Every date in
    the request at either end of the calendar is now no date."""
    seed = next(s for s in seeds() if b'"inf-on-1"' in s)  # on anakinra, with a ferritin series
    failures = []
    for moment in ("0001-01-01", "0001-01-01T00:00:00+14:00", "9999-12-31", "9999-12-31T23:59:59-12:00"):
        for service_id in sorted(SERVICES):
            body = for_service(orjson.loads(seed), service_id)
            for container, key in slots(body):
                if isinstance(container, dict) and key in DATE_KEYS:
                    container[key] = moment
            response = post(service_id, orjson.dumps(body))
            if response.status_code != 200 or response_problems(response.json()):
                failures.append((moment, service_id, response.status_code))
    assert failures == []
