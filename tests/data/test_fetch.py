"""The FHIR client against the FHIR test server: paging, the page cap, staying on the EHR's server."""

from __future__ import annotations

import httpx
import pytest

from cds_service.data.fetch import ByteBudget, FetchError, fetch_query
from cds_service.data.upstream import FetchPolicy, Upstream
from tests.fhirserver import FhirTestServer


def new_client() -> httpx.AsyncClient:
    # The test FHIR server listens on loopback, which only this policy fetches from.
    return Upstream(FetchPolicy(allow_private=True)).client


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


# Staying under the base path (issue 16): same origin is not enough, the token is for the FHIR base.


@pytest.mark.parametrize(
    "next_url",
    [
        "https://ehr.example/fhir/../admin/Observation?page=2",
        "https://ehr.example/fhir/%2e%2e/admin?page=2",
        "https://ehr.example/fhir/Observation/..%2f..%2fadmin",
        "https://ehr.example/fhirx/Observation?page=2",
        "https://ehr.example/other/fhir/Observation?page=2",
        "https://ehr.example:8443/fhir/Observation?page=2",
        "http://ehr.example/fhir/Observation?page=2",
        "https://user@ehr.example/fhir/Observation?page=2",
        "https://ehr.example/fhir\\..\\admin",
    ],
)
async def test_a_next_link_leaving_the_base_path_is_not_followed(next_url: str) -> None:
    seen: list[str] = []

    def ehr(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=_bundle(next_url))

    async with httpx.AsyncClient(transport=httpx.MockTransport(ehr)) as client:
        decoded = await fetch_query(
            client, "https://ehr.example/fhir", "Observation?patient=p", "tok", 10, "labs"
        )
    assert decoded.problems == ["labs: a next link left the FHIR server and was not followed"]
    assert seen == ["https://ehr.example/fhir/Observation?patient=p"]


async def test_a_next_link_under_the_base_path_is_followed() -> None:
    seen: list[str] = []

    def ehr(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=_bundle(None if seen[1:] else "https://ehr.example/fhir?page=2"))

    async with httpx.AsyncClient(transport=httpx.MockTransport(ehr)) as client:
        decoded = await fetch_query(client, "https://ehr.example/fhir/", "Observation", "tok", 10, "labs")
    assert decoded.problems == []
    assert seen == ["https://ehr.example/fhir/Observation", "https://ehr.example/fhir?page=2"]


async def test_a_query_that_leaves_the_base_path_is_not_sent() -> None:
    from cds_service.data.templates import fill_template

    query = fill_template("Patient/{{context.patientId}}", {"patientId": "../../admin"})
    assert query is not None

    def ehr(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"sent {request.url}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(ehr)) as client:
        with pytest.raises(FetchError, match="leaves the FHIR server's base URL"):
            await fetch_query(client, "https://ehr.example/fhir", query, "tok", 10, "patient")


def _bundle(next_url: str | None, padding: int = 0) -> dict[str, object]:
    bundle: dict[str, object] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "Observation", "id": "o1", "status": "final"}}],
        "link": [{"relation": "next", "url": next_url}] if next_url else [],
    }
    if padding:
        bundle["padding"] = "x" * padding
    return bundle


# Size caps (issue 16): an answer is read as a stream and stopped at the cap


class _Chunks(httpx.AsyncByteStream):
    """A response body sent in chunks, forever when `endless`; counts what the client pulled."""

    def __init__(self, chunks: list[bytes], endless: bool = False) -> None:
        self.chunks = chunks
        self.endless = endless
        self.pulled = 0

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        while True:
            for chunk in self.chunks:
                self.pulled += len(chunk)
                yield chunk
            if not self.endless:
                return


