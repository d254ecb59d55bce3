"""The HTTP surface over real HTTP: discovery, service calls, errors, CORS, health."""

from __future__ import annotations

import copy
import logging
import os
import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import create_engine

from cds_service.cards.render import PROVENANCE_KEY
from cds_service.engine.ruleset import ruleset_hash
from cds_service.store.schema import metadata
from tests.conftest import RULES, sandbox_capture
from tests.fhirserver import FhirTestServer

ORDER_SIGN = "/cds-services/anakinra-order-sign"


def sandbox_order_sign() -> dict[str, Any]:
    """The body the CDS Hooks sandbox sent: its draft names no drug, so the service answers no card."""
    return copy.deepcopy(sandbox_capture("order-sign-request.json")["body"])


def sandbox_anakinra_order_sign() -> dict[str, Any]:
    """The sandbox's body with its draft naming anakinra (by RxNorm, as the sandbox's Rx View would), and
    a daily dose: an order the service speaks about."""
    body = sandbox_order_sign()
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {
        "coding": [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "72435", "display": "anakinra"}
        ],
        "text": "anakinra",
    }
    draft["dosageInstruction"] = [
        {
            "route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}], "text": "IV"},
            "doseAndRate": [
                {
                    "rateQuantity": {
                        "value": 600,
                        "unit": "mg/d",
                        "system": "http://unitsofmeasure.org",
                        "code": "mg/d",
                    }
                }
            ],
        }
    ]
    return body


def outcome_text(response: httpx.Response) -> str:
    body = response.json()
    OperationOutcome.model_validate(body)  # every error body is a valid R4 OperationOutcome
    return " | ".join(issue["diagnostics"] for issue in body["issue"])


def test_discovery_lists_the_three_services(http: httpx.Client) -> None:
    response = http.get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json()["services"]}
    assert {k: s["hook"] for k, s in services.items()} == {
        "anakinra-order-sign": "order-sign",
        "anakinra-order-select": "order-select",
        "mas-patient-view": "patient-view",
    }
    for service in services.values():
        assert service["title"] and service["description"]
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert "_sort=-date" in service["prefetch"]["labs"]
        assert all("sort:desc" not in query for query in service["prefetch"].values())


def test_sandbox_order_sign_capture_replays_to_a_valid_answer(http: httpx.Client) -> None:
    capture = sandbox_capture("order-sign-request.json")
    headers = {k: v for k, v in capture["headers"].items() if k in ("content-type", "accept", "origin")}
    response = http.post(ORDER_SIGN, content=orjson.dumps(capture["body"]), headers=headers)
    assert response.status_code == 200
    # Its draft names no drug: an order-sign call for an order that is not anakinra gets no card at all,
    # not even the one naming the data it lacked (issue 15).
    assert response.json() == {"cards": []}
    assert response.headers["access-control-allow-origin"] == "*"


def test_the_capture_with_an_anakinra_draft_names_the_data_it_lacked(http: httpx.Client) -> None:
    response = http.post(ORDER_SIGN, json=sandbox_anakinra_order_sign())
    assert response.status_code == 200
    cards = response.json()["cards"]
    # The capture prefetched patient and labs only: the optional data it lacked is named, not ignored.
    (data,) = [c for c in cards if c["extension"]["cds-service-provenance"]["ruleId"] == "incomplete-data"]
    assert "medication orders" in data["summary"] and "conditions" in data["summary"]


def test_complete_prefetch_gets_an_empty_card_list(http: httpx.Client) -> None:
    body = sandbox_order_sign()
    body["prefetch"]["medications"] = None
    body["prefetch"]["conditions"] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    body["prefetch"]["procedures"] = None
    body["prefetch"]["encounters"] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    response = http.post(ORDER_SIGN, json=body)
    assert response.status_code == 200
    assert response.content == b'{"cards":[]}'


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        (lambda b: b.update(hook="patient-view"), 400, "does not match this service"),
        (lambda b: b.update(hookInstance="not-a-uuid"), 400, "hookInstance must be a UUID"),
        (lambda b: b.pop("hookInstance"), 400, "hookInstance"),
        (lambda b: b["context"].pop("draftOrders"), 400, "context.draftOrders is required"),
        (lambda b: b["context"].pop("userId"), 400, "context.userId is required"),
        (lambda b: b["context"].update(draftOrders=[1]), 400, "must be a FHIR Bundle"),
        (lambda b: b["context"].update(patientId="a b/c"), 400, "context.patientId must be a FHIR id"),
        (lambda b: b.pop("fhirServer") and b.update(fhirAuthorization=_auth()), 400, "without fhirServer"),
        (lambda b: b.update(fhirServer="ftp://x"), 400, "absolute http(s) URL"),
        (
            lambda b: b["prefetch"].update(labs={"no": "resourceType"}),
            400,
            "prefetch.labs is not a FHIR resource",
        ),
        (lambda b: b["prefetch"].update(labs=[1, 2]), 400, "prefetch.labs"),
        (lambda b: b.update(context="x"), 400, "Expected `object`"),
    ],
)
def test_bad_requests_are_400_with_an_operation_outcome(
    http: httpx.Client, change: Any, status: int, fragment: str
) -> None:
    body = sandbox_order_sign()
    change(body)
    response = http.post(ORDER_SIGN, json=body)
    assert response.status_code == status
    assert fragment in outcome_text(response)


