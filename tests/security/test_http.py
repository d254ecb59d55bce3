"""Authentication over real HTTP: the live service with a trust file, its 401s, and its audit trail."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cds_service.cli import main
from cds_service.store.database import Store
from tests.conftest import RULES
from tests.security.keys import (
    ISSUER,
    PUBLIC_URL,
    RSA_KID,
    TENANT,
    default_trust,
    ec_key,
    mint,
    rsa_key,
)
from tests.test_app import ORDER_SIGN, sandbox_anakinra_order_sign, sandbox_order_sign

DISCOVERY = "/cds-services"
FEEDBACK = ORDER_SIGN + "/feedback"
JWT_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.")
# "Bearer <JWT>" is how refusals tell the caller what to send, and `Bearer error="invalid_token"` is the
# 401's challenge (which the test client's own debug log shows); "Bearer" followed by anything else would
# be an Authorization header that was written down.
BEARER_VALUE = re.compile(r"Bearer\s+(?!<JWT>|error=)", re.IGNORECASE)

# The audit records each rule with the version its file declares.
MAX_DOSE_VERSION = str(yaml.safe_load((RULES / "max-dose.yaml").read_text())["version"])


def token_for(path: str, **changes: Any) -> str:
    return mint(ec_key(), aud=PUBLIC_URL + path, **changes)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def dosed_order_sign() -> dict[str, Any]:
    """The sandbox's order-sign call, ordering anakinra 3000 mg/day: the max-dose rule fires."""
    body = sandbox_order_sign()
    body["context"]["draftOrders"]["entry"][0]["resource"].update(
        intent="order",
        medicationCodeableConcept={"text": "anakinra"},
        dosageInstruction=[
            {
                "route": {"text": "IV"},
                "doseAndRate": [
                    {
                        "rateQuantity": {
                            "value": 3000,
                            "unit": "mg/d",
                            "system": "http://unitsofmeasure.org",
                            "code": "mg/d",
                        }
                    }
                ],
            }
        ],
    )
    return body


