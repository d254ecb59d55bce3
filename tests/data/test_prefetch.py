"""Prefetch semantics decided before any fetch: what is out of reach is refused without network work."""

from __future__ import annotations

import orjson
import pytest

from cds_service.data.prefetch import FetchSettings, gather_data
from cds_service.data.upstream import FetchPolicy, Upstream
from cds_service.protocol.discovery import ServiceDefinition
from cds_service.protocol.outcome import ProblemError
from cds_service.protocol.request import parse_hook_request
from tests.fhirserver import FhirTestServer
from tests.test_app import _auth, sandbox_order_sign

SETTINGS = FetchSettings(deadline_seconds=1.0, max_pages=3, without_token=False)
# The test FHIR server listens on loopback.
LOOPBACK = FetchPolicy(allow_private=True)


def _service(**prefetch: dict[str, object]) -> ServiceDefinition:
    return ServiceDefinition.model_validate(
        {"id": "s", "hook": "order-sign", "title": "t", "description": "d", "prefetch": prefetch}
    )


def _request(server: FhirTestServer, **changes: object) -> bytes:
    body = sandbox_order_sign()
    body.update(fhirServer=server.base_url, fhirAuthorization=_auth(), prefetch={})
    body.update(changes)
    body["context"]["patientId"] = "mas-f1"
    return orjson.dumps(body)


async def test_required_data_out_of_reach_is_refused_before_any_fetch(fhir_server: FhirTestServer) -> None:
    service = _service(
        encounter={"query": "Encounter/{{context.encounterId}}"},  # the call has no encounterId
        labs={"query": "Observation?patient={{context.patientId}}", "required": False},
    )
    request = parse_hook_request(_request(fhir_server), "order-sign")
    async with Upstream(LOOPBACK) as client:
        with pytest.raises(ProblemError) as refused:
            await gather_data(service, request, client, SETTINGS)
    assert refused.value.status == 412
    assert "a context value its query needs is missing" in str(refused.value)
    assert fhir_server.requests == []


async def test_optional_data_out_of_reach_is_named_and_the_rest_fetched(fhir_server: FhirTestServer) -> None:
    service = _service(
        patient={"query": "Patient/{{context.patientId}}"},
        encounter={"query": "Encounter/{{context.encounterId}}", "required": False},
    )
    request = parse_hook_request(_request(fhir_server), "order-sign")
    async with Upstream(LOOPBACK) as client:
        data = await gather_data(service, request, client, SETTINGS)
    assert [r.id for r in data.values["patient"]] == ["mas-f1"]
    assert data.unavailable == {"encounter": "a context value its query needs is missing"}
    assert [r.path for r in fhir_server.requests] == ["/fhir/Patient/mas-f1"]


async def test_without_a_token_nothing_is_fetched_unless_allowed(fhir_server: FhirTestServer) -> None:
    service = _service(patient={"query": "Patient/{{context.patientId}}"})
    request = parse_hook_request(_request(fhir_server, fhirAuthorization=None), "order-sign")
    async with Upstream(LOOPBACK) as client:
        with pytest.raises(ProblemError, match="no fhirAuthorization was given"):
            await gather_data(service, request, client, SETTINGS)
        assert fhir_server.requests == []
        open_server = FetchSettings(deadline_seconds=1.0, max_pages=3, without_token=True)
        data = await gather_data(service, request, client, open_server)
    assert [r.id for r in data.values["patient"]] == ["mas-f1"]
    assert [r.authorization for r in fhir_server.requests] == [None]


def _sign_service() -> ServiceDefinition:
    from cds_service.protocol.discovery import load_services
    from tests.conftest import RULES

    service = load_services(RULES).get("anakinra-order-sign")
    assert service is not None
    return service


def _bundle(*resources: dict[str, object]) -> dict[str, object]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


CRRT = {
    "resourceType": "Procedure",
    "id": "crrt-1",
    "status": "in-progress",
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "714749008"}]},
    "subject": {"reference": "Patient/mas-f1"},
}
CONDITION = {"resourceType": "Condition", "id": "c-1", "code": {"text": "splenomegaly"}}


async def test_a_procedure_sent_with_the_conditions_is_kept_once_and_an_unasked_type_is_reported(
    fhir_server: FhirTestServer,
) -> None:
    allergy = {"resourceType": "AllergyIntolerance", "id": "a-1"}
    prefetch = {key: None for key in _sign_service().prefetch}
    prefetch["conditions"] = _bundle(CONDITION, CRRT, allergy)
    prefetch["procedures"] = _bundle(CRRT)
    request = parse_hook_request(_request(fhir_server, prefetch=prefetch), "order-sign")
    async with Upstream(LOOPBACK) as client:
        data = await gather_data(_sign_service(), request, client, SETTINGS)
    assert [r.resourceType for r in data.values["conditions"]] == ["Condition", "Procedure"]
    assert data.problems == [
        "prefetch.conditions: a AllergyIntolerance was sent where Condition was asked for"
    ]
    assert fhir_server.requests == []


async def test_without_prefetch_the_dialysis_procedures_and_encounters_are_fetched(
    fhir_server: FhirTestServer,
) -> None:
    prefetch = {key: None for key in _sign_service().prefetch if key not in ("procedures", "encounters")}
    request = parse_hook_request(_request(fhir_server, prefetch=prefetch), "order-sign")
    request.context["patientId"] = "renal-crrt1"
    async with Upstream(LOOPBACK) as client:
        data = await gather_data(_sign_service(), request, client, SETTINGS)
    assert sorted(data.fetched) == ["encounters", "procedures"]
    assert [r.id for r in data.values["procedures"]] == ["renal-crrt1-crrt"]
    assert data.values["encounters"] == []
    paths = sorted(r.path for r in fhir_server.requests)
    assert paths == ["/fhir/Encounter", "/fhir/Procedure"]
    query = next(r.query for r in fhir_server.requests if r.path == "/fhir/Procedure")
    assert "714749008" in query and "patient=renal-crrt1" in query
