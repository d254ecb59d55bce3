"""The FHIR test server itself, exercised over real HTTP so the suite can trust it."""

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.fhirserver import DEFAULT_FIXTURE_DIR, FhirTestServer, LoggedRequest

LOINC = "http://loinc.org"
FERRITIN = "2276-4"
MAS_OBSERVATION_COUNT = 45


def _observations_in_fixtures() -> int:
    return sum(
        1
        for path in DEFAULT_FIXTURE_DIR.glob("*.json")
        for entry in json.loads(path.read_text())["entry"]
        if entry["resource"]["resourceType"] == "Observation"
    )


@pytest.fixture
def client(fhir_server: FhirTestServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fhir_server.base_url, timeout=10) as client:
        yield client


def search(client: httpx.Client, resource_type: str, params: Any) -> dict[str, Any]:
    response = client.get(f"/{resource_type}", params=params)
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return bundle


def matches(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def ids(bundle: dict[str, Any]) -> list[str]:
    return [r["id"] for r in matches(bundle)]


def next_link(bundle: dict[str, Any]) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)


def test_read_by_id(client: httpx.Client) -> None:
    response = client.get("/Patient/mas-f1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    patient = response.json()
    assert (patient["resourceType"], patient["id"], patient["gender"]) == ("Patient", "mas-f1", "female")


def test_read_unknown_id_is_404_with_outcome(client: httpx.Client) -> None:
    response = client.get("/Observation/does-not-exist")
    assert response.status_code == 404
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found"


@pytest.mark.parametrize("patient", ["Patient/mas-f1", "mas-f1"])
@pytest.mark.parametrize("code", [f"{LOINC}|{FERRITIN}", FERRITIN])
def test_search_by_patient_and_code(client: httpx.Client, patient: str, code: str) -> None:
    bundle = search(client, "Observation", {"patient": patient, "code": code})
    assert bundle["total"] == 10
    for observation in matches(bundle):
        assert observation["subject"]["reference"] == "Patient/mas-f1"
        assert observation["code"]["coding"][0]["code"] == FERRITIN
    assert all(e["fullUrl"].startswith("http://127.0.0.1:") for e in bundle["entry"])


def test_search_code_with_wrong_system_matches_nothing(client: httpx.Client) -> None:
    bundle = search(
        client, "Observation", {"subject": "Patient/mas-f1", "code": f"http://snomed.info/sct|{FERRITIN}"}
    )
    assert bundle["total"] == 0 and bundle["entry"] == []


def test_search_code_list(client: httpx.Client) -> None:
    bundle = search(
        client, "Observation", {"patient": "sparse-1", "code": f"{LOINC}|{FERRITIN},{LOINC}|2160-0"}
    )
    assert sorted(ids(bundle)) == ["sparse-1-creatinine-01", "sparse-1-ferritin-01"]


def test_medication_request_code_searches_medication_concept(client: httpx.Client) -> None:
    bundle = search(
        client,
        "MedicationRequest",
        {
            "patient": "mas-f1",
            "code": "http://www.nlm.nih.gov/research/umls/rxnorm|72435",
            "status": "active",
        },
    )
    assert ids(bundle) == ["mas-f1-anakinra"]


def test_search_status(client: httpx.Client) -> None:
    bundle = search(client, "Observation", {"patient": "mas-f1", "status": "entered-in-error"})
    assert ids(bundle) == ["mas-f1-platelets-eie"]


def test_date_ge_and_le_filter_by_day(client: httpx.Client) -> None:
    params = [("patient", "mas-f1"), ("code", FERRITIN), ("date", "ge2026-11-20"), ("date", "le2026-11-21")]
    bundle = search(client, "Observation", params)
    assert sorted(ids(bundle)) == ["mas-f1-ferritin-08", "mas-f1-ferritin-09"]


def test_date_comparison_is_timezone_aware(client: httpx.Client) -> None:
    # si-m1's ferritin on 2026-11-22 was drawn at 07:00+01:00, i.e. 06:00Z.
    params = {"patient": "si-m1", "code": FERRITIN}
    assert "si-m1-ferritin-03" in ids(
        search(client, "Observation", {**params, "date": "ge2026-11-22T06:00:00Z"})
    )
    assert "si-m1-ferritin-03" not in ids(
        search(client, "Observation", {**params, "date": "gt2026-11-22T06:00:00Z"})
    )
    assert "si-m1-ferritin-03" in ids(
        search(client, "Observation", {**params, "date": "lt2026-11-22T06:30:00+00:00"})
    )


def test_date_filter_excludes_resources_without_date(client: httpx.Client) -> None:
    assert search(client, "Patient", {"_id": "mas-f1"})["total"] == 1
    assert search(client, "Patient", {"_id": "mas-f1", "date": "ge2000-01-01"})["total"] == 0


def test_condition_date_uses_recorded_date(client: httpx.Client) -> None:
    bundle = search(client, "Condition", {"patient": "mas-f1", "date": "lt2026-11-17"})
    assert ids(bundle) == ["mas-f1-splenomegaly"]


def test_invalid_date_is_400(client: httpx.Client) -> None:
    response = client.get("/Observation", params={"date": "ge2026-13-45"})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_unknown_params_are_ignored(client: httpx.Client) -> None:
    bundle = search(
        client, "Observation", {"patient": "sparse-1", "_unknownparam": "x", "category": "nonsense"}
    )
    assert bundle["total"] == 2


def test_sort_descending_by_date(client: httpx.Client) -> None:
    bundle = search(client, "Observation", {"patient": "mas-f1", "_sort": "-date", "_count": 100})
    instants = [datetime.fromisoformat(r["effectiveDateTime"]) for r in matches(bundle)]
    assert len(instants) == MAS_OBSERVATION_COUNT
    assert instants == sorted(instants, reverse=True)
    assert instants[0] == datetime.fromisoformat("2026-11-22T06:00:00+00:00")


def test_paging_follows_absolute_next_links_to_the_end(
    client: httpx.Client, fhir_server: FhirTestServer
) -> None:
    bundle = search(client, "Observation", {"patient": "mas-f1", "_count": 7, "_sort": "date"})
    seen = ids(bundle)
    pages = 1
    while (url := next_link(bundle)) is not None:
        assert url.startswith(fhir_server.base_url + "/Observation?")
        assert "patient=mas-f1" in url and "_count=7" in url
        response = client.get(url)
        assert response.status_code == 200
        bundle = response.json()
        assert bundle["total"] == MAS_OBSERVATION_COUNT
        seen += ids(bundle)
        pages += 1
    assert pages == 7
    assert len(seen) == len(set(seen)) == MAS_OBSERVATION_COUNT


def test_count_zero_gives_total_only(client: httpx.Client) -> None:
    bundle = search(client, "Observation", {"patient": "mas-f1", "_count": 0})
    assert bundle["total"] == MAS_OBSERVATION_COUNT
    assert bundle["entry"] == [] and next_link(bundle) is None


def test_default_page_size_is_50(client: httpx.Client) -> None:
    bundle = search(client, "Observation", {})
    assert len(bundle["entry"]) == 50
    assert bundle["total"] == _observations_in_fixtures()
    assert next_link(bundle) is not None


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "secret"])
def test_token_required(client: httpx.Client, fhir_server: FhirTestServer, authorization: str | None) -> None:
    fhir_server.required_token = "secret"
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/Patient/mas-f1", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["resourceType"] == "OperationOutcome"


