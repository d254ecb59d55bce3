"""Hook request parsing: the happy path, token secrecy, and every 400 problem collected at once."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from cds_service.protocol.hooks import HOOK_CONTEXT, prefetch_tokens
from cds_service.protocol.outcome import ProblemError
from cds_service.protocol.request import HookRequest, parse_hook_request
from tests.conftest import sandbox_capture

TOKEN = "s3cr3t-access-token-0f9e8d7c6b5a"
HOOK_INSTANCE = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"


def sandbox_body() -> dict[str, Any]:
    body: dict[str, Any] = sandbox_capture("order-sign-request.json")["body"]
    return copy.deepcopy(body)


def with_auth(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "user/Patient.read user/Observation.read",
        "subject": "cds-service",
    }
    auth.update(changes)
    body["fhirAuthorization"] = {k: v for k, v in auth.items() if v is not None}
    return body


def parse(body: dict[str, Any], hook: str = "order-sign") -> HookRequest:
    return parse_hook_request(orjson.dumps(body), hook)


def problem(body: dict[str, Any] | bytes, hook: str = "order-sign") -> ProblemError:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    with pytest.raises(ProblemError) as caught:
        parse_hook_request(raw, hook)
    return caught.value


def expressions(error: ProblemError) -> set[str | None]:
    return {issue.expression for issue in error.issues}


def assert_valid_outcome(error: ProblemError) -> None:
    outcome = OperationOutcome.model_validate(error.outcome())
    assert len(outcome.issue) == len(error.issues)
    assert orjson.loads(error.body()) == error.outcome()


# --- the happy path -------------------------------------------------------------------------------


def test_sandbox_order_sign_parses() -> None:
    body = sandbox_body()
    request = parse(body)
    assert request.hook == "order-sign"
    assert request.hook_instance == "a744ab7f-432f-40d1-8bc5-e8adeada788d"
    assert request.patient_id == "p1"
    assert request.fhir_server == "http://127.0.0.1:8765/fhir"
    assert request.fhir_authorization is None
    assert request.context["userId"] == "Practitioner/COREPRACTITIONER1"
    assert request.context["draftOrders"]["entry"][0]["resource"]["id"] == "request-123"


def test_prefetch_values_are_raw_json_bytes() -> None:
    body = sandbox_body()
    request = parse(body)
    assert set(request.prefetch) == {"labs", "patient"}
    for key, raw in request.prefetch.items():
        assert isinstance(raw, bytes)
        assert orjson.loads(raw) == body["prefetch"][key]


def test_json_null_prefetch_becomes_none() -> None:
    body = sandbox_body()
    body["prefetch"]["medications"] = None
    request = parse(body)
    assert request.prefetch["medications"] is None
    assert isinstance(request.prefetch["labs"], bytes)


def test_absent_prefetch_is_an_empty_mapping() -> None:
    body = sandbox_body()
    del body["prefetch"]
    assert parse(body).prefetch == {}


@pytest.mark.parametrize("server", ["http://127.0.0.1:8765/fhir/", "http://127.0.0.1:8765/fhir//"])
def test_fhir_server_trailing_slash_is_stripped(server: str) -> None:
    body = sandbox_body()
    body["fhirServer"] = server
    assert parse(body).fhir_server == "http://127.0.0.1:8765/fhir"


def test_fhir_authorization_is_read() -> None:
    request = parse(with_auth(sandbox_body(), patient="p1"))
    auth = request.fhir_authorization
    assert auth is not None
    assert auth.access_token == TOKEN
    assert auth.token_type == "Bearer"
    assert auth.expires_in == 300
    assert auth.scope == "user/Patient.read user/Observation.read"
    assert auth.subject == "cds-service"
    assert auth.patient == "p1"


def test_bearer_is_case_insensitive() -> None:
    auth = parse(with_auth(sandbox_body(), token_type="bearer")).fhir_authorization
    assert auth is not None
    assert auth.token_type == "bearer"


def test_patient_id_is_none_when_not_a_string() -> None:
    request = HookRequest("x", HOOK_INSTANCE, {"patientId": 5}, None, None, {})
    assert request.patient_id is None


# --- the access token never leaks -----------------------------------------------------------------


def test_token_not_in_repr_of_parsed_request() -> None:
    request = parse(with_auth(sandbox_body()))
    assert request.fhir_authorization is not None
    assert TOKEN not in repr(request)
    assert TOKEN not in repr(request.fhir_authorization)
    assert TOKEN not in str(request)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda b: b.update(hookInstance="not-a-uuid"),
        lambda b: b["fhirAuthorization"].update(token_type="MAC"),
        lambda b: b["fhirAuthorization"].update(expires_in="3600"),
        lambda b: b.pop("fhirServer"),
        lambda b: b["context"].update(userId="1"),
        lambda b: b.update(hook="patient-view"),
    ],
    ids=["hookInstance", "token_type", "expires_in", "no-fhirServer", "userId", "hook"],
)
def test_token_not_in_problem_text(spoil: Any) -> None:
    body = with_auth(sandbox_body())
    spoil(body)
    error = problem(body)
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)
    assert TOKEN.encode() not in error.body()


def test_token_not_in_problem_text_of_a_malformed_body() -> None:
    body = with_auth(sandbox_body())
    body["context"] = "not an object"
    error = problem(body)
    assert error.status == 400
    assert TOKEN not in str(error)
    assert TOKEN.encode() not in error.body()


# --- fhirAuthorization problems -------------------------------------------------------------------


@pytest.mark.parametrize("token_type", ["MAC", "Basic", "", 1])
def test_token_type_other_than_bearer_is_400(token_type: Any) -> None:
    error = problem(with_auth(sandbox_body(), token_type=token_type))
    assert error.status == 400
    assert expressions(error) == {"fhirAuthorization.token_type"}
    assert_valid_outcome(error)


def test_missing_token_type_is_400() -> None:
    body = with_auth(sandbox_body())
    del body["fhirAuthorization"]["token_type"]
    assert expressions(problem(body)) == {"fhirAuthorization.token_type"}


@pytest.mark.parametrize("expires_in", ["3600", 3600.5, True])
def test_expires_in_not_int_is_400(expires_in: Any) -> None:
    error = problem(with_auth(sandbox_body(), expires_in=expires_in))
    assert error.status == 400
    assert expressions(error) == {"fhirAuthorization.expires_in"}


@pytest.mark.parametrize("token", ["", 12345])
def test_missing_or_bad_access_token_is_400(token: Any) -> None:
    error = problem(with_auth(sandbox_body(), access_token=token))
    assert expressions(error) == {"fhirAuthorization.access_token"}


def test_authorization_without_fhir_server_is_400() -> None:
    body = with_auth(sandbox_body())
    del body["fhirServer"]
    error = problem(body)
    assert expressions(error) == {"fhirServer"}


@pytest.mark.parametrize("server", ["ftp://example.org/fhir", "127.0.0.1:8765/fhir", "http://", "/fhir"])
def test_fhir_server_must_be_absolute_http_url(server: str) -> None:
    body = sandbox_body()
    body["fhirServer"] = server
    assert expressions(problem(body)) == {"fhirServer"}


# --- every problem in one error -------------------------------------------------------------------


def test_all_problems_are_collected_in_one_error() -> None:
    body = with_auth(sandbox_body(), token_type="MAC", expires_in="soon")
    body["hookInstance"] = "123"
    body["fhirServer"] = "not a url"
    body["context"]["userId"] = "1"
    del body["context"]["draftOrders"]
    # Called on an order-select service; the context is checked against the hook the body names.
    error = problem(body, "order-select")
    assert error.status == 400
    assert expressions(error) == {
        "hook",
        "hookInstance",
        "context.userId",
        "context.draftOrders",
        "fhirAuthorization.token_type",
        "fhirAuthorization.expires_in",
        "fhirServer",
    }
    assert len(error.issues) == 7
    text = str(error)
    assert "order-select" in text and "order-sign" in text
    assert_valid_outcome(error)


def test_outcome_issue_codes_follow_status() -> None:
    error = problem(with_auth(sandbox_body(), token_type="MAC"))
    outcome = error.outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    issues = outcome["issue"]
    assert isinstance(issues, list)
    assert [i["code"] for i in issues] == ["invalid"]
    assert [i["expression"] for i in issues] == [["fhirAuthorization.token_type"]]


def test_not_json_is_a_single_400() -> None:
    error = problem(b"{not json")
    assert error.status == 400
    assert len(error.issues) == 1
    assert "not valid JSON" in str(error)
    assert_valid_outcome(error)


@pytest.mark.parametrize("missing", ["hook", "hookInstance", "context"])
def test_missing_top_level_field_is_400(missing: str) -> None:
    body = sandbox_body()
    del body[missing]
    error = problem(body)
    assert error.status == 400
    assert missing in str(error)
    assert_valid_outcome(error)


def test_wrong_hook_is_rejected() -> None:
    error = problem(sandbox_body(), hook="order-select")
    assert "hook" in expressions(error)


# --- context checks per hook ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "user", ["Practitioner/1", "PractitionerRole/x", "Patient/p-1", "RelatedPerson/rp.2", "Practitioner/A_b"]
)
def test_user_id_references_are_accepted(user: str) -> None:
    body = sandbox_body()
    body["context"]["userId"] = user
    assert parse(body).context["userId"] == user


@pytest.mark.parametrize(
    "user",
    ["1", "Device/1", "Practitioner/", "practitioner/1", "Practitioner/1/_history/2", "Practitioner/a b", 7],
)
def test_bad_user_ids_are_rejected(user: Any) -> None:
    body = sandbox_body()
    body["context"]["userId"] = user
    error = problem(body)
    assert expressions(error) == {"context.userId"}


@pytest.mark.parametrize("patient", ["a/b", "", "p 1", 42])
def test_bad_patient_ids_are_rejected(patient: Any) -> None:
    body = sandbox_body()
    body["context"]["patientId"] = patient
    assert expressions(problem(body)) == {"context.patientId"}


def test_missing_required_context_is_rejected() -> None:
    body = sandbox_body()
    body["context"] = {}
    error = problem(body)
    assert expressions(error) == {"context.userId", "context.patientId", "context.draftOrders"}


def test_encounter_id_is_optional_but_checked() -> None:
    body = sandbox_body()
    body["context"]["encounterId"] = "enc-1"
    assert parse(body).context["encounterId"] == "enc-1"
    body["context"]["encounterId"] = "Encounter/enc-1"
    assert expressions(problem(body)) == {"context.encounterId"}


@pytest.mark.parametrize(
    "draft",
    [
        {"resourceType": "Parameters"},
        [],
        {"resourceType": "Bundle", "entry": {"resource": {}}},
        {"resourceType": "Bundle", "entry": ["MedicationRequest/1"]},
    ],
)
def test_draft_orders_must_be_a_bundle(draft: Any) -> None:
    body = sandbox_body()
    body["context"]["draftOrders"] = draft
    assert expressions(problem(body)) == {"context.draftOrders"}


def test_draft_orders_bundle_without_type_or_entries_is_accepted() -> None:
    body = sandbox_body()
    body["context"]["draftOrders"] = {"resourceType": "Bundle"}
    assert parse(body).context["draftOrders"] == {"resourceType": "Bundle"}


def order_select_body(selections: Any) -> dict[str, Any]:
    body = sandbox_body()
    body["hook"] = "order-select"
    body["context"]["selections"] = selections
    return body


def test_selections_of_references_are_accepted() -> None:
    request = parse(order_select_body(["MedicationRequest/request-123"]), "order-select")
    assert request.context["selections"] == ["MedicationRequest/request-123"]


@pytest.mark.parametrize("selections", [["request-123"], [], "MedicationRequest/request-123", [1], None])
def test_selections_must_be_references(selections: Any) -> None:
    error = problem(order_select_body(selections), "order-select")
    assert expressions(error) == {"context.selections"}


def test_unknown_hook_gets_only_the_generic_checks() -> None:
    assert "encounter-start" not in HOOK_CONTEXT
    body = {
        "hook": "encounter-start",
        "hookInstance": HOOK_INSTANCE,
        "context": {"userId": "1", "anything": [1]},
    }
    request = parse(body, "encounter-start")
    assert request.hook == "encounter-start"
    assert request.context == {"userId": "1", "anything": [1]}
    assert request.patient_id is None


def test_unknown_hook_still_checks_hook_instance_and_authorization() -> None:
    body = {"hook": "encounter-start", "hookInstance": "nope", "context": {}}
    with_auth(body, token_type="MAC")
    body["fhirServer"] = "https://ehr.example/fhir"
    error = problem(body, "encounter-start")
    assert expressions(error) == {"hookInstance", "fhirAuthorization.token_type"}


def test_prefetch_tokens_follow_hook_context() -> None:
    tokens = prefetch_tokens("order-select")
    assert {"context.patientId", "context.userId", "context.encounterId", "userPractitionerId"} <= tokens
    assert "context.selections" not in tokens
    assert "context.draftOrders" not in tokens
    assert "context.patientId" not in prefetch_tokens("encounter-start")
