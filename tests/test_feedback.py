"""Feedback: accepted as the spec and real clients send it, idempotent, durable across restarts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from cds_service.config import Settings
from cds_service.store.database import Store
from tests.conftest import ROOT, sandbox_capture
from tests.processes import START_SECONDS, kill_group, start_server, stop_group
from tests.test_app import ORDER_SIGN, sandbox_anakinra_order_sign

FEEDBACK = ORDER_SIGN + "/feedback"


def _overridden(
    card: str, reason: dict[str, Any] | None = None, comment: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:20:00Z"}
    override: dict[str, Any] = {}
    if reason:
        override["reason"] = reason
    if comment:
        override["userComment"] = comment
    if override:
        item["overrideReason"] = override
    return item


def test_sandbox_feedback_capture_is_accepted_and_stored(http: httpx.Client, settings: Settings) -> None:
    capture = sandbox_capture("feedback-request.json")
    response = http.post(
        FEEDBACK, content=orjson.dumps(capture["body"]), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    (row,) = Store(settings.database_url).feedback()
    assert row["card_uuid"] == "021c1112-7549-41b7-b8d8-b8440c010061"
    assert row["outcome"] == "accepted"
    assert row["accepted_suggestions"] == ["429312ed-e707-414a-a772-98b8bbb3b808"]


def _rule(card: dict[str, Any]) -> str:
    return str(card["extension"]["cds-service-provenance"]["ruleId"])


def test_feedback_joins_to_the_rule_that_issued_the_card(http: httpx.Client, settings: Settings) -> None:
    body = sandbox_anakinra_order_sign()
    response = http.post(ORDER_SIGN, json=body)
    (card,) = [c for c in response.json()["cards"] if _rule(c) == "incomplete-data"]
    # Real clients send the reason's Coding without a display.
    reason = {"code": "not-relevant", "system": "http://example.org/override"}
    assert (
        http.post(FEEDBACK, json={"feedback": [_overridden(card["uuid"], reason, "seen")]}).status_code == 200
    )
    store = Store(settings.database_url)
    (issued,) = [row for row in store.issued_cards() if row["card_uuid"] == card["uuid"]]
    assert (issued["rule_id"], issued["rule_version"], issued["patient_id"]) == (
        "incomplete-data",
        "1.0.0",
        "p1",
    )
    assert issued["hook_instance"] == body["hookInstance"]
    (row,) = store.feedback(card["uuid"])
    assert (row["override_code"], row["override_display"], row["user_comment"]) == (
        "not-relevant",
        None,
        "seen",
    )


def test_the_feedback_audit_row_names_each_card_and_its_rule(http: httpx.Client, settings: Settings) -> None:
    cards = http.post(ORDER_SIGN, json=sandbox_anakinra_order_sign()).json()["cards"]
    (card,) = [c for c in cards if _rule(c) == "incomplete-data"]
    body = {"feedback": [_overridden(card["uuid"], {"code": "not-relevant"}), _overridden("never-issued")]}
    assert http.post(FEEDBACK, json=body).status_code == 200
    (audit,) = [row for row in Store(settings.database_url).audit() if row["endpoint"] == "feedback"]
    assert audit["card_uuids"] == [card["uuid"], "never-issued"]
    assert audit["rules"] == [
        {"id": "incomplete-data", "version": "1.0.0", "card": card["uuid"], "outcome": "overridden"},
        {"id": None, "version": None, "card": "never-issued", "outcome": "overridden"},
    ]


def test_feedback_on_a_merged_card_counts_for_each_rule_it_speaks_for(
    http: httpx.Client, settings: Settings
) -> None:
    """Several rules' requests for data become one card (issue 15): it is recorded for every rule it speaks
    for, and feedback on it is attributed to each, in the audit trail and in the report."""
    cards = http.post(ORDER_SIGN, json=sandbox_anakinra_order_sign()).json()["cards"]
    (merged,) = [c for c in cards if c["extension"]["cds-service-provenance"].get("rules")]
    provenance = merged["extension"]["cds-service-provenance"]
    spoken = [(r["ruleId"], r["ruleVersion"]) for r in provenance["rules"]]
    assert len(spoken) >= 2 and spoken[0] == (provenance["ruleId"], provenance["ruleVersion"])
    assert provenance["mergedInto"]["id"] == "data-needed"
    store = Store(settings.database_url)
    assert store.card_rules([merged["uuid"]])[merged["uuid"]] == [spoken[0], *sorted(spoken[1:])]
    reason = {"code": "data-not-available"}
    assert http.post(FEEDBACK, json={"feedback": [_overridden(merged["uuid"], reason)]}).status_code == 200
    (audit,) = [row for row in store.audit() if row["endpoint"] == "feedback"]
    assert sorted((r["id"], r["version"]) for r in audit["rules"]) == sorted(spoken)
    assert {r["card"] for r in audit["rules"]} == {merged["uuid"]}
    now = datetime.now(UTC)
    report = store.feedback_report(now - timedelta(days=1), now + timedelta(days=1))
    rows = {(row.rule_id, row.rule_version): row for row in report.rows}
    for rule in spoken:
        assert (rows[rule].issued, rows[rule].overridden) == (1, 1), rule
    # The merged card's own override reasons are offered for each rule it speaks for (shown by code alone).
    reasons = {r.rule_id: r for r in report.reasons}
    assert all(reasons[rule_id].top[0].code == "data-not-available" for rule_id, _ in spoken)


def test_repeated_feedback_is_stored_once(http: httpx.Client, settings: Settings) -> None:
    body = {"feedback": [_overridden("c1"), _overridden("c2")]}
    for _ in range(3):
        assert http.post(FEEDBACK, json=body).status_code == 200
    assert sorted(r["card_uuid"] for r in Store(settings.database_url).feedback()) == ["c1", "c2"]


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        (
            {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-23T10:00:00Z"},
            "acceptedSuggestions",
        ),
        ({"card": "c", "outcome": "ignored", "outcomeTimestamp": "2026-11-23T10:00:00Z"}, "outcome must be"),
        ({"card": "c", "outcome": "overridden", "outcomeTimestamp": "yesterday"}, "outcomeTimestamp"),
        ({"card": "c", "outcome": "overridden"}, "outcomeTimestamp"),
        (
            {"card": " ", "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z"},
            "card must name",
        ),
    ],
)
def test_bad_feedback_is_400_and_stores_nothing(
    http: httpx.Client, settings: Settings, item: dict[str, Any], fragment: str
) -> None:
    good = _overridden("good-card")
    response = http.post(FEEDBACK, json={"feedback": [good, item]})
    assert response.status_code == 400
    assert fragment in response.text
    assert Store(settings.database_url).feedback() == []


def test_feedback_for_unknown_service_is_404(http: httpx.Client) -> None:
    response = http.post("/cds-services/nope/feedback", json={"feedback": [_overridden("c")]})
    assert response.status_code == 404


def test_empty_feedback_is_400(http: httpx.Client) -> None:
    assert http.post(FEEDBACK, json={"feedback": []}).status_code == 400


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_process(database_url: str, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CDS_DATABASE_URL": database_url,
        "CDS_RULES_DIR": str(ROOT / "rules"),
        "CDS_INSECURE_NO_AUTH": "1",
    }
    process = start_server(
        [sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"service did not start: {stop_group(process).decode(errors='replace')}")


@pytest.mark.integration  # serve as a process, killed with SIGKILL
def test_acknowledged_feedback_survives_a_killed_process(database_url: str) -> None:
    port = _free_port()
    process = _start_process(database_url, port)
    try:
        base = f"http://127.0.0.1:{port}"
        answer = httpx.post(base + ORDER_SIGN, json=sandbox_anakinra_order_sign()).json()
        card = answer["cards"][0]["uuid"]
        acknowledged = [_overridden(card)] + [_overridden(f"card-{i}") for i in range(20)]
        for item in acknowledged:
            assert httpx.post(base + FEEDBACK, json={"feedback": [item]}).status_code == 200
    finally:
        # SIGKILL: no shutdown hook runs, so only what was committed before each 200 can survive.
        kill_group(process)

    process = _start_process(database_url, port)
    try:
        store = Store(database_url)
        assert sorted(r["card_uuid"] for r in store.feedback()) == sorted(i["card"] for i in acknowledged)
        assert sorted(c["card_uuid"] for c in store.issued_cards()) == sorted(
            c["uuid"] for c in answer["cards"]
        )
        # The restarted service still knows the feedback: resending it adds nothing.
        assert (
            httpx.post(f"http://127.0.0.1:{port}{FEEDBACK}", json={"feedback": acknowledged}).status_code
            == 200
        )
        assert len(store.feedback()) == len(acknowledged)
    finally:
        stop_group(process)


def test_feedback_that_cannot_be_stored_is_not_acknowledged(http: httpx.Client, settings: Settings) -> None:
    store = Store(settings.database_url)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE feedback"))  # the database breaks while the service runs
    response = http.post(FEEDBACK, json={"feedback": [_overridden("c1")]})
    assert response.status_code == 503
    assert "nothing was recorded" in response.json()["issue"][0]["diagnostics"]
    # Cards are still answered: recording them is not the clinician's problem.
    assert http.post(ORDER_SIGN, json=sandbox_anakinra_order_sign()).status_code == 200


@pytest.mark.integration  # serve with two worker processes
def test_feedback_through_two_worker_processes_is_all_stored(database_url: str) -> None:
    port = _free_port()
    process = _start_process(database_url, port, workers=2)
    try:
        url = f"http://127.0.0.1:{port}{FEEDBACK}"

        def send(batch: int) -> list[int]:
            with httpx.Client() as client:  # one connection per thread: the kernel spreads them over workers
                return [
                    client.post(url, json={"feedback": [_overridden(f"w{batch}-{i}")]}).status_code
                    for i in range(25)
                ]

        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = [s for batch in pool.map(send, range(4)) for s in batch]
    finally:
        stop_group(process)
    assert statuses == [200] * 100
    assert len(Store(database_url).feedback()) == 100