def feedback_body(card: str = "card-1") -> dict[str, Any]:
    item = {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:20:00Z"}
    return {"feedback": [item]}


def outcome(response: httpx.Response) -> tuple[str, str]:
    """(issue code, diagnostics) of a one-issue OperationOutcome."""
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    (issue,) = body["issue"]
    return issue["code"], issue["diagnostics"]


def reason(response: httpx.Response) -> str:
    """The reason code at the end of a 401's diagnostics, e.g. 'replayed'."""
    assert response.status_code == 401, response.text
    code, diagnostics = outcome(response)
    assert code == "login"
    match = re.search(r"\(([a-z-]+)\)$", diagnostics)
    assert match, diagnostics
    return match.group(1)


def assert_no_token(text: str, tokens: list[str], where: str = "") -> None:
    assert tokens, "no tokens to look for: the check would prove nothing"
    for token in tokens:
        assert token not in text, where
        assert token.split(".")[2] not in text, where  # not even the signature alone
    assert not JWT_SHAPED.search(text), (where, text)
    assert not BEARER_VALUE.search(text), (where, text)


def wait_for_refusals(database_url: str, total: int) -> list[dict[str, Any]]:
    """The refused-call counts once `total` refusals are written (they are written every 0.1 s)."""
    deadline = time.monotonic() + 10
    while True:
        rows = Store(database_url).refusals()
        if sum(row["count"] for row in rows) >= total or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_unsigned_discovery_is_401_login_with_the_reason(secured: httpx.Client) -> None:
    response = secured.get(DISCOVERY)
    assert response.status_code == 401
    code, diagnostics = outcome(response)
    assert code == "login"
    assert "no Authorization header" in diagnostics and "(missing-token)" in diagnostics
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert "no Authorization header" in challenge
    assert "services" not in response.json()


def test_signed_discovery_is_200(secured: httpx.Client) -> None:
    response = secured.get(DISCOVERY, headers=auth(token_for(DISCOVERY)))
    assert response.status_code == 200, response.text
    assert {s["id"] for s in response.json()["services"]} >= {"anakinra-order-sign"}


def test_rs384_token_is_accepted_over_http(secured: httpx.Client) -> None:
    token = mint(rsa_key(), alg="RS384", kid=RSA_KID, aud=PUBLIC_URL + DISCOVERY)
    assert secured.get(DISCOVERY, headers=auth(token)).status_code == 200


# Built when the test runs, not when it is collected: a token minted at collection could expire first.
BAD_AUTHORIZATIONS: dict[str, tuple[Callable[[], str], str]] = {
    "garbage": (lambda: "Bearer garbage", "malformed-token"),
    "basic": (lambda: "Basic dXNlcjpwYXNzd29yZA==", "malformed-token"),
    "forged": (lambda: "Bearer " + mint(ec_key("attacker"), aud=PUBLIC_URL + DISCOVERY), "bad-signature"),
    "stranger": (
        lambda: "Bearer " + mint(ec_key(), aud=PUBLIC_URL + DISCOVERY, iss="https://evil.example"),
        "unknown-issuer",
    ),
    "expired": (
        lambda: "Bearer " + token_for(DISCOVERY, iat=int(time.time()) - 900, exp=int(time.time()) - 600),
        "expired",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_AUTHORIZATIONS))
def test_bad_tokens_are_401_with_their_reason(secured: httpx.Client, case: str) -> None:
    make, expected = BAD_AUTHORIZATIONS[case]
    response = secured.get(DISCOVERY, headers={"Authorization": make()})
    assert reason(response) == expected
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_signed_service_call_answers_once_then_is_a_replay(secured: httpx.Client) -> None:
    token = token_for(ORDER_SIGN)
    response = secured.post(ORDER_SIGN, json=sandbox_anakinra_order_sign(), headers=auth(token))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert "incomplete-data" in [c["extension"]["cds-service-provenance"]["ruleId"] for c in cards]
    again = secured.post(ORDER_SIGN, json=sandbox_anakinra_order_sign(), headers=auth(token))
    assert reason(again) == "replayed"
    assert "cards" not in again.json()


def test_discovery_token_on_the_service_path_is_wrong_audience(
    secured: httpx.Client, database_url: str
) -> None:
    response = secured.post(ORDER_SIGN, json=sandbox_order_sign(), headers=auth(token_for(DISCOVERY)))
    assert reason(response) == "wrong-audience"
    assert Store(database_url).issued_cards() == []  # refused before any rule ran


def test_refusal_comes_before_the_body_is_read(secured: httpx.Client) -> None:
    response = secured.post(ORDER_SIGN, content=b"{not json", headers={"content-type": "application/json"})
    assert reason(response) == "missing-token"


def test_feedback_needs_its_own_audience(secured: httpx.Client, database_url: str) -> None:
    wrong = secured.post(FEEDBACK, json=feedback_body("c1"), headers=auth(token_for(ORDER_SIGN)))
    assert reason(wrong) == "wrong-audience"
    assert secured.post(FEEDBACK, json=feedback_body("c2")).status_code == 401
    assert Store(database_url).feedback() == []
    right = secured.post(FEEDBACK, json=feedback_body("c3"), headers=auth(token_for(FEEDBACK)))
    assert right.status_code == 200, right.text
    assert [row["card_uuid"] for row in Store(database_url).feedback()] == ["c3"]
    # ... and a feedback token is no good for the service itself.
    service = secured.post(ORDER_SIGN, json=sandbox_order_sign(), headers=auth(token_for(FEEDBACK)))
    assert reason(service) == "wrong-audience"


def test_the_host_header_does_not_change_the_expected_audience(secured: httpx.Client) -> None:
    evil = mint(ec_key(), aud="https://evil.example" + DISCOVERY)
    response = secured.get(DISCOVERY, headers={**auth(evil), "Host": "evil.example"})
    assert reason(response) == "wrong-audience"
    forwarded = mint(ec_key(), aud="https://evil.example" + DISCOVERY)
    headers = {**auth(forwarded), "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    assert reason(secured.get(DISCOVERY, headers=headers)) == "wrong-audience"
    # Our own audience is right whatever Host says.
    ours = secured.get(DISCOVERY, headers={**auth(token_for(DISCOVERY)), "Host": "evil.example"})
    assert ours.status_code == 200


def test_healthz_answers_without_a_token(secured: httpx.Client, database_url: str) -> None:
    response = secured.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert secured.get(DISCOVERY).status_code == 401  # while the rest is guarded
    assert sum(row["count"] for row in wait_for_refusals(database_url, 1)) == 1  # healthz is not counted
    assert Store(database_url).audit() == []


def test_cors_preflight_needs_no_token(secured: httpx.Client) -> None:
    response = secured.options(
        ORDER_SIGN,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


class Flow:
    """Calls of every kind, good and refused, and what the audit trail must say of them."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.tokens: list[str] = []
        self.statuses: list[tuple[str, int]] = []

    def token(self, path: str, **changes: Any) -> str:
        token = token_for(path, **changes)
        self.tokens.append(token)
        return token

    def call(self, method: str, path: str, token: str | None, body: Any = None) -> httpx.Response:
        headers = auth(token) if token else {}
        response = self.client.request(method, path, json=body, headers=headers)
        self.statuses.append((path, response.status_code))
        return response

    def run(self) -> dict[str, Any]:
        assert self.call("GET", DISCOVERY, None).status_code == 401
        assert self.call("GET", DISCOVERY, self.token(DISCOVERY, sub="Practitioner/d")).status_code == 200
        service_token = self.token(ORDER_SIGN, sub="Practitioner/123")
        answer = self.call("POST", ORDER_SIGN, service_token, dosed_order_sign())
        assert answer.status_code == 200, answer.text
        assert reason(self.call("POST", ORDER_SIGN, service_token, dosed_order_sign())) == "replayed"
        wrong = self.call("POST", ORDER_SIGN, self.token(DISCOVERY), sandbox_order_sign())
        assert reason(wrong) == "wrong-audience"
        feedback = self.call("POST", FEEDBACK, self.token(FEEDBACK), feedback_body())
        assert feedback.status_code == 200
        body: dict[str, Any] = answer.json()
        return body


def test_audit_trail_has_every_call_and_no_token(
    secured: httpx.Client, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    flow = Flow(secured)
    answer = flow.run()
    assert secured.get("/healthz").status_code == 200

    rows = Store(database_url).audit()
    # Authenticated calls have full rows; refused ones are counted per minute, source and reason.
    assert [(r["endpoint"], r["status"]) for r in rows] == [
        ("discovery", 200),
        ("service", 200),
        ("feedback", 200),
    ]
    refused = wait_for_refusals(database_url, 3)
    assert sorted((r["endpoint"], r["reason"], r["count"], r["source"]) for r in refused) == [
        ("discovery", "missing-token", 1, "127.0.0.1"),
        ("service", "replayed", 1, "127.0.0.1"),
        ("service", "wrong-audience", 1, "127.0.0.1"),
    ]
    assert all(r["minute"].second == 0 and r["minute"].microsecond == 0 for r in refused)
    discovery, served, feedback = rows
    assert (discovery["issuer"], discovery["tenant"], discovery["subject"]) == (
        ISSUER,
        TENANT,
        "Practitioner/d",
    )
    body = sandbox_order_sign()
    assert served["issuer"] == ISSUER
    assert served["tenant"] == TENANT
    assert served["subject"] == "Practitioner/123"
    assert served["service_id"] == "anakinra-order-sign"
    assert served["hook_instance"] == body["hookInstance"]
    assert served["patient_id"] == body["context"]["patientId"] == "p1"
    assert served["card_uuids"] == [card["uuid"] for card in answer["cards"]]
    issued_by = {c["extension"]["cds-service-provenance"]["ruleId"] for c in answer["cards"]}
    assert {"incomplete-data", "max-dose"} <= issued_by
    # Every rule that fired or could not evaluate is recorded, with its version; rules that passed are not.
    assert {"id": "max-dose", "version": MAX_DOSE_VERSION, "status": "fired"} in served["rules"]
    assert all(r["status"] in ("fired", "unknown") for r in served["rules"])
    assert served["reason"] is None
    assert feedback["issuer"] == ISSUER
    assert all(isinstance(r["process"], int) and r["latency_ms"] >= 0 for r in rows)

    for row in rows + refused:
        for column, value in row.items():
            assert_no_token(json.dumps(value, default=str), flow.tokens, column)
    # The log says what happened, and nothing of the tokens.
    assert "(replayed)" in caplog.text and "wrong-audience" in caplog.text
    assert_no_token(caplog.text, flow.tokens)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(list(argv)) == 0
    return capsys.readouterr().out.splitlines()


@pytest.fixture
def audited(secured: httpx.Client, capsys: pytest.CaptureFixture[str]) -> tuple[Flow, dict[str, Any]]:
    """The service after a Flow of calls: (the flow, the answer of its one served service call)."""
    flow = Flow(secured)
    answer = flow.run()
    capsys.readouterr()
    return flow, answer


def test_audit_command_prints_the_call(
    audited: tuple[Flow, dict[str, Any]], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flow, answer = audited
    hook_instance = sandbox_order_sign()["hookInstance"]
    (line,) = _cli(capsys, "audit", "--database-url", database_url, "--hook-instance", hook_instance)
    assert " 200 service " in line
    assert f"hookInstance={hook_instance}" in line
    assert "patient=p1" in line
    assert f"issuer={ISSUER}" in line and f"tenant={TENANT}" in line
    assert f"cards={','.join(card['uuid'] for card in answer['cards'])}" in line
    assert f"max-dose@{MAX_DOSE_VERSION}:fired" in line.partition("rules=")[2]
    assert_no_token(line, flow.tokens)

    everything = _cli(capsys, "audit", "--database-url", database_url)
    assert len(everything) == 3
    # The feedback call names the card it was about (here one never issued: no rule to name).
    (feedback,) = [line for line in everything if " 200 feedback " in line]
    assert "cards=card-1" in feedback and "rules=unknown-card@-:overridden(card-1)" in feedback
    assert_no_token("\n".join(everything), flow.tokens)
    wait_for_refusals(database_url, 3)
    refusals = _cli(capsys, "audit", "--database-url", database_url, "--refusals")
    assert sorted(line.split(" ", 1)[1] for line in refusals) == [
        "discovery source=127.0.0.1 reason=missing-token count=1",
        "service source=127.0.0.1 reason=replayed count=1",
        "service source=127.0.0.1 reason=wrong-audience count=1",
    ]
    patient = _cli(capsys, "audit", "--database-url", database_url, "--patient", "p1")
    assert len(patient) == 1 and f"hookInstance={hook_instance}" in patient[0]
    assert len(_cli(capsys, "audit", "--database-url", database_url, "--limit", "2")) == 2


def test_audit_command_json_lines(
    audited: tuple[Flow, dict[str, Any]], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flow, answer = audited
    hook_instance = sandbox_order_sign()["hookInstance"]
    lines = _cli(capsys, "audit", "--database-url", database_url, "--json")
    rows = [json.loads(line) for line in lines]
    assert [(r["endpoint"], r["status"]) for r in rows] == [e for e in _endpoints(flow) if e[1] != 401]
    (served,) = [r for r in rows if r["hook_instance"] == hook_instance]
    assert served["card_uuids"] == [card["uuid"] for card in answer["cards"]]
    assert {"id": "max-dose", "version": MAX_DOSE_VERSION, "status": "fired"} in served["rules"]
    assert (served["issuer"], served["tenant"], served["subject"]) == (ISSUER, TENANT, "Practitioner/123")
    assert_no_token("\n".join(lines), flow.tokens)
    selected = _cli(
        capsys, "audit", "--database-url", database_url, "--hook-instance", hook_instance, "--json"
    )
    assert [json.loads(line)["hook_instance"] for line in selected] == [hook_instance]


def _endpoints(flow: Flow) -> list[tuple[str, int]]:
    kinds = {DISCOVERY: "discovery", ORDER_SIGN: "service", FEEDBACK: "feedback"}
    return [(kinds[path], status) for path, status in flow.statuses]


def test_audit_since_in_the_future_prints_nothing(
    audited: tuple[Flow, dict[str, Any]], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert _cli(capsys, "audit", "--database-url", database_url, "--since", tomorrow) == []
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%MZ")
    assert len(_cli(capsys, "audit", "--database-url", database_url, "--since", yesterday)) == 3


def test_audit_since_with_a_utc_offset_means_that_instant(
    secured: httpx.Client, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--since 2026-11-23T10:00+02:00` is 08:00 UTC: a call at 09:00 UTC is after it."""
    assert secured.get(DISCOVERY, headers=auth(token_for(DISCOVERY))).status_code == 200
    capsys.readouterr()
    half_an_hour_ago = datetime.now(UTC) - timedelta(minutes=30)
    for hours in (2, -5):
        since = half_an_hour_ago.astimezone(timezone(timedelta(hours=hours))).isoformat()
        assert len(_cli(capsys, "audit", "--database-url", database_url, "--since", since)) == 1, since
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5)))
    assert _cli(capsys, "audit", "--database-url", database_url, "--since", in_an_hour.isoformat()) == []


