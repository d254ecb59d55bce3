"""schemathesis over the service's own OpenAPI document, every operation, in process (ASGI), auth off.

Checks: never a 5xx; what the document states (content types, headers, response schemas) holds; a
method the document does not declare gets 405 with `Allow`; and, beyond the document, every error is
an OperationOutcome and every 200 from a service call satisfies the CDS Hooks response invariants.
Undocumented status codes are not a failure: the document states no error responses (see the report
in docs/fuzzing.md), so `status_code_conformance` would only restate that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import orjson
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi import checks as openapi_checks

from cds_service.app import create_app
from cds_service.config import Settings
from tests.conftest import RULES
from tests.fuzz import FUZZ
from tests.fuzz.strategies import SERVICES
from tests.invariants import response_problems

# The document the service serves at /openapi.json; building the app starts nothing (no lifespan).
schema = schemathesis.openapi.from_dict(
    create_app(Settings(rules_dir=RULES, insecure_no_auth=True)).openapi()
)


@schema.hook
def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any]) -> Any:
    # A random service id is a 404 before anything else runs: call the real services as often.
    if not isinstance(path_parameters, dict) or "service_id" not in path_parameters:
        return st.just(path_parameters)
    return st.one_of(
        st.just(path_parameters),
        st.sampled_from(sorted(SERVICES)).map(lambda sid: {**path_parameters, "service_id": sid}),
    )


@schema.hook
def flatmap_case(context: schemathesis.HookContext, case: schemathesis.Case) -> Any:
    # The matching hook name, so that generated bodies get past the first check half of the time.
    service = (case.path_parameters or {}).get("service_id")
    if service not in SERVICES or not isinstance(case.body, dict) or "hook" not in case.body:
        return st.just(case)

    def hooked(matching: bool) -> schemathesis.Case:
        if matching:
            case.body["hook"] = SERVICES[service]
        return case

    return st.booleans().map(hooked)


def error_bodies_are_operation_outcomes(ctx: Any, response: schemathesis.Response, case: Any) -> bool:
    status = response.status_code
    if status >= 400:
        body = orjson.loads(response.content)
        assert body.get("resourceType") == "OperationOutcome", f"{status} without an OperationOutcome"
        assert body["issue"] and all(issue.get("diagnostics") for issue in body["issue"]), body
    return True


def service_answers_are_valid_cds_hooks(ctx: Any, response: schemathesis.Response, case: Any) -> bool:
    if case.operation.path == "/cds-services/{service_id}" and response.status_code == 200:
        problems = response_problems(orjson.loads(response.content))
        assert not problems, f"invalid CDS Hooks response: {problems}"
    if case.operation.path.endswith("/feedback") and response.status_code == 200:
        assert response.content == b"", "feedback is acknowledged with an empty 200"
    return True


CHECKS = [
    not_a_server_error,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.unsupported_method,
    openapi_checks.negative_data_rejection,
    error_bodies_are_operation_outcomes,
    service_answers_are_valid_cds_hooks,
]


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    """The app with the suite's settings (auth off, a fresh database); schemathesis starts its lifespan
    on first use, and it is shut down here."""
    app = create_app(dataclasses.replace(settings, fetch_deadline_seconds=0.2))
    try:
        yield app
    finally:
        asgi.shutdown_lifespans()


@schema.parametrize()
@FUZZ
def test_every_operation(case: schemathesis.Case, app: FastAPI) -> None:
    response = case.call(app=app)
    case.validate_response(response, checks=CHECKS)


def test_a_405_names_the_allowed_methods(app: FastAPI) -> None:
    """RFC 9110: a 405 carries `Allow` (found by the fuzzer's unsupported-method check)."""
    with asgi.get_client(app) as client:
        response = client.request("DELETE", "/cds-services")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET"
        assert response.json()["resourceType"] == "OperationOutcome"
        assert client.request("PUT", "/cds-services/anakinra-order-sign").headers["allow"] == "POST"


def test_the_fuzzed_document_is_the_one_served(app: FastAPI) -> None:
    with asgi.get_client(app) as client:
        assert client.get("/openapi.json").json() == schema.raw_schema
