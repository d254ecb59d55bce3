"""A captured exchange reads as the hook request it holds, wherever a request is read from a file."""

from __future__ import annotations

from cds_service.protocol.capture import captured_body
from tests.conftest import sandbox_capture


def test_a_capture_reads_as_its_body_and_a_request_as_itself() -> None:
    capture = sandbox_capture("order-sign-request.json")
    assert captured_body(capture) is capture["body"]
    assert captured_body(capture["body"]) is capture["body"]


def test_a_request_that_has_a_body_field_of_its_own_is_not_unwrapped() -> None:
    request = {"hook": "order-sign", "body": {"hook": "patient-view"}}
    assert captured_body(request) is request
    assert captured_body([1]) == [1]
