"""Tokens and headers: the service with authentication on, called with mutated JWTs and odd headers.

Tokens are signed with the trust file's test key, so a mutated header or claim is read past the
signature check (tests/fuzz/tokens.py). Whatever arrives, the answer is 200 (a valid token) or a refusal
with an OperationOutcome (401 for the token, 415 for the body's type), never a 5xx; a call answered 200
has its audit row, whatever its claims hold; and nothing is logged at ERROR or with a traceback.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import event, given
from hypothesis import strategies as st

from cds_service.app import create_app
from cds_service.config import Settings
from cds_service.store.database import Store
from tests.fuzz import FUZZ_CHARTS
from tests.fuzz.tokens import authorizations
from tests.fuzz.watch import Call, LogWatch, in_process
from tests.invariants import response_problems
from tests.security.keys import PUBLIC_URL, default_trust
from tests.test_app import sandbox_order_sign

SERVICE = "/cds-services/anakinra-order-sign"
ENDPOINTS = [("POST", SERVICE), ("GET", "/cds-services"), ("POST", SERVICE + "/feedback")]
CONTENT_TYPES = [
    b"application/json",
    b"application/json; charset=utf-8",
    b"APPLICATION/JSON",
    b"application/fhir+json",
    b"text/plain",
    b"application/json; charset=latin-1",
    b"application/json\xff",
    b"",
]
ORIGINS = [b"https://ehr.example.org", b"null", b"\xff", b"x" * 2000]


@pytest.fixture
def secured(settings: Settings, tmp_path: Path) -> Iterator[tuple[Call, LogWatch, Store]]:
    changed = dataclasses.replace(
        settings, insecure_no_auth=False, trust_file=default_trust(tmp_path), public_url=PUBLIC_URL
    )
    store = Store(settings.database_url)
    try:
        with in_process(create_app(changed)) as (call, watch):
            yield call, watch, store
    finally:
        store.close()


@FUZZ_CHARTS
@given(endpoint=st.sampled_from(ENDPOINTS), data=st.data())
def test_mutated_tokens_and_headers_are_answered_or_refused(
    secured: tuple[Call, LogWatch, Store], endpoint: tuple[str, str], data: st.DataObject
) -> None:
    call, watch, store = secured
    method, path = endpoint
    headers: list[tuple[bytes, bytes]] = [
        (b"authorization", value) for value in data.draw(authorizations(PUBLIC_URL + path), label="auth")
    ]
    hook_instance = str(uuid.uuid4())
    content = None
    if method == "POST":
        headers.append((b"content-type", data.draw(st.sampled_from(CONTENT_TYPES), label="type")))
        if path == SERVICE:
            content = orjson.dumps(dict(sandbox_order_sign(), hookInstance=hook_instance))
        else:
            item = {
                "card": str(uuid.uuid4()),
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-23T10:20:00Z",
            }
            content = orjson.dumps({"feedback": [item]})
    if data.draw(st.booleans(), label="origin"):
        headers.append((b"origin", data.draw(st.sampled_from(ORIGINS), label="origin value")))
    watch.clear()
    response = call(method, path, content=content, headers=headers)
    event(f"{method} {path.rsplit('/', 1)[-1]}: {response.status_code}")
    assert response.status_code in (200, 400, 401, 404, 415), (response.status_code, response.text[:1000])
    if response.status_code != 200:
        outcome = OperationOutcome.model_validate(response.json())
        assert outcome.issue and all(issue.diagnostics for issue in outcome.issue), response.text
    elif path == SERVICE:
        assert response_problems(response.json()) == []
        # Whatever the claims hold (a sub of 300 characters, a NUL), the call's audit row is kept.
        rows = store.audit(hook_instance=hook_instance)
        assert [row["status"] for row in rows] == [200], rows
    assert watch.problems() == []
