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
