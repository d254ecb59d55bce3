"""Server-side request forgery through fhirServer, over real HTTP (issue 16): a signed caller cannot make
the service fetch from anywhere but its own FHIR servers, and learns nothing of what they said."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.cards.render import PROVENANCE_KEY
from tests.fhirserver import FhirTestServer
from tests.security.keys import ISSUER, PUBLIC_URL, TENANT, write_jwks, write_trust
from tests.security.test_http import auth, token_for
from tests.test_app import ORDER_SIGN, _fetching_request


def _trust(folder: Path, **entry: Any) -> Path:
    write_jwks(folder / "ehr-jwks.json")
    return write_trust(
        folder / "trust.json", [{"iss": ISSUER, "jwks_file": "ehr-jwks.json", "tenant": TENANT, **entry}]
    )


def _call(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post(ORDER_SIGN, json=body, headers=auth(token_for(ORDER_SIGN)))


def _diagnostics(response: httpx.Response) -> str:
    return " | ".join(issue["diagnostics"] for issue in response.json()["issue"])


@pytest.fixture
def start(service_with: Callable[..., httpx.Client], tmp_path: Path) -> Callable[..., httpx.Client]:
    """The service with authentication on; `fetch_allow_private` is off unless a test turns it on."""

    def started(fetch_allow_private: bool = False, **entry: Any) -> httpx.Client:
        return service_with(
            insecure_no_auth=False,
            trust_file=_trust(tmp_path, **entry),
            public_url=PUBLIC_URL,
            fetch_allow_private=fetch_allow_private,
        )

    return started


def test_a_fhir_server_off_the_issuers_list_is_refused_before_connecting(
    start: Callable[..., httpx.Client], fhir_server: FhirTestServer
) -> None:
    client = start(fhir_servers=["https://ehr.example.org/fhir"])
    response = _call(client, _fetching_request(fhir_server))
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "security"
    assert "not one of the FHIR servers trusted for this issuer" in _diagnostics(response)
    assert fhir_server.requests == []


def test_a_listed_fhir_server_is_fetched_from_even_on_loopback(
    start: Callable[..., httpx.Client], fhir_server: FhirTestServer
) -> None:
    client = start(fhir_servers=[fhir_server.base_url])
    fhir_server.required_token = "secret-token-123"
    response = _call(client, _fetching_request(fhir_server))
    assert response.status_code == 200, response.text
    assert {r.authorization for r in fhir_server.requests} == {"Bearer secret-token-123"}


@pytest.mark.parametrize(
    "fhir_server_url",
    [
        "{loopback}",
        "http://169.254.169.254/latest/meta-data",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.7/fhir",
        "https://[::1]:8443/fhir",
        "http://ehr.example.org/fhir",
    ],
)
def test_without_a_list_private_destinations_and_plain_http_are_refused(
    start: Callable[..., httpx.Client], fhir_server: FhirTestServer, fhir_server_url: str
) -> None:
    client = start()
    body = _fetching_request(fhir_server)
    body["fhirServer"] = fhir_server_url.format(loopback=fhir_server.base_url)
    response = _call(client, body)
    assert response.status_code == 400, response.text
    assert "fhirServer" in _diagnostics(response)
    assert fhir_server.requests == []


def test_a_name_that_resolves_to_a_private_address_is_not_connected_to(
    start: Callable[..., httpx.Client], fhir_server: FhirTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "ehr.internal.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    client = start()
    body = _fetching_request(fhir_server)
    body["fhirServer"] = f"https://ehr.internal.example:{httpx.URL(fhir_server.base_url).port}/fhir"
    response = _call(client, body)
    assert response.status_code == 412, response.text
    assert "loopback, private or reserved" in _diagnostics(response)
    assert fhir_server.requests == []


def test_with_auth_off_the_same_policy_holds(
    service_with: Callable[..., httpx.Client], fhir_server: FhirTestServer
) -> None:
    refusing = service_with(fetch_allow_private=False)
    response = refusing.post(ORDER_SIGN, json=_fetching_request(fhir_server))
    assert response.status_code == 400
    assert fhir_server.requests == []
    allowing = service_with(fetch_allow_private=True)
    assert allowing.post(ORDER_SIGN, json=_fetching_request(fhir_server)).status_code == 200


def test_no_upstream_detail_reaches_a_card(
    start: Callable[..., httpx.Client], fhir_server: FhirTestServer
) -> None:
    client = start(fhir_servers=[fhir_server.base_url])
    fhir_server.include_outcome = True  # an OperationOutcome saying "search truncated" in the Bundle
    response = _call(client, _fetching_request(fhir_server))
    assert response.status_code == 200
    (card,) = [
        c for c in response.json()["cards"] if c["extension"][PROVENANCE_KEY]["ruleId"] == "incomplete-data"
    ]
    assert "search truncated" not in card["detail"]
    assert "issue code incomplete" in card["detail"]


def test_a_never_ending_answer_is_cut_and_the_call_answered(
    service_with: Callable[..., httpx.Client], fhir_server: FhirTestServer
) -> None:
    client = service_with(
        fetch_allow_private=True, fetch_max_answer_bytes=2_000_000, fetch_deadline_seconds=5
    )
    fhir_server.padded_body = -1
    body = _fetching_request(fhir_server)
    response = client.post(ORDER_SIGN, json=body)
    assert response.status_code == 412
    # Reading stopped at the cap, well inside the 5 s deadline, for every key it was asked for.
    assert "larger than 2000000 bytes; reading stopped" in _diagnostics(response)
    assert "deadline" not in _diagnostics(response)
