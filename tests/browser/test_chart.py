"""The chart behind a ferritin card, opened in Chromium: the drawing loads under the page's policy and
the table lists what it draws."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.charts.requests import draft_order, patient, request
from tests.live import LiveService

# Set to keep a screenshot of the page (e.g. for a review); the test itself writes only to tmp_path.
SCREENSHOT = os.environ.get("CDS_CHART_SCREENSHOT")


def test_the_chart_of_a_ferritin_card_opens_in_a_browser(
    page: Page, pages_service: LiveService, tmp_path: Path
) -> None:
    # Ferritin rising under 1200 mg/day for 48 h: the escalation card, with three orders and a draft.
    body = request(
        "anakinra-order-sign", patient("ferritin-escalation", datetime.now(UTC)), draft_order(1200)
    )
    cards = httpx.post(
        f"{pages_service.base_url}/cds-services/anakinra-order-sign", json=body, timeout=10
    ).json()
    card = next(
        c
        for c in cards["cards"]
        if c["extension"]["cds-service-provenance"]["ruleId"] == "ferritin-escalation"
    )
    (link,) = card["links"]

    page.goto(link["url"])
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ferritin")
    image = page.locator("figure.chart img")
    page.wait_for_function("document.querySelector('figure.chart img').complete")
    assert image.evaluate("img => img.naturalWidth") > 0
    assert "ferritin (6)" in (image.get_attribute("alt") or "")

    ferritin = page.get_by_role("table", name="Ferritin (µg/L)")
    values = ferritin.locator("tbody td.num").all_inner_texts()
    assert values == ["21000", "26500", "30500", "33800", "36900", "39200"]
    doses = page.get_by_role("table", name="Dose steps (mg/d)").locator("tbody td.num").all_inner_texts()
    assert doses == ["400", "1200", "1200", "1200"]

    page.screenshot(path=str(tmp_path / "chart.png"), full_page=True)
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)
