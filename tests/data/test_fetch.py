"""The FHIR client against the FHIR test server: paging, the page cap, staying on the EHR's server."""

from __future__ import annotations

import httpx
import pytest

from cds_service.data.fetch import FetchError, fetch_query, new_client
from tests.fhirserver import FhirTestServer

FERRITIN = "Observation?patient=mas-f1&code=http://loinc.org|2276-4&_sort=-date"


async def test_next_links_are_followed_to_the_end(fhir_server: FhirTestServer) -> None:
    async with new_client() as client:
        everything = await fetch_query(client, fhir_server.base_url, FERRITIN, None, 10, "labs")
        paged = await fetch_query(client, fhir_server.base_url, FERRITIN + "&_count=2", None, 10, "labs")
    assert len(everything.resources) >= 5
    assert [r.id for r in paged.resources] == [r.id for r in everything.resources]
    assert paged.problems == []
    pages = [r for r in fhir_server.requests if r.path == "/fhir/Observation"]
    assert len(pages) == 1 + (len(everything.resources) + 1) // 2


async def test_the_page_cap_is_reported(fhir_server: FhirTestServer) -> None:
    async with new_client() as client:
        decoded = await fetch_query(client, fhir_server.base_url, FERRITIN + "&_count=2", None, 2, "labs")
    assert len(decoded.resources) == 4
    assert decoded.problems == ["labs: more than 2 pages of results; only the first 2 were read"]


async def test_a_next_link_to_another_server_is_not_followed() -> None:
    # An EHR (or an attacker in its data) pointing `next` elsewhere must not receive the bearer token.
    seen: list[httpx.Request] = []

    def ehr(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": {"resourceType": "Observation", "id": "o1", "status": "final"}}],
                "link": [{"relation": "next", "url": "https://elsewhere.example/fhir/Observation?page=2"}],
            },
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(ehr)) as client:
        decoded = await fetch_query(
            client, "https://ehr.example/fhir", "Observation?patient=p", "tok", 10, "labs"
        )
    assert [r.id for r in decoded.resources] == ["o1"]
    assert decoded.problems == ["labs: a next link left the FHIR server and was not followed"]
    assert [str(r.url) for r in seen] == ["https://ehr.example/fhir/Observation?patient=p"]


async def test_a_missing_resource_is_a_fetch_error(fhir_server: FhirTestServer) -> None:
    async with new_client() as client:
        with pytest.raises(FetchError, match=r"patient: not found on the FHIR server \(HTTP 404\)"):
            await fetch_query(client, fhir_server.base_url, "Patient/nobody", None, 10, "patient")


async def test_connection_refused_is_a_fetch_error() -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(FetchError, match="could not be reached"):
            await fetch_query(client, "http://127.0.0.1:9/fhir", "Patient/x", "secret", 10, "patient")
