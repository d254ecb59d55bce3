"""GET /report over real HTTP: exact figures from cards and feedback sent through the API and stored
directly, the form's period, 400 for bad parameters, 503 without the database, no inline styles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from cds_service.config import Settings
from cds_service.store.database import AuditRow, FeedbackRow, IssuedCard, Store
from tests.test_app import ORDER_SIGN, sandbox_anakinra_order_sign

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PERIOD = {"since": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"}
SYSTEM = "http://example.org/override"


class _Page(HTMLParser):
    """The parts of a page the tests read: each table's rows of cell texts (by table id or class), the
    text of elements by id, the inputs by name, and every tag and attribute (to look for inline styles)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.texts: dict[str, str] = {}
        self.attributes: list[tuple[str, str, str | None]] = []
        self.tags: list[str] = []
        self.inputs: dict[str, dict[str, str | None]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._ids: list[tuple[str, str, list[str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("div", "dt", "dd", "p", "li", "td", "th"):  # blocks: words on either side stay apart
            for _, _, parts in self._ids:
                parts.append(" ")
        values = dict(attrs)
        self.attributes += [(tag, name, value) for name, value in attrs]
        if tag == "input" and values.get("name"):
            self.inputs[str(values["name"])] = values
        if tag == "table":
            self._table = self.tables.setdefault(str(values.get("id") or values.get("class")), [])
            if self._table:  # a second table of the same class: keep the rows apart by a marker
                self._table.append(["--"])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        if values.get("id") and tag not in ("input", "table"):
            self._ids.append((tag, str(values["id"]), []))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None
        if self._ids and self._ids[-1][0] == tag:
            _, element_id, parts = self._ids.pop()
            self.texts[element_id] = " ".join("".join(parts).split())

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for _, _, parts in self._ids:
            parts.append(data)


@pytest.fixture
def client(service_with: Callable[..., httpx.Client]) -> httpx.Client:
    return service_with(report_page=True)


def _get(client: httpx.Client, **params: str) -> tuple[httpx.Response, _Page]:
    response = client.get("/report", params=params)
    return response, _Page(response.text)


def _seed(database_url: str) -> None:
    """max-dose 1.0.0: 2 cards (1 overridden); max-dose 1.1.0: 1 card on order-select (accepted);
    neutropenia 1.1.0: 1 card without feedback; plus a card at `until` and feedback for an unknown card."""
    store = Store(database_url)
    cards = [
        ("a", "max-dose", "1.0.0", "anakinra-order-sign", T0),
        ("b", "max-dose", "1.0.0", "anakinra-order-sign", T0 + timedelta(days=3)),
        ("c", "max-dose", "1.1.0", "anakinra-order-select", T0 + timedelta(days=4)),
        ("d", "neutropenia", "1.1.0", "mas-patient-view", T0 + timedelta(days=5)),
        ("late", "neutropenia", "1.1.0", "mas-patient-view", T0 + timedelta(days=30)),
    ]
    issued = [
        IssuedCard(
            card_uuid=uuid,
            service_id=service,
            rule_id=rule,
            rule_version=version,
            indicator="warning",
            patient_id="p1",
            hook_instance=f"h-{uuid}",  # each card from its own call
            issued_at=at,
        )
        for uuid, rule, version, service, at in cards
    ]
    store.record_call(AuditRow(at=T0, endpoint="service", latency_ms=1, status=200), issued)

    def row(
        card: str, outcome: str, at: str, code: str | None = None, comment: str | None = None
    ) -> FeedbackRow:
        return FeedbackRow(
            service_id="anakinra-order-sign",
            card_uuid=card,
            outcome=outcome,
            outcome_timestamp=at,
            accepted_suggestions=["s"] if outcome == "accepted" else None,
            override_code=code,
            override_system=SYSTEM if code else None,
            override_display="Dose confirmed" if code else None,
            user_comment=comment,
            received_at=T0 + timedelta(days=6),
        )

    store.record_feedback(
        [
            row("a", "accepted", "2026-11-02T10:00:00Z"),
            row("a", "overridden", "2026-11-02T11:00:00Z", "confirmed", "Mr Jones said <b>no</b>"),
            row("c", "accepted", "2026-11-05T10:00:00Z"),
            row("late", "overridden", "2026-12-01T10:00:00Z", "confirmed"),
            row("ghost", "overridden", "2026-11-07T10:00:00Z"),
        ]
    )
    store.close()


def test_the_page_is_served_only_when_asked_for(http: httpx.Client) -> None:
    assert http.get("/report").status_code == 404


def test_the_report_table_reasons_and_unknown_cards(client: httpx.Client, settings: Settings) -> None:
    _seed(settings.database_url)
    response, page = _get(client, **PERIOD)
    assert response.status_code == 200
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.texts["report-period"] == (
        "Cards issued from 2026-11-01T00:00:00Z to 2026-12-01T00:00:00Z (excluded), all rules."
    )
    rows = page.tables["report-rows"]
    assert rows[0] == [
        "Rule", "Version", "Issued", "With feedback", "Share with feedback", "Accepted", "Overridden",
        "Override rate", "Override rate bar",
    ]  # fmt: skip
    assert rows[1:] == [
        ["max-dose", "1.0.0", "2", "1", "1 of 2", "0", "1", "100.0 %", "100.0 %"],
        ["max-dose", "1.1.0", "1", "1", "1 of 1", "1", "0", "0.0 %", "0.0 %"],
        ["neutropenia", "1.1.0", "1", "0", "0 of 1", "0", "0", "–", ""],
        ["Total", "4", "2", "2 of 4", "1", "1", "50.0 %", "50.0 %"],
    ]
    assert page.texts["report-totals"] == (
        "Issued 4 With feedback 2 Accepted 1 Overridden 1 Override rate 50.0 %"
    )
    assert page.tables["reasons-table"][1:] == [["Dose confirmed", "confirmed", "1", "1 of 1", "1"]]
    assert page.texts["report-unknown"].endswith("1 entry on 1 card.")
    # The comment is PHI: counted above, never shown.
    assert "Jones" not in response.text
    # Strict CSP: no style attribute, no <style>, no inline script anywhere on the page.
    assert [a for a in page.attributes if a[1] == "style"] == []
    assert "style" not in page.tags and "script" not in page.tags
    # The form shows the period it reports, as datetime-local values in UTC.
    assert (page.inputs["since"]["value"], page.inputs["until"]["value"]) == (
        "2026-11-01T00:00:00",
        "2026-12-01T00:00:00",
    )
    assert client.get("/static/report.css").status_code == 200


def test_a_rule_and_a_row_per_service(client: httpx.Client, settings: Settings) -> None:
    _seed(settings.database_url)
    response, page = _get(client, **PERIOD, rule="max-dose", by_service="1")
    assert response.status_code == 200
    assert page.texts["report-period"].endswith("rule max-dose (all rules).")
    assert [row[:4] for row in page.tables["report-rows"][1:]] == [
        ["max-dose", "1.0.0", "anakinra-order-sign", "2"],
        ["max-dose", "1.1.0", "anakinra-order-select", "1"],
        ["Total", "3", "2", "2 of 3"],
    ]
    assert page.inputs["rule"]["value"] == "max-dose"
    assert "checked" in page.inputs["by_service"]
    # The rule links keep the period and the split.
    assert (
        "/report?since=2026-11-01T00%3A00%3A00&amp;until=2026-12-01T00%3A00%3A00&amp;rule=max-dose&amp;by_service=1"
        in (response.text)
    )


def test_an_empty_period(client: httpx.Client) -> None:
    response, page = _get(client, **PERIOD)
    assert response.status_code == 200
    assert page.texts["report-empty"] == "No cards were issued in this period."
    assert "report-rows" not in page.tables


def test_cards_and_feedback_sent_over_http_in_the_default_period(client: httpx.Client) -> None:
    # Three calls, each its own hookInstance: three pieces of advice.
    bodies = [
        sandbox_anakinra_order_sign() | {"hookInstance": f"5e6f7a8b-0000-4000-8000-00000000000{n}"}
        for n in range(3)
    ]
    uuids = [
        card["uuid"]
        for body in bodies
        for card in client.post(ORDER_SIGN, json=body).json()["cards"]
        if card["extension"]["cds-service-provenance"]["ruleId"] == "incomplete-data"
    ]
    assert len(uuids) == 3
    feedback: list[dict[str, Any]] = [
        {"card": uuids[0], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z",
         "overrideReason": {"reason": {"code": "already-known", "system": SYSTEM}}},
        {"card": uuids[1], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z",
         "overrideReason": {"reason": {"code": "already-known", "system": SYSTEM, "display": "Known"}}},
        {"card": uuids[1], "outcome": "accepted", "outcomeTimestamp": "2026-11-23T09:00:00-02:00",
         "acceptedSuggestions": [{"id": "x"}]},
    ]  # fmt: skip
    assert client.post(ORDER_SIGN + "/feedback", json={"feedback": feedback}).status_code == 200
    response, page = _get(client)
    assert response.status_code == 200
    # 09:00-02:00 is 11:00Z: card 1 was accepted after its override. (The calls' other cards, the build and
    # the checks waiting for data, have rows of their own.)
    (row,) = [r for r in page.tables["report-rows"][1:] if r[0] == "incomplete-data"]
    assert row == [
        "incomplete-data", "1.0.0", "3", "2", "2 of 3", "1", "1", "50.0 %", "50.0 %",
    ]  # fmt: skip
    # The card (incomplete data) offers no override reason: the one given is shown as not offered.
    assert page.tables["reasons-table"][1:] == [
        ["Known (not a reason the card offered)", "already-known", "1", "1 of 1", "0"]
    ]
    since = datetime.fromisoformat(page.inputs["since"]["value"] or "")
    until = datetime.fromisoformat(page.inputs["until"]["value"] or "")
    assert until - since == timedelta(days=30)
    assert abs(until.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=5)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "soon"}, "since 'soon' is not an ISO 8601 time"),
        (
            {"since": "2026-11-02T00:00", "until": "2026-11-01T00:00"},
            "since (2026-11-02T00:00:00Z) must be before",
        ),
        ({"rule": "max\x00dose"}, "is not a rule id"),
    ],
)
def test_bad_parameters_are_a_400_page_saying_why(
    client: httpx.Client, params: dict[str, str], message: str
) -> None:
    response, page = _get(client, **params)
    assert response.status_code == 400
    assert message in page.texts["report-error"]
    assert response.headers["content-type"].startswith("text/html")
    assert "report-rows" not in page.tables


