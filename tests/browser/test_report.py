"""The feedback report in Chromium: the period form, the table with its bars, picking a rule, the
400 page; under the strict CSP (a blocked style or script fails the `page` fixture)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from cds_service.store.database import AuditRow, FeedbackRow, IssuedCard, Store
from tests.live import LiveService

NOTES_SCREENSHOT = Path("/tmp/notes/report.png")
T0 = datetime(2026, 11, 1, tzinfo=UTC)
SYSTEM = "http://example.org/override-reason"
# rule, version, service, cards issued, accepted, overridden with each reason (code, display, count)
PACK = [
    (
        "hlh-2004",
        "1.0.0",
        "mas-patient-view",
        40,
        12,
        [("known", "Already being worked up", 5), (None, None, 2)],
    ),
    ("infusion-build", "1.1.0", "anakinra-order-sign", 18, 9, [("pharmacy", "Pharmacy will build", 3)]),
    ("infusion-build", "1.2.0", "anakinra-order-sign", 30, 20, [("pharmacy", "Pharmacy will build", 2)]),
    ("max-dose", "1.1.0", "anakinra-order-sign", 6, 1, [("protocol", "Protocol exception approved", 4)]),
    ("neutropenia", "1.1.0", "mas-patient-view", 12, 0, []),
]


def seed(database_url: str) -> None:
    store = Store(database_url)
    cards: list[IssuedCard] = []
    answers: list[FeedbackRow] = []
    for rule, version, service, issued, accepted, reasons in PACK:
        uuids = [f"{rule}-{version}-{n}" for n in range(issued)]
        cards += [
            IssuedCard(
                card_uuid=uuid,
                service_id=service,
                rule_id=rule,
                rule_version=version,
                indicator="warning",
                patient_id="p1",
                hook_instance=f"h-{uuid}",  # each card from its own call
                issued_at=T0 + timedelta(hours=n),
            )
            for n, uuid in enumerate(uuids)
        ]
        outcomes = [("accepted", None, None)] * accepted
        outcomes += [("overridden", code, display) for code, display, count in reasons for _ in range(count)]
        answers += [
            FeedbackRow(
                service_id=service,
                card_uuid=uuid,
                outcome=outcome,
                outcome_timestamp="2026-11-10T10:00:00Z",
                accepted_suggestions=["s"] if outcome == "accepted" else None,
                override_code=code,
                override_system=SYSTEM if code else None,
                override_display=display,
                user_comment="see notes" if code == "protocol" else None,
                received_at=T0 + timedelta(days=10),
            )
            for uuid, (outcome, code, display) in zip(uuids, outcomes, strict=False)
        ]
    store.record_call(AuditRow(at=T0, endpoint="service", latency_ms=1, status=200), cards)
    store.record_feedback(answers)
    store.close()


def test_the_report_form_table_bars_and_a_rule_picked(page: Page, pages_service: LiveService) -> None:
    seed(pages_service.settings.database_url)
    page.goto(f"{pages_service.base_url}/report")
    expect(page.get_by_role("heading", name="Feedback on cards")).to_be_visible()
    # The seeded cards are in November 2026, whatever today is: pick that period with the form.
    page.locator("#since").fill("2026-11-01T00:00:00")
    page.locator("#until").fill("2026-12-01T00:00:00")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#report-period")).to_have_text(
        re.compile(r"from 2026-11-01T00:00:00Z\s+to 2026-12-01T00:00:00Z \(excluded\),\s+all rules\.")
    )
    rows = page.locator("#report-rows tbody tr")
    expect(rows).to_have_count(5)
    expect(rows.nth(1).locator("td")).to_have_text(
        ["infusion-build", "1.1.0", "18", "12", "12 of 18", "9", "3", "25.0 %", "25.0 %"]
    )
    expect(page.locator("#report-rows tfoot td").first).to_have_text("106")
    # The bars are <meter>s sized by report.css, which the CSP let through.
    bar = rows.nth(0).locator("meter.overridden")
    expect(bar).to_have_attribute("value", re.compile(r"^0\.368"))
    expect(bar).to_have_css("width", "128px")
    expect(rows.nth(4).locator("meter.overridden")).to_have_count(0)  # no feedback: no rate, no bar
    expect(page.locator(".report-reasons h3").first).to_have_text(
        re.compile(r"hlh-2004\s+7 cards overridden")
    )
    NOTES_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(NOTES_SCREENSHOT), full_page=True)

    # A rule's link keeps the period and shows only that rule, both versions.
    rows.nth(1).get_by_role("link", name="infusion-build").click()
    expect(page).to_have_url(re.compile(r"rule=infusion-build"))
    expect(page.locator("#rule")).to_have_value("infusion-build")
    expect(page.locator("#report-rows tbody tr")).to_have_count(2)
    expect(page.locator("#report-totals dd")).to_have_text(["48", "34", "29", "5", "14.7 %"])
    reasons = page.locator(".reasons-table tbody tr")
    expect(reasons).to_have_count(1)
    expect(reasons.first.locator("td")).to_have_text(["Pharmacy will build", "pharmacy", "5", "5 of 5", "0"])

    # Split per service with the checkbox; then back to all rules by emptying the field.
    page.locator("#by_service").check()
    page.locator("#rule").fill("")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#report-rows thead th").nth(2)).to_have_text("Service")
    expect(page.locator("#report-rows tbody tr")).to_have_count(5)
    expect(page.locator("#report-period")).to_contain_text("all rules")


def test_a_bad_period_is_a_400_page_saying_why(browser: Browser, pages_service: LiveService) -> None:
    # Not the `page` fixture: Chromium logs the 400 document itself as a console error, which is
    # expected here; anything else (a CSP violation, a script error) still fails the test.
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    response = page.goto(f"{pages_service.base_url}/report?since=2026-12-01T00:00&until=2026-11-01T00:00")
    assert response is not None and response.status == 400
    expect(page.locator("#report-error")).to_have_text(
        "since (2026-12-01T00:00:00Z) must be before until (2026-11-01T00:00:00Z)"
    )
    # The form is still there to correct it.
    page.locator("#since").fill("2026-10-01T00:00:00")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#report-error")).to_have_count(0)
    expect(page.locator("#report-empty")).to_have_text("No cards were issued in this period.")
    context.close()
    assert errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
