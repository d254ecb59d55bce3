"""Every text column is kept storable where its values enter (store/limits.py), on SQLite and PostgreSQL.

Before: on PostgreSQL a token `sub` over 256 characters or holding a NUL lost that call's audit row, its
cards and its chart (SQLite lost it for a lone surrogate); a feedback card id of 65 characters, an
override code of 129, a timestamp of 70 or a NUL in a comment turned the batch into a 503 "retry" that
failed again on every retry; a hookInstance of 88 characters (uuid.UUID reads any number of hyphens)
lost the cards and the audit row.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import String

from cds_service.charts.links import TOKEN_BYTES
from cds_service.config import Settings
from cds_service.protocol.discovery import ServiceId
from cds_service.protocol.feedback import parse_feedback
from cds_service.protocol.outcome import ProblemError
from cds_service.ruleformat.rulefile import ChartId, RuleId, RuleVersion
from cds_service.security.trust import Issuer, Tenant
from cds_service.store.database import Store
from cds_service.store.limits import LIMITS, clip, field_width, problem, width
from cds_service.store.schema import audit_log, metadata
from tests.security.keys import PUBLIC_URL, default_trust, ec_key, mint
from tests.test_app import ORDER_SIGN, outcome_text, sandbox_anakinra_order_sign, sandbox_order_sign

FEEDBACK = ORDER_SIGN + "/feedback"


def test_every_text_column_has_exactly_one_edge() -> None:
    """A new text column cannot be added without saying where its values are checked."""
    columns = {
        f"{table.name}.{column.name}"
        for table in metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, String)
    }
    listed = [f"{limit.column.table.name}.{limit.column.name}" for limit in LIMITS]
    assert sorted(listed) == sorted(columns)


def _accepts(adapter: Any, value: str) -> bool:
    try:
        TypeAdapter(adapter).validate_python(value)
    except ValidationError:
        return False
    return True


# For each `ours` column: does its loader or maker keep values within `width` characters?
OURS: dict[str, Callable[[int], bool]] = {
    "cards_issued.card_uuid": lambda w: len(str(uuid.uuid4())) <= w,
    "cards_issued.service_id": lambda w: not _accepts(ServiceId, "s" * (w + 1)),
    "cards_issued.rule_id": lambda w: not _accepts(RuleId, "r" * (w + 1)),
    "cards_issued.rule_version": lambda w: not _accepts(RuleVersion, "1.0." + "0" * (w - 3)),
    "cards_issued.indicator": lambda w: max(map(len, ("info", "warning", "critical"))) <= w,
    "merged_card_rules.card_uuid": lambda w: len(str(uuid.uuid4())) <= w,
    "merged_card_rules.rule_id": lambda w: not _accepts(RuleId, "r" * (w + 1)),
    "merged_card_rules.rule_version": lambda w: not _accepts(RuleVersion, "1.0." + "0" * (w - 3)),
    "feedback.service_id": lambda w: not _accepts(ServiceId, "s" * (w + 1)),
    "chart_snapshots.token": lambda w: len(secrets.token_urlsafe(TOKEN_BYTES)) <= w,
    "chart_snapshots.chart_id": lambda w: not _accepts(ChartId, "c" * (w + 1)),
    "jwt_seen.issuer": lambda w: not _accepts(Issuer, "https://" + "i" * (w - 7)),
    "audit_log.endpoint": lambda w: max(map(len, ("discovery", "service", "feedback"))) <= w,
    "audit_log.issuer": lambda w: not _accepts(Issuer, "https://" + "i" * (w - 7)),
    "audit_log.tenant": lambda w: not _accepts(Tenant, "t" * (w + 1)),
    "cards_issued.issuer": lambda w: not _accepts(Issuer, "https://" + "i" * (w - 7)),
    "feedback.issuer": lambda w: not _accepts(Issuer, "https://" + "i" * (w - 7)),
    "refused_calls.endpoint": lambda w: max(map(len, ("discovery", "service", "feedback"))) <= w,
}


@pytest.mark.parametrize("limit", [x for x in LIMITS if x.edge == "ours"], ids=lambda x: str(x.column))
def test_values_the_service_makes_or_loads_fit_their_column(limit: Any) -> None:
    name = f"{limit.column.table.name}.{limit.column.name}"
    assert name in OURS, f"say how {name} is bounded"
    assert OURS[name](width(limit.column))


def test_a_value_is_clipped_with_a_marker_and_made_storable() -> None:
    column = audit_log.c.subject
    clipped = clip(column, "s" * 300)
    assert clipped is not None and len(clipped) == width(column)
    assert clipped.startswith("s" * 200) and clipped.endswith("…[300 chars]")
    assert clip(column, "a\x00b\ud800") == "a\ufffdb\ufffd"
    assert clip(column, "fine") == "fine"


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("hookInstance", "x" * 65, "is longer than 64 characters"),
        ("feedback.overrideReason.reason.code", "c" * 129, "is longer than 128 characters"),
        ("feedback.overrideReason.userComment", "a\x00", "contains a NUL character"),
        ("feedback.overrideReason.userComment", "a\ud800", "is not Unicode text (a lone surrogate)"),
        ("jti", "j" * 256, None),
    ],
)
def test_a_field_is_checked_against_the_narrowest_column_it_is_stored_in(
    field: str, value: str, why: str | None
) -> None:
    assert problem(field, value) == why


# --- feedback: every stored field, at its width and one over ---------------------------------------------

FEEDBACK_FIELDS = {
    "card": lambda item, v: item.update(card=v),
    "outcomeTimestamp": lambda item, v: item.update(outcomeTimestamp="2026-11-23T10:20:00." + v),
    "overrideReason.reason.code": lambda item, v: item.update(overrideReason={"reason": {"code": v}}),
    "overrideReason.reason.system": lambda item, v: item.update(
        overrideReason={"reason": {"code": "x", "system": v}}
    ),
    "overrideReason.reason.display": lambda item, v: item.update(
        overrideReason={"reason": {"code": "x", "display": v}}
    ),
    "overrideReason.userComment": lambda item, v: item.update(overrideReason={"userComment": v}),
}


def _feedback(field: str, length: int, filler: str = "1") -> bytes:
    item: dict[str, Any] = {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:20:00Z"}
    # The timestamp's fraction pads it to the length asked for.
    pad = length - len("2026-11-23T10:20:00.") if field == "outcomeTimestamp" else length
    FEEDBACK_FIELDS[field](item, filler * pad)
    return httpx.Request("POST", "/", json={"feedback": [item]}).read()


@pytest.mark.parametrize("field", [f for f in FEEDBACK_FIELDS if f != "overrideReason.userComment"])
def test_feedback_at_its_column_width_is_read_and_one_more_character_is_refused(field: str) -> None:
    limit = field_width(f"feedback.{field}")
    assert limit is not None
    (row,) = parse_feedback(_feedback(field, limit))
    assert row.card_uuid
    with pytest.raises(ProblemError) as refused:
        parse_feedback(_feedback(field, limit + 1))
    assert refused.value.status == 400
    (issue,) = refused.value.issues
    assert issue.expression == f"feedback[0].{field}"
    assert f"longer than {limit} characters" in issue.diagnostics


@pytest.mark.parametrize("field", list(FEEDBACK_FIELDS))
def test_feedback_that_the_database_cannot_hold_is_a_400_over_http_not_a_retry(
    http: httpx.Client, settings: Settings, field: str
) -> None:
    limit = field_width(f"feedback.{field}")
    bodies = [_feedback(field, 3, filler="\x00")]
    if limit is not None:
        bodies.append(_feedback(field, limit + 1))
    for body in bodies:
        response = http.post(FEEDBACK, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert f"feedback[0].{field} " in outcome_text(response)
    store = Store(settings.database_url)
    assert store.feedback() == []
    assert [row["status"] for row in store.audit()] == [400] * len(bodies)


def test_a_hook_instance_longer_than_its_column_is_a_400_naming_it(
    http: httpx.Client, settings: Settings
) -> None:
    body = sandbox_anakinra_order_sign()  # an anakinra order: the call issues cards to record
    hexes = uuid.uuid4().hex
    body["hookInstance"] = "{" + "-" * 54 + hexes + "}"  # 88 characters that uuid.UUID reads
    assert uuid.UUID(body["hookInstance"]).hex == hexes
    response = http.post(ORDER_SIGN, json=body)
    assert response.status_code == 400
    assert "hookInstance is longer than 64 characters" in outcome_text(response)
    body["hookInstance"] = "{" + "-" * 30 + hexes + "}"  # 64: stored as sent
    assert http.post(ORDER_SIGN, json=body).status_code == 200
    store = Store(settings.database_url)
    assert {row["hook_instance"] for row in store.issued_cards()} == {body["hookInstance"]}
    assert [row["status"] for row in store.audit()] == [400, 200]


# --- the token: a claim relied on is refused, a claim only recorded is clipped -----------------------------


@pytest.fixture
def secured(service_with: Callable[..., httpx.Client], tmp_path: Path) -> httpx.Client:
    return service_with(insecure_no_auth=False, trust_file=default_trust(tmp_path), public_url=PUBLIC_URL)


def _bearer(path: str, **changes: Any) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint(ec_key(), aud=PUBLIC_URL + path, **changes)}


def test_a_token_sub_the_audit_cannot_hold_is_clipped_and_nothing_is_lost(
    secured: httpx.Client, settings: Settings
) -> None:
    subjects = ["s" * 300, "a\x00b", "\ud800x"]
    for sub in subjects:
        response = secured.post(
            ORDER_SIGN, json=sandbox_anakinra_order_sign(), headers=_bearer(ORDER_SIGN, sub=sub)
        )
        assert response.status_code == 200, response.text
    store = Store(settings.database_url)
    rows = store.audit()
    assert [row["status"] for row in rows] == [200, 200, 200]
    assert [row["subject"] for row in rows] == [
        "s" * (256 - len("…[300 chars]")) + "…[300 chars]",
        "a\ufffdb",
        "\ufffdx",
    ]
    # Each call's cards were recorded with its audit row.
    assert len(store.issued_cards()) == 3 * len(rows[0]["card_uuids"]) > 0


def test_a_token_jti_the_replay_table_cannot_hold_is_a_401_not_a_503(secured: httpx.Client) -> None:
    for jti, why in (("j" * 257, "longer than 256"), ("a\x00b", "NUL"), ("\udc00", "surrogate")):
        response = secured.post(ORDER_SIGN, json=sandbox_order_sign(), headers=_bearer(ORDER_SIGN, jti=jti))
        assert response.status_code == 401, response.text
        assert why in outcome_text(response) and "(malformed-token)" in outcome_text(response)


def test_a_path_naming_no_service_is_audited_clipped(http: httpx.Client, settings: Settings) -> None:
    for name in ("s" * 70, "a%00b"):
        response = http.post(f"/cds-services/{name}", json=sandbox_order_sign())
        assert response.status_code == 404
    rows = Store(settings.database_url).audit()
    assert [row["status"] for row in rows] == [404, 404]
    assert rows[0]["service_id"].endswith("…[70 chars]") and len(rows[0]["service_id"]) == 64
    assert rows[1]["service_id"] == "a\ufffdb"
