"""Feedback is bound to the card it names (issue 16): the same issuer and service that got the card, and
override reasons it offered (others are kept, flagged), over real HTTP with two trusted issuers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.store.database import Store
from tests.security.keys import EC_KID, ISSUER, PUBLIC_URL, ec_key, jwks, mint, write_jwks, write_trust
from tests.security.test_http import dosed_order_sign
from tests.test_app import ORDER_SIGN

OTHER = "https://other-ehr.example.org"
OTHER_KID = "other-2026"
PATIENT_VIEW = "/cds-services/mas-patient-view"


def _headers(path: str, issuer: str = ISSUER) -> dict[str, str]:
    key, kid = (ec_key(), EC_KID) if issuer == ISSUER else (ec_key("other"), OTHER_KID)
    return {"Authorization": f"Bearer {mint(key, kid=kid, iss=issuer, aud=PUBLIC_URL + path)}"}


@pytest.fixture
def two_issuers(service_with: Callable[..., httpx.Client], tmp_path: Path) -> httpx.Client:
    write_jwks(tmp_path / "ehr.json")
    write_jwks(tmp_path / "other.json", jwks((ec_key("other"), OTHER_KID, "ES384")))
    trust = write_trust(
        tmp_path / "trust.json",
        [
            {"iss": ISSUER, "jwks_file": "ehr.json", "tenant": "hospital-a"},
            {"iss": OTHER, "jwks_file": "other.json", "tenant": "hospital-b"},
        ],
    )
    return service_with(insecure_no_auth=False, trust_file=trust, public_url=PUBLIC_URL)


def _max_dose_card(client: httpx.Client) -> dict[str, Any]:
    response = client.post(ORDER_SIGN, json=dosed_order_sign(), headers=_headers(ORDER_SIGN))
    assert response.status_code == 200, response.text
    (card,) = [
        c
        for c in response.json()["cards"]
        if c["extension"]["cds-service-provenance"]["ruleId"] == "max-dose"
    ]
    assert card["overrideReasons"]
    return card


def _overridden(card: str, code: str | None = None, system: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:20:00Z"}
    if code:
        item["overrideReason"] = {"reason": {"code": code, **({"system": system} if system else {})}}
    return {"feedback": [item]}


def test_feedback_from_another_issuer_is_refused(two_issuers: httpx.Client, database_url: str) -> None:
    card = _max_dose_card(two_issuers)
    feedback = ORDER_SIGN + "/feedback"
    refused = two_issuers.post(feedback, json=_overridden(card["uuid"]), headers=_headers(feedback, OTHER))
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["code"] == "forbidden"
    assert Store(database_url).feedback() == []
    accepted = two_issuers.post(feedback, json=_overridden(card["uuid"]), headers=_headers(feedback))
    assert accepted.status_code == 200
    (row,) = Store(database_url).feedback()
    assert row["issuer"] == ISSUER


def test_feedback_through_another_service_is_refused(two_issuers: httpx.Client, database_url: str) -> None:
    card = _max_dose_card(two_issuers)
    feedback = PATIENT_VIEW + "/feedback"
    refused = two_issuers.post(feedback, json=_overridden(card["uuid"]), headers=_headers(feedback))
    assert refused.status_code == 400
    assert Store(database_url).feedback() == []


def test_an_override_reason_the_card_did_not_offer_is_kept_flagged(
    two_issuers: httpx.Client, database_url: str
) -> None:
    card = _max_dose_card(two_issuers)
    offered = card["overrideReasons"][0]
    feedback = ORDER_SIGN + "/feedback"
    for minute, (code, system) in enumerate(
        [
            (offered["code"], offered["system"]),  # as offered
            (offered["code"], None),  # the code alone, as some EHRs echo it
            ("made-up", offered["system"]),
            (offered["code"], "https://evil.example/reasons"),
        ]
    ):
        item = _overridden(card["uuid"], code, system)
        item["feedback"][0]["outcomeTimestamp"] = f"2026-11-23T10:2{minute}:00Z"
        assert two_issuers.post(feedback, json=item, headers=_headers(feedback)).status_code == 200
    rows = Store(database_url).feedback()
    assert [(r["override_code"], r["override_system"], r["reason_offered"]) for r in rows] == [
        (offered["code"], offered["system"], True),
        (offered["code"], None, True),
        ("made-up", offered["system"], False),
        (offered["code"], "https://evil.example/reasons", False),
    ]


def test_feedback_on_an_unknown_card_is_still_stored_and_counted_apart(
    two_issuers: httpx.Client, database_url: str
) -> None:
    feedback = ORDER_SIGN + "/feedback"
    response = two_issuers.post(feedback, json=_overridden("never-issued", "x"), headers=_headers(feedback))
    assert response.status_code == 200
    (row,) = Store(database_url).feedback()
    assert (row["issuer"], row["reason_offered"]) == (ISSUER, None)
