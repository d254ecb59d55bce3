"""Chart links on cards: one unguessable token per chart per answer, absolute, stored with the answer."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from cds_service.cards.render import PROVENANCE_KEY, render_response
from cds_service.charts import links as links_module
from cds_service.charts.links import is_token
from cds_service.cli import main
from cds_service.config import Settings
from cds_service.pipeline import Runtime, call_service
from cds_service.store.database import Store
from tests.charts.conftest import Ask
from tests.charts.requests import FIXTURE_NOW, draft_order, patient, request
from tests.conftest import RULES
from tests.invariants import response_problems

LINK = re.compile(r"^https://cds\.example\.org/charts/([A-Za-z0-9_-]{43})$")


def links_by_rule(body: bytes) -> dict[str, list[str]]:
    cards = orjson.loads(body)["cards"]
    return {
        c["extension"][PROVENANCE_KEY]["ruleId"]: [link["url"] for link in c.get("links", [])] for c in cards
    }


async def test_cards_share_one_snapshot_per_chart(ask: Ask) -> None:
    answer = await ask("ferritin-rising", draft_order(400))
    assert response_problems(orjson.loads(answer.body)) == []
    links = links_by_rule(answer.body)
    assert links["ferritin-rise"] and links["infusion-build"]
    assert links["ferritin-rise"] == links["infusion-build"]
    assert links["hlh-2004"] == []  # not a card about ferritin, kidneys or dosing
    match = LINK.match(links["ferritin-rise"][0])  # the public URL's trailing slash is not doubled
    assert match is not None
    (snapshot,) = answer.charts
    assert snapshot.token == match.group(1) and snapshot.chart_id == "mas-course"
    assert snapshot.expires_at - snapshot.created_at == timedelta(hours=12)
    # Validity runs from the wall clock, not from the `now` the request was evaluated at.
    assert abs(snapshot.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert snapshot.payload["as_of"] == FIXTURE_NOW.isoformat()


async def test_each_answer_has_its_own_token(ask: Ask) -> None:
    first = await ask("ferritin-rising", draft_order(400))
    second = await ask("ferritin-rising", draft_order(400))
    assert first.charts[0].token != second.charts[0].token


async def test_no_chart_link_no_snapshot(ask: Ask) -> None:
    # HLH-2004 fulfilled speaks on chart review of a patient never given anakinra (its signal): a card
    # without a chart link.
    answer = await ask("hlh-adult-fulfilled", service="mas-patient-view")
    links = links_by_rule(answer.body)
    assert links == {"hlh-2004": []}
    assert answer.charts == ()


async def test_without_a_public_url_links_point_at_the_configured_host(tmp_path: Path) -> None:
    runtime = Runtime.create(Settings(rules_dir=RULES, host="10.1.2.3", port=9000, chart_ttl_hours=0.5))
    try:
        body = orjson.dumps(request("anakinra-order-sign", patient("ferritin-rising"), draft_order(400)))
        answer = await call_service(runtime, "anakinra-order-sign", body, now=FIXTURE_NOW)
    finally:
        await runtime.aclose()
    (url,) = set(links_by_rule(answer.body)["ferritin-rise"])
    assert url == f"http://10.1.2.3:9000/charts/{answer.charts[0].token}"
    assert answer.charts[0].expires_at - answer.charts[0].created_at == timedelta(minutes=30)


async def test_rendering_without_a_place_for_charts_leaves_chart_links_out(
    runtime: Runtime, ask: Ask
) -> None:
    answer = await ask("ferritin-rising", draft_order(400))
    service = runtime.services.get("anakinra-order-sign")
    assert service is not None
    response = render_response(service, answer.facts, answer.evaluation).response
    cards = orjson.loads(response.body())["cards"]
    assert len(cards) == len(orjson.loads(answer.body)["cards"])
    assert not [c for c in cards if c.get("links")]


def test_token_shape() -> None:
    assert is_token(secrets.token_urlsafe(32))
    for text in ("", "a" * 42, "a" * 44, "a" * 42 + "=", "a" * 42 + ".", "a" * 42 + "/", "ä" * 43):
        assert not is_token(text), text


def test_evaluate_stores_the_charts_its_links_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CDS_RULES_DIR", str(RULES))
    monkeypatch.setenv("CDS_DATABASE_URL", database)
    now = datetime.now(UTC)
    path = tmp_path / "request.json"
    path.write_bytes(
        orjson.dumps(request("anakinra-order-sign", patient("ferritin-rising", now), draft_order(400)))
    )
    assert main(["evaluate", str(path), "--public-url", "https://cds.example.org"]) == 0
    out, err = capsys.readouterr()
    (url,) = set(links_by_rule(out.encode())["ferritin-rise"])
    match = LINK.match(url)
    assert match is not None
    assert "1 chart link(s) stored in sqlite:///" in err
    store = Store(database)
    try:
        snapshot = store.chart(match.group(1), datetime.now(UTC))
    finally:
        store.close()
    assert snapshot is not None and snapshot.chart_id == "mas-course"


async def test_a_chart_that_cannot_be_made_costs_the_link_not_the_answer(
    ask: Ask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def broken(chart: object, *args: object) -> dict[str, object]:
        calls.append("payload")
        raise ValueError("a bug in the chart code")

    monkeypatch.setattr(links_module, "chart_payload", broken)
    answer = await ask("ferritin-rising", draft_order(400))
    links = links_by_rule(answer.body)
    assert "ferritin-rise" in links and "infusion-build" in links  # the cards are all there
    assert not any(links.values()) and answer.charts == ()
    assert calls == ["payload"]  # tried once per answer, not once per card
    assert "chart mas-course could not be made" in caplog.text
