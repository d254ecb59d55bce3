"""What the longer fuzzing campaign found, each as a plain example over real HTTP (the live service, its
clock fixed at the fixtures' time so that the results sit inside the calculations' windows).

Each was a 500 from a service call, or from the chart image behind a card's link while the card and the
chart page answered 200. Now every call is answered, every chart link on every card opens (the page and
the image), and nothing is logged at ERROR: the value that cannot be computed with is not used, and the
fact that needed it says why.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from cds_service.config import Settings
from tests.conftest import ROOT
from tests.fuzz.strategies import SERVICES, for_service
from tests.fuzz.tokens import sign
from tests.invariants import response_problems
from tests.live import LiveService
from tests.security.keys import EC_KID, ISSUER, PUBLIC_URL, b64url, default_trust

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # just after the newest data of the request below
BASE = orjson.loads((ROOT / "fhir_fixtures" / "requests" / "order-sign-500mg-day.json").read_bytes())
CHART_LINK = re.compile(r"^https?://[^/]+(/charts/[A-Za-z0-9_-]{43})$")
UCUM = "http://unitsofmeasure.org"


@pytest.fixture
def live(settings: Settings, caplog: pytest.LogCaptureFixture) -> Iterator[httpx.Client]:
    caplog.set_level(logging.INFO)
    with (
        LiveService(settings, clock=lambda: NOW) as service,
        httpx.Client(base_url=service.base_url, timeout=30) as client,
    ):
        yield client


def answered_with_charts(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST `body` to every service: a valid 200 each time, and every chart link on every card opens.
    Returns the cards of the order-sign answer."""
    cards: list[dict[str, Any]] = []
    for service_id in sorted(SERVICES):
        response = client.post(
            f"/cds-services/{service_id}", json=for_service(copy.deepcopy(body), service_id)
        )
        assert response.status_code == 200, (service_id, response.text[:1000])
        answer = response.json()
        assert response_problems(answer) == [], service_id
        for card in answer["cards"]:
            for link in card.get("links", ()):
                match = CHART_LINK.match(link["url"])
                if match is None:
                    continue
                page = client.get(match.group(1))
                assert page.status_code == 200, (service_id, link["url"], page.text[:500])
                svg = client.get(match.group(1) + "/chart.svg")
                assert svg.status_code == 200, (service_id, link["url"], svg.text[:500])
                assert "could not be drawn" not in svg.text
        if service_id == "anakinra-order-sign":
            cards = answer["cards"]
    return cards


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]


def labs(body: dict[str, Any], code: str) -> list[dict[str, Any]]:
    entries = body["prefetch"]["labs"]["entry"]
    return [e["resource"] for e in entries if e["resource"]["code"]["coding"][0]["code"] == code]


def ferritins(first: float, second: float, first_at: str = "2026-11-22T23:00:00Z") -> dict[str, Any]:
    """Two ferritins 12 h apart inside the trend window (the older one first)."""
    body = copy.deepcopy(BASE)
    older, newer = labs(body, "2276-4")
    older["valueQuantity"]["value"], older["effectiveDateTime"] = first, first_at
    newer["valueQuantity"]["value"], newer["effectiveDateTime"] = second, "2026-11-23T11:00:00Z"
    return body


def test_the_base_request_has_chart_links_and_a_ferritin_trend(live: httpx.Client) -> None:
    """The examples below start from a request whose cards link to charts, so opening them is tested."""
    cards = answered_with_charts(live, BASE)
    assert any(CHART_LINK.match(link["url"]) for card in cards for link in card.get("links", ()))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (1e-150, 1e10),  # a ratio of 1e160 in 12 h: float-power overflow in the compound growth
        (1e-300, 1e10),  # a ratio past 1.8e308 on the chart's log axis
        (5e-324, 5200),  # the smallest float: the chart's log axis divided by zero
        (1e308, -1e308),  # near +-1e308: the chart's axis limits overflowed
        (1.7976931348623157e308, 1.7976931348623157e308),
    ],
)
def test_extreme_ferritins_inside_the_trend_window_are_answered_and_charted(
    live: httpx.Client, caplog: pytest.LogCaptureFixture, first: float, second: float
) -> None:
    answered_with_charts(live, ferritins(first, second))
    no_errors_logged(caplog)


