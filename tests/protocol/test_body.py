"""The body reader every JSON endpoint shares (protocol/body.py), over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest

from tests.test_app import ORDER_SIGN, sandbox_order_sign

GOOD = orjson.dumps(sandbox_order_sign())
FEEDBACK = (
    b'{"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}'
)


NOT_UTF8 = [
    b'{"hook": "\xff"}',
    GOOD.replace(b'"order-sign"', b'"order-\xc3sign"'),  # a truncated two-byte sequence
    GOOD.replace(b'"Patient"', b'"Pat\xed\xa0\x80ient"', 1),  # an encoded surrogate
    FEEDBACK.replace(b'"c"', b'"\xfe"'),
]


@pytest.mark.parametrize("path", [ORDER_SIGN, ORDER_SIGN + "/feedback", "/playground/api/evaluate"])
def test_bytes_that_are_not_utf8_get_a_400(service_with: Callable[..., httpx.Client], path: str) -> None:
    with service_with(playground=True) as client:
        for body in NOT_UTF8:
            response = client.post(path, content=body, headers={"content-type": "application/json"})
            assert response.status_code == 400, (body, response.text)
            outcome = response.json()
            assert outcome["resourceType"] == "OperationOutcome"
            assert "not UTF-8" in outcome["issue"][0]["diagnostics"]