def test_without_the_database_the_page_is_503_and_names_no_url(
    client: httpx.Client, settings: Settings
) -> None:
    engine = create_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE feedback"))
    engine.dispose()
    response, page = _get(client, **PERIOD)
    assert response.status_code == 503
    assert page.texts["report-error"] == "The database is unavailable; try again later."
    assert settings.database_url.split("/")[-1] not in response.text


def test_a_bare_override_code_is_shown_with_the_display_the_rule_offers(
    client: httpx.Client, settings: Settings
) -> None:
    # The CDS Hooks sandbox sends reason.code alone; the rule file's card offered it with a display.
    store = Store(settings.database_url)
    card = IssuedCard(
        card_uuid="bare",
        service_id="anakinra-order-sign",
        rule_id="max-dose",
        rule_version="1.2.0",
        indicator="warning",
        patient_id="p1",
        hook_instance="h-bare",
        issued_at=T0 + timedelta(days=1),
    )
    store.record_call(AuditRow(at=T0, endpoint="service", latency_ms=1, status=200), [card])
    store.record_feedback(
        [
            FeedbackRow(
                service_id="anakinra-order-sign",
                card_uuid="bare",
                outcome="overridden",
                outcome_timestamp="2026-11-02T10:00:00Z",
                accepted_suggestions=None,
                override_code="weight-incorrect",
                override_system=None,
                override_display=None,
                user_comment=None,
                received_at=T0 + timedelta(days=2),
            )
        ]
    )
    store.close()
    response, page = _get(client, **PERIOD)
    assert response.status_code == 200
    assert page.tables["reasons-table"][1:] == [
        ["Recorded weight is wrong", "weight-incorrect", "1", "1 of 1", "0"]
    ]