def test_without_authentication_every_request_log_line_says_so(
    service_with: Callable[..., httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    http = service_with(insecure_no_auth=True)
    with caplog.at_level(logging.INFO, logger="cds_service"):
        assert http.get(DISCOVERY).status_code == 200
        assert http.post(ORDER_SIGN, json=sandbox_order_sign()).status_code == 200
    lines = [
        r.getMessage() for r in caplog.records if r.name == "cds_service" and "service=" in r.getMessage()
    ]
    assert len(lines) == 2, lines
    assert all(line.startswith("INSECURE: authentication is OFF") for line in lines), lines


# Malformed tokens over HTTP (issue 16): a 401 and one log line each, never a 500 with a traceback


@pytest.mark.parametrize(
    "header",
    [{"alg": "ES384\u2603"}, {"kid": "k\u2603"}, {"typ": "J\u00e9WT\u2603"}, {"alg": "\u00e9" * 3000}],
)
def test_non_latin1_token_headers_get_a_401_and_one_log_line(
    secured: httpx.Client, caplog: pytest.LogCaptureFixture, header: dict[str, Any]
) -> None:
    from tests.security.keys import EC_KID, unsigned

    claims = {"iss": "https://\u2603.example", "aud": PUBLIC_URL + DISCOVERY, "iat": 1, "exp": 2, "jti": "j"}
    forged = unsigned({"alg": "ES384", "typ": "JWT", "kid": EC_KID, **header}, claims, b"sig")
    with caplog.at_level(logging.INFO):
        response = secured.get(DISCOVERY, headers=auth(forged))
    reason(response)  # a 401 with a reason code
    assert response.headers["www-authenticate"].isascii()
    records = [r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("cds_service")]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].exc_info is None and "Traceback" not in caplog.text
    assert len(records[0].getMessage()) < 1000


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": float("nan"), "exp": 4_000_000_000},
        {"exp": float("nan")},
        {"exp": float("inf")},
        {"exp": 1e20},
        {"nbf": "tomorrow"},
        {"aud": [PUBLIC_URL + DISCOVERY]},
    ],
)
def test_tokens_with_no_times_or_a_list_audience_get_a_401(
    secured: httpx.Client, claims: dict[str, Any]
) -> None:
    now = int(time.time())
    values: dict[str, Any] = {"iat": now, "exp": now + 300, **claims}
    aud = values.pop("aud", PUBLIC_URL + DISCOVERY)
    signed = mint(ec_key(), aud=aud, iat=values.pop("iat"), exp=values.pop("exp"), claims=values)
    response = secured.get(DISCOVERY, headers=auth(signed))
    assert reason(response) in ("malformed-token", "wrong-audience")


def test_an_oversized_authorization_header_is_a_401_malformed_token(secured: httpx.Client) -> None:
    response = secured.get(DISCOVERY, headers={"Authorization": "Bearer " + "e" * 20_000})
    assert reason(response) == "malformed-token"


@pytest.mark.integration
def test_a_token_used_before_a_restart_is_still_a_replay_after_it(
    settings: Any, tmp_path: Path, database_url: str
) -> None:
    import dataclasses

    from tests.live import LiveService

    secured_settings = dataclasses.replace(
        settings, insecure_no_auth=False, trust_file=default_trust(tmp_path), public_url=PUBLIC_URL
    )
    token = token_for(DISCOVERY)
    with LiveService(secured_settings) as first:
        assert httpx.get(first.base_url + DISCOVERY, headers=auth(token)).status_code == 200
    with LiveService(secured_settings) as second:  # a new process's worth of state, the same database
        assert reason(httpx.get(second.base_url + DISCOVERY, headers=auth(token))) == "replayed"