def test_every_problem_is_named_not_only_the_first(http: httpx.Client) -> None:
    body = sandbox_order_sign()
    body["hookInstance"] = "x"
    del body["context"]["patientId"]
    response = http.post(ORDER_SIGN, json=body)
    assert response.status_code == 400
    expressions = [issue["expression"][0] for issue in response.json()["issue"]]
    assert expressions == ["hookInstance", "context.patientId"]


def test_order_select_requires_selections(http: httpx.Client) -> None:
    body = sandbox_order_sign()
    body["hook"] = "order-select"
    response = http.post("/cds-services/anakinra-order-select", json=body)
    assert response.status_code == 400
    assert "context.selections is required" in outcome_text(response)
    body["context"]["selections"] = ["MedicationRequest/request-123"]
    assert http.post("/cds-services/anakinra-order-select", json=body).status_code == 200


def test_patient_view_needs_no_draft_orders(http: httpx.Client) -> None:
    body = sandbox_order_sign()
    body["hook"] = "patient-view"
    del body["context"]["draftOrders"]
    response = http.post("/cds-services/mas-patient-view", json=body)
    assert response.status_code == 200


def test_malformed_json_is_400(http: httpx.Client) -> None:
    response = http.post(ORDER_SIGN, content=b'{"hook": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "not valid JSON" in outcome_text(response)


def test_unknown_service_is_404(http: httpx.Client) -> None:
    response = http.post("/cds-services/no-such-service", json=sandbox_order_sign())
    assert response.status_code == 404
    assert "no CDS service" in outcome_text(response)


def test_wrong_content_type_is_415(http: httpx.Client) -> None:
    response = http.post(
        ORDER_SIGN, content=orjson.dumps(sandbox_order_sign()), headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert "Content-Type" in outcome_text(response)


def test_oversized_body_is_413(service_with: Any) -> None:
    http = service_with(max_body_bytes=4096)
    body = sandbox_order_sign()
    body["prefetch"]["padding"] = {"resourceType": "Basic", "text": "x" * 5000}
    response = http.post(ORDER_SIGN, json=body)
    assert response.status_code == 413
    assert "limit" in outcome_text(response)
    # Chunked uploads carry no Content-Length: the limit still holds while streaming.
    chunks = iter([orjson.dumps(body)[:3000], orjson.dumps(body)[3000:]])
    response = http.post(ORDER_SIGN, content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_cors_preflight_allows_the_sandbox_headers(http: httpx.Client) -> None:
    for path in ("/cds-services", ORDER_SIGN, ORDER_SIGN + "/feedback"):
        response = http.options(
            path,
            headers={
                "origin": "http://127.0.0.1:8080",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type",
            },
        )
        assert response.status_code == 200, path
        allowed = response.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed


def test_healthz(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    rules = body.pop("rules")
    assert body.pop("process") == os.getpid()  # the test server runs in this process
    assert body == {"status": "ok", "services": 3, "database": "ok"}
    assert rules == {"name": "anakinra-mas", "version": rules["version"], "hash": ruleset_hash(RULES)}


def test_healthz_reports_a_hanging_database_as_unavailable_before_a_probe_times_out(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cds_service import app as app_module
    from cds_service.store.database import Store

    # A database that neither answers nor refuses (a dropped network path) holds the ping thread.
    monkeypatch.setattr(Store, "ping", lambda self: time.sleep(3.0) or True)
    monkeypatch.setattr(Store, "heartbeat", lambda self, now, process: time.sleep(3.0) or True)
    monkeypatch.setattr(app_module, "HEALTH_PING_SECONDS", 0.2)
    started = time.monotonic()
    response = http.get("/healthz")
    assert time.monotonic() - started < 2.5  # answered without waiting out the 3 s hang
    assert response.status_code == 200
    assert response.json()["database"] == "unavailable"


def test_unknown_route_and_method_get_operation_outcomes(http: httpx.Client) -> None:
    assert http.get("/nope").status_code == 404
    assert "resourceType" in http.get("/nope").json()
    response = http.delete("/cds-services")
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"


def _auth(token: str = "secret-token-123") -> dict[str, Any]:
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }


def _fetching_request(
    server: FhirTestServer, patient: str = "mas-f1", token: str = "secret-token-123"
) -> dict:
    body = sandbox_anakinra_order_sign()
    body["context"]["patientId"] = patient
    body["fhirServer"] = server.base_url
    body["fhirAuthorization"] = _auth(token)
    del body["prefetch"]
    return body


def test_absent_prefetch_is_fetched_with_the_bearer_token(
    http: httpx.Client, fhir_server: FhirTestServer
) -> None:
    fhir_server.required_token = "secret-token-123"
    response = http.post(ORDER_SIGN, json=_fetching_request(fhir_server))
    assert response.status_code == 200
    rules = [c["extension"][PROVENANCE_KEY]["ruleId"] for c in response.json()["cards"]]
    assert "incomplete-data" not in rules  # every source was fetched
    paths = sorted(r.path for r in fhir_server.requests)
    assert paths == [
        "/fhir/Condition",
        "/fhir/Encounter",
        "/fhir/MedicationRequest",
        "/fhir/Observation",
        "/fhir/Patient/mas-f1",
        "/fhir/Procedure",
        "/fhir/Specimen",
    ]
    assert {r.authorization for r in fhir_server.requests} == {"Bearer secret-token-123"}


def test_unreachable_fhir_server_is_412(http: httpx.Client) -> None:
    body = sandbox_order_sign()
    del body["prefetch"]["labs"]
    body["fhirServer"] = "http://127.0.0.1:9/fhir"  # discard port: nothing listens
    body["fhirAuthorization"] = _auth()
    response = http.post(ORDER_SIGN, json=body)
    assert response.status_code == 412
    text = outcome_text(response)
    assert "prefetch.labs" in text and "could not be reached" in text
    assert "secret-token-123" not in response.text


def test_missing_prefetch_without_server_is_412(http: httpx.Client) -> None:
    body = sandbox_order_sign()
    del body["prefetch"]["patient"]
    del body["fhirServer"]
    response = http.post(ORDER_SIGN, json=body)
    assert response.status_code == 412
    assert "no fhirServer was given" in outcome_text(response)


@pytest.mark.parametrize(
    ("knob", "value", "fragment"),
    [
        ("fail_status", 500, "answered HTTP 500"),
        ("required_token", "another-token", "refused access (HTTP 401)"),
        ("garbage", True, "could not be read"),
    ],
)
def test_fhir_server_failures_are_412(
    http: httpx.Client, fhir_server: FhirTestServer, knob: str, value: Any, fragment: str
) -> None:
    setattr(fhir_server, knob, value)
    response = http.post(ORDER_SIGN, json=_fetching_request(fhir_server))
    assert response.status_code == 412
    assert fragment in outcome_text(response)
    assert "secret-token-123" not in response.text


def test_slow_fhir_server_hits_the_deadline(service_with: Any, fhir_server: FhirTestServer) -> None:
    http = service_with(fetch_deadline_seconds=0.3)
    fhir_server.delay_seconds = 5
    response = http.post(ORDER_SIGN, json=_fetching_request(fhir_server))
    assert response.status_code == 412
    assert "did not answer within the 0.3 s deadline" in outcome_text(response)
    assert response.elapsed.total_seconds() < 2


def test_optional_data_that_fails_gives_a_card_not_an_error(
    http: httpx.Client, fhir_server: FhirTestServer
) -> None:
    body = _fetching_request(fhir_server)
    body["prefetch"] = {
        "patient": {"resourceType": "Patient", "id": "mas-f1", "gender": "female"},
        "labs": None,
    }
    fhir_server.fail_status = 503
    response = http.post(ORDER_SIGN, json=body)
    assert response.status_code == 200
    (card,) = [
        c for c in response.json()["cards"] if c["extension"][PROVENANCE_KEY]["ruleId"] == "incomplete-data"
    ]
    assert card["indicator"] == "info"
    assert "medication orders" in card["summary"] and "answered HTTP 503" in card["detail"]


def test_null_prefetch_is_not_fetched(http: httpx.Client, fhir_server: FhirTestServer) -> None:
    body = _fetching_request(fhir_server)
    body["prefetch"] = dict.fromkeys(
        ("patient", "labs", "medications", "conditions", "specimens", "procedures", "encounters")
    )
    response = http.post(ORDER_SIGN, json=body)
    assert response.status_code == 200
    assert fhir_server.requests == []


def test_server_reported_outcomes_are_data_problems(http: httpx.Client, fhir_server: FhirTestServer) -> None:
    fhir_server.include_outcome = True
    response = http.post(ORDER_SIGN, json=_fetching_request(fhir_server))
    assert response.status_code == 200
    (card,) = [
        c for c in response.json()["cards"] if c["extension"][PROVENANCE_KEY]["ruleId"] == "incomplete-data"
    ]
    # What the server said stays in the service log: a card names only the FHIR issue code.
    assert "search truncated" not in card["detail"]
    assert "the FHIR server reported warning: issue code incomplete" in card["detail"]


def test_hook_instance_is_any_uuid(http: httpx.Client) -> None:
    body = sandbox_order_sign()
    body["hookInstance"] = str(uuid.uuid4()).upper()
    assert http.post(ORDER_SIGN, json=body).status_code == 200


def test_sandbox_discovery_capture_replays(http: httpx.Client) -> None:
    capture = sandbox_capture("discovery-request.json")
    response = http.request(capture["method"], capture["path"], headers=capture["headers"])
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert len(response.json()["services"]) == 3


def test_the_access_token_is_never_logged_or_stored(
    http: httpx.Client, fhir_server: FhirTestServer, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = "tok-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)  # every logger, every level, httpx and httpcore included
    body = _fetching_request(fhir_server, token=token)
    body["prefetch"] = {"medications": None, "conditions": {"resourceType": "Patient"}}  # -> a data card
    assert http.post(ORDER_SIGN, json=body).status_code == 200
    fhir_server.fail_status = 500
    assert http.post(ORDER_SIGN, json=body).status_code == 412
    assert {r.authorization for r in fhir_server.requests} == {f"Bearer {token}"}  # it was used...
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    assert token not in caplog.text  # ...but never logged
    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(table.select()).fetchall()
            assert token not in repr(rows), table.name
    engine.dispose()


def test_a_client_that_hangs_up_mid_body_is_a_logged_400_not_a_server_error(
    service: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import socket
    import time

    from cds_service.store.database import Store

    host, port = service.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"POST {ORDER_SIGN} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n".encode()
            + b'{"hook": "order-sign", '
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = [r for r in Store(settings.database_url).audit() if r["endpoint"] == "service"]
        if rows:
            break
        time.sleep(0.05)
    (row,) = rows
    assert row["status"] == 400
    assert "closed the connection" in row["reason"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_healthz_checks_a_write_at_most_every_few_seconds(
    service_with: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cds_service.store.database import Store

    writes: list[int] = []
    real = Store.heartbeat

    def counted(self: Store, now: Any, process: int) -> bool:
        writes.append(process)
        return real(self, now, process)

    monkeypatch.setattr(Store, "heartbeat", counted)
    http = service_with(health_write_seconds=3600)
    for _ in range(20):
        assert http.get("/healthz").json()["database"] == "ok"
    assert len(writes) == 1  # an unauthenticated endpoint cannot make the database write on demand


def test_chart_links_on_a_service_call_never_follow_the_host_header(service: Any, http: httpx.Client) -> None:
    from tests.conftest import ROOT

    request = (ROOT / "fhir_fixtures" / "requests" / "order-sign-500mg-day.json").read_bytes()
    response = http.post(
        ORDER_SIGN,
        content=request,
        headers={
            "content-type": "application/json",
            "Host": "evil.example",
            "X-Forwarded-Host": "evil.example",
        },
    )
    assert response.status_code == 200
    links = [link["url"] for card in response.json()["cards"] for link in card.get("links", ())]
    charts = [url for url in links if "/charts/" in url]
    # No public URL is configured (auth is off): links name the address the service listens on.
    assert charts and all(url.startswith(service.base_url + "/charts/") for url in charts), charts
    assert "evil.example" not in response.text


@pytest.mark.parametrize("allow_private", [True, False])
async def test_allowing_private_fhir_servers_is_warned_at_start_up(
    settings: Any, allow_private: bool, caplog: pytest.LogCaptureFixture
) -> None:
    import dataclasses

    from cds_service.app import create_app
    from cds_service.data.upstream import ALLOW_PRIVATE_WARNING

    app = create_app(dataclasses.replace(settings, fetch_allow_private=allow_private))
    with caplog.at_level(logging.WARNING, logger="cds_service.app"):
        async with app.router.lifespan_context(app):
            pass
    warned = [r for r in caplog.records if r.getMessage() == ALLOW_PRIVATE_WARNING]
    assert len(warned) == (1 if allow_private else 0)
    if warned:
        assert warned[0].levelno == logging.WARNING