def _streaming(body: _Chunks, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    def ehr(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=body, headers=headers)

    return httpx.AsyncClient(transport=httpx.MockTransport(ehr))


async def test_an_endless_answer_is_cut_at_the_cap() -> None:
    body = _Chunks([b'{"resourceType": "Bundle", "padding": "', b"x" * 65536], endless=True)
    budget = ByteBudget(per_answer=1_000_000, per_call=5_000_000)
    async with _streaming(body) as client:
        with pytest.raises(FetchError, match="larger than 1000000 bytes; reading stopped"):
            await fetch_query(client, "https://ehr.example/fhir", "Observation", "t", 10, "labs", budget)
    assert body.pulled < 1_000_000 + 2 * 65536


async def test_a_declared_length_over_the_cap_is_not_read() -> None:
    body = _Chunks([b"x" * 1000])
    budget = ByteBudget(per_answer=500, per_call=5000)
    async with _streaming(body, {"content-length": "1000"}) as client:
        with pytest.raises(FetchError, match="larger than 500 bytes"):
            await fetch_query(client, "https://ehr.example/fhir", "Observation", "t", 10, "labs", budget)
    assert body.pulled == 0


async def test_a_compressed_answer_is_capped_on_what_it_inflates_to() -> None:
    import gzip

    bomb = gzip.compress(b'{"resourceType": "Bundle", "padding": "' + b"x" * 50_000_000 + b'"}')
    assert len(bomb) < 100_000
    body = _Chunks([bomb[i : i + 16384] for i in range(0, len(bomb), 16384)])
    budget = ByteBudget(per_answer=2_000_000, per_call=5_000_000)
    async with _streaming(body, {"content-encoding": "gzip"}) as client:
        with pytest.raises(FetchError, match="larger than 2000000 bytes"):
            await fetch_query(client, "https://ehr.example/fhir", "Observation", "t", 10, "labs", budget)


async def test_a_compressed_answer_within_the_cap_is_read() -> None:
    import gzip
    import json

    body = _Chunks([gzip.compress(json.dumps(_bundle(None)).encode())])
    async with _streaming(body, {"content-encoding": "gzip"}) as client:
        decoded = await fetch_query(client, "https://ehr.example/fhir", "Observation", "t", 10, "labs")
    assert [r.id for r in decoded.resources] == ["o1"]


async def test_an_encoding_not_asked_for_is_refused() -> None:
    async with _streaming(_Chunks([b"\x00\x01"]), {"content-encoding": "br"}) as client:
        with pytest.raises(FetchError, match="encoding that was not asked for"):
            await fetch_query(client, "https://ehr.example/fhir", "Observation", "t", 10, "labs")


async def test_pages_together_are_capped_per_call() -> None:
    pages = iter(range(100))

    def ehr(request: httpx.Request) -> httpx.Response:
        page = next(pages)
        return httpx.Response(200, json=_bundle(f"https://ehr.example/fhir?page={page + 1}", padding=40_000))

    budget = ByteBudget(per_answer=100_000, per_call=150_000)
    async with httpx.AsyncClient(transport=httpx.MockTransport(ehr)) as client:
        with pytest.raises(FetchError, match="passed 150000 bytes; reading stopped"):
            await fetch_query(client, "https://ehr.example/fhir", "Observation", "t", 10, "labs", budget)


async def test_a_large_answer_over_real_http_is_cut_at_the_cap(fhir_server: FhirTestServer) -> None:
    fhir_server.padded_body = -1  # never ends
    budget = ByteBudget(per_answer=3_000_000, per_call=10_000_000)
    async with new_client() as client:
        with pytest.raises(FetchError, match="larger than 3000000 bytes"):
            await fetch_query(client, fhir_server.base_url, "Observation", None, 10, "labs", budget)


# What the FHIR server says stays in the log (issue 16)


async def test_upstream_diagnostics_are_logged_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "processing", "diagnostics": "[click](https://evil.example) <b>"}
        ],
    }

    def ehr(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"resourceType": "Bundle", "entry": [{"resource": outcome}]})

    caplog.set_level("INFO")
    async with httpx.AsyncClient(transport=httpx.MockTransport(ehr)) as client:
        decoded = await fetch_query(client, "https://ehr.example/fhir", "Observation", "t", 10, "labs")
    assert decoded.problems == [
        "labs: the FHIR server reported error: issue code processing (details in the service log)"
    ]
    assert "evil.example" in caplog.text


async def test_an_error_answer_is_not_read_or_quoted() -> None:
    def ehr(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            500, json={"resourceType": "OperationOutcome", "issue": [{"diagnostics": "db down"}]}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(ehr)) as client:
        with pytest.raises(FetchError) as failed:
            await fetch_query(client, "https://ehr.example/fhir", "Observation", "t", 10, "labs")
    assert str(failed.value) == "labs: the FHIR server answered HTTP 500"


async def test_a_redirect_is_not_followed() -> None:
    seen: list[str] = []

    def ehr(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    async with Upstream(FetchPolicy()) as upstream:
        client = httpx.AsyncClient(
            transport=httpx.MockTransport(ehr), follow_redirects=upstream.client.follow_redirects
        )
        with pytest.raises(FetchError, match="answered HTTP 302"):
            await fetch_query(client, "https://ehr.example/fhir", "Patient/p", "tok", 10, "patient")
    assert seen == ["https://ehr.example/fhir/Patient/p"]
    assert upstream.client.follow_redirects is False