def test_a_creatinine_that_converts_to_zero_is_not_used_by_the_aki_check(
    live: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """5e-324 mg/L is 0.0 mg/dL: the AKI check divided by it (a 500 on every service)."""
    body = copy.deepcopy(BASE)
    for creatinine in labs(body, "2160-0"):
        creatinine["valueQuantity"].update(value=5e-324, unit="mg/L", code="mg/L")
    answered_with_charts(live, body)
    no_errors_logged(caplog)


def test_a_daily_dose_of_1_7e308_is_could_not_evaluate_and_charted(
    live: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    body = copy.deepcopy(BASE)
    dosage = body["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]
    dosage["doseAndRate"][0]["rateQuantity"]["value"] = 1.7e308
    cards = answered_with_charts(live, body)
    # The maximum-dose check could not run: the one card naming the data it needs speaks for it.
    (merged,) = [c for c in cards if c["extension"]["cds-service-provenance"].get("rules")]
    spoken = {r["ruleId"] for r in merged["extension"]["cds-service-provenance"]["rules"]}
    assert "max-dose" in spoken and "maximum dose" in merged["summary"], merged["summary"]
    no_errors_logged(caplog)


def _prior_order(repeat: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    draft = BASE["context"]["draftOrders"]["entry"][0]["resource"]
    dosage = copy.deepcopy(draft["dosageInstruction"][0])
    if repeat is not None:
        dosage["timing"] = {"repeat": repeat}
    return {
        "resourceType": "MedicationRequest",
        "id": "prior-1",
        "status": "active",
        "intent": "order",
        "authoredOn": "2026-11-20T10:00:00Z",
        "subject": {"reference": "Patient/infusion-m1"},
        "medicationCodeableConcept": draft["medicationCodeableConcept"],
        "dosageInstruction": [dosage],
        **extra,
    }


def _years(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "a", "system": UCUM, "code": "a"}


@pytest.mark.parametrize(
    "order",
    [
        _prior_order({"boundsDuration": _years(9999)}),
        _prior_order({"boundsDuration": _years(1e300)}),
        _prior_order({"boundsDuration": {"value": 1e15, "unit": "d", "system": UCUM, "code": "d"}}),
        _prior_order(dispenseRequest={"expectedSupplyDuration": _years(9999)}),
    ],
    ids=["bounds-9999-years", "bounds-1e300-years", "bounds-1e15-days", "supply-9999-years"],
)
def test_a_prior_order_lasting_past_the_calendar_is_answered_and_charted(
    live: httpx.Client, caplog: pytest.LogCaptureFixture, order: dict[str, Any]
) -> None:
    """boundsDuration 9999 a overflowed the calendar when added to the order's start (a 500 on all three
    services); durations longer than the calendar are now no duration, as dates outside it are no date."""
    body = copy.deepcopy(BASE)
    body["prefetch"]["medications"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": order}],
    }
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["timing"] = {"repeat": {"boundsDuration": _years(9999)}}
    answered_with_charts(live, body)
    no_errors_logged(caplog)


# --- a 500 keeps the connection usable ---------------------------------------------------------------------


def _exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """Send one HTTP/1.1 request on `sock` and read one response (Content-Length framed)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed by the service after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the service mid-body")
        rest += chunk
    return int(head.split(b" ")[1]), head + b"\r\n\r\n" + rest


def _post(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: cds.test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_an_unexpected_500_leaves_the_keep_alive_connection_usable(
    service: LiveService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by fuzzing: after any unexpected 500 the service closed the connection without saying
    `Connection: close`, so the caller's next, valid request on it was reset. The 500 is an
    OperationOutcome, logged once with its traceback, and the next request on the same connection is
    answered."""
    import cds_service.app

    real: Callable[..., Any] = cds_service.app.call_service

    async def failing(runtime: Any, service_id: str, body: bytes, **kwargs: Any) -> Any:
        if b"fail-here" in body:
            raise ZeroDivisionError("an unexpected failure")
        return await real(runtime, service_id, body, **kwargs)

    monkeypatch.setattr(cds_service.app, "call_service", failing)
    good = orjson.dumps(for_service(copy.deepcopy(BASE), "anakinra-order-sign"))
    bad = good.replace(b"rule-tests", b"fail-here")
    port = int(service.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        status, response = _exchange(sock, _post("/cds-services/anakinra-order-sign", bad))
        assert status == 500
        assert b'"resourceType":"OperationOutcome"' in response
        assert b"connection: close" not in response.lower()
        status, response = _exchange(sock, _post("/cds-services/anakinra-order-sign", good))
        assert status == 200, response[:500]
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert [r.getMessage() for r in tracebacks] == [
        "unexpected error on POST /cds-services/anakinra-order-sign"
    ]


def test_an_annotation_unit_on_an_analyte_with_a_molar_mass_is_not_used(
    live: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by the windows fuzzer: a hemoglobin of 0 "{score}" raised pint's "different registries"
    ValueError while converting through hemoglobin's molar mass (a 500 on every service)."""
    body = copy.deepcopy(BASE)
    hemoglobin = copy.deepcopy(labs(body, "2276-4")[0])
    hemoglobin.update(id="hb", code={"coding": [{"system": "http://loinc.org", "code": "718-7"}]})
    hemoglobin["valueQuantity"] = {"value": 0, "unit": "{score}", "system": UCUM, "code": "{score}"}
    body["prefetch"]["labs"]["entry"].append({"resource": hemoglobin})
    answered_with_charts(live, body)
    no_errors_logged(caplog)


# --- tokens (the campaign's token fuzzer, tests/fuzz/test_tokens.py) ----------------------------------------


@pytest.mark.parametrize(
    ("header", "claims", "reason"),
    [
        ({"alg": "\u2603"}, {}, "algorithm-not-allowed"),
        ({"kid": "\u00e9\u2603"}, {}, None),
        ({}, {"iss": "\u2603"}, "unknown-issuer"),
        ({}, {"exp": math.nan}, "malformed-token"),
        ({}, {"exp": math.inf}, "malformed-token"),
        ({}, {"exp": 1e20}, "malformed-token"),
        ({}, {"iat": math.nan}, "malformed-token"),
        ({}, {"nbf": "tomorrow"}, "malformed-token"),
    ],
)
def test_a_token_the_verifier_cannot_read_is_a_401_over_http(
    service_with: Callable[..., httpx.Client],
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
    header: dict[str, Any],
    claims: dict[str, Any],
    reason: str | None,
) -> None:
    """Found by the token fuzzer: a non-Latin-1 alg, kid or iss went into the 401's WWW-Authenticate
    header, which cannot hold it (a 500); an exp of NaN, Infinity or 1e20 gave a 500 and an iat of NaN
    passed every time check. Each is a 401 with an ASCII challenge."""
    client = service_with(insecure_no_auth=False, trust_file=default_trust(tmp_path), public_url=PUBLIC_URL)
    now = int(time.time())
    head = {"alg": "ES384", "typ": "JWT", "kid": EC_KID, **header}
    body = {
        "iss": ISSUER,
        "aud": PUBLIC_URL + "/cds-services",
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    first, second = b64url(json.dumps(head).encode()), b64url(json.dumps(body | claims).encode())
    token = f"{first}.{second}.{sign(first, second)}"
    response = client.get("/cds-services", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.isascii() and challenge.startswith('Bearer error="invalid_token"')
    if reason is not None:
        assert response.json()["issue"][0]["diagnostics"].endswith(f"({reason})")
    no_errors_logged(caplog)