def test_right_token_is_accepted_and_logged(client: httpx.Client, fhir_server: FhirTestServer) -> None:
    fhir_server.required_token = "secret"
    response = client.get(
        "/Observation", params={"patient": "sparse-1"}, headers={"Authorization": "Bearer secret"}
    )
    assert response.status_code == 200
    assert fhir_server.requests == [
        LoggedRequest("GET", "/fhir/Observation", "patient=sparse-1", "Bearer secret")
    ]


def test_fail_status(client: httpx.Client, fhir_server: FhirTestServer) -> None:
    fhir_server.fail_status = 503
    response = client.get("/Patient/mas-f1")
    assert response.status_code == 503
    assert response.json()["resourceType"] == "OperationOutcome"


def test_delay(client: httpx.Client, fhir_server: FhirTestServer) -> None:
    fhir_server.delay_seconds = 0.3
    started = time.monotonic()
    response = client.get("/Patient/mas-f1")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_include_outcome(client: httpx.Client, fhir_server: FhirTestServer) -> None:
    fhir_server.include_outcome = True
    bundle = search(client, "Observation", {"patient": "sparse-1"})
    outcomes = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    issue = outcomes[0]["resource"]["issue"][0]
    assert outcomes[0]["resource"]["resourceType"] == "OperationOutcome" and issue["severity"] == "warning"
    assert bundle["total"] == 2 and len(matches(bundle)) == 2


def test_garbage(client: httpx.Client, fhir_server: FhirTestServer) -> None:
    fhir_server.garbage = True
    response = client.get("/Patient/mas-f1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.text == "not json{"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_fixture_starts_each_test_well_behaved(fhir_server: FhirTestServer) -> None:
    assert fhir_server.required_token is None and fhir_server.fail_status is None
    assert not fhir_server.garbage and not fhir_server.include_outcome and fhir_server.delay_seconds == 0
    assert fhir_server.requests == []


def test_fixture_bundles_have_unique_ids_and_patient_subjects(fhir_server: FhirTestServer) -> None:
    for resource_type in ("Observation", "MedicationRequest", "Condition"):
        for resource in fhir_server.store.of_type(resource_type):
            assert fhir_server.store.read(
                "Patient", resource["subject"]["reference"].removeprefix("Patient/")
            )
