"""The chart behind a ferritin card, opened in Chromium: the drawing loads under the page's policy and
the table lists what it draws."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.charts.requests import draft_order, patient, request
from tests.live import LiveService

# Set to keep a screenshot of the page (e.g. for a review); the test itself writes only to tmp_path.
SCREENSHOT = os.environ.get("CDS_CHART_SCREENSHOT")


def _chart_link(service: LiveService) -> str:
    # Ferritin rising under 1200 mg/day for 48 h: the escalation card, with three orders and a draft. The
    # data is dated from now: the link's time to live runs on the wall clock.
    body = request(
        "anakinra-order-sign", patient("ferritin-escalation", datetime.now(UTC)), draft_order(1200)
    )
    cards = httpx.post(f"{service.base_url}/cds-services/anakinra-order-sign", json=body, timeout=10).json()
    card = next(
        c
        for c in cards["cards"]
        if c["extension"]["cds-service-provenance"]["ruleId"] == "ferritin-escalation"
    )
    (link,) = card["links"]
    return str(link["url"])


def test_the_chart_of_a_ferritin_card_opens_in_a_browser(
    page: Page, pages_service: LiveService, tmp_path: Path
) -> None:
    page.goto(_chart_link(pages_service))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ferritin")
    image = page.locator("figure.chart img")
    page.wait_for_function("document.querySelector('figure.chart img').complete")
    assert image.evaluate("img => img.naturalWidth") > 0
    assert "ferritin (6)" in (image.get_attribute("alt") or "")

    ferritin = page.get_by_role("table", name="Ferritin (µg/L)")
    values = ferritin.locator("tbody td.num").all_inner_texts()
    assert values == ["21000", "26500", "30500", "33800", "36900", "39200"]
    doses = page.get_by_role("table", name="Dose steps (mg/day)").locator("tbody td.num").all_inner_texts()
    assert doses == ["400", "1200", "1200", "1200"]
    # Every result says how the lab reported it; the threshold lines are listed with their value.
    reported = ferritin.locator("tbody tr td:last-child").all_inner_texts()
    assert reported == ["21000 µg/L", "26500 µg/L", "30500 µg/L", "33800 µg/L", "36900 µg/L", "39200 µg/L"]
    lines = page.get_by_role("list", name="Ferritin: threshold lines")
    expect(lines).to_contain_text("HLH-2004 ferritin criterion, 500 µg/L")
    expect(page.get_by_role("list", name="Anakinra total daily dose: threshold lines")).to_contain_text(
        "maximum daily dose, 2400 mg/day"
    )

    page.screenshot(path=str(tmp_path / "chart.png"), full_page=True)
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)


@pytest.mark.parametrize("width", [360, 1280])
def test_the_chart_page_fits_a_phone_and_a_desktop(
    browser: Browser, pages_service: LiveService, tmp_path: Path, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(_chart_link(pages_service))
        page.wait_for_function("document.querySelector('figure.chart img').complete")
        image = page.locator("figure.chart img")
        assert image.evaluate("img => img.naturalWidth") > 0
        # The narrow drawing on a phone, the wide one on a desktop.
        source = image.evaluate("img => img.currentSrc")
        assert source.endswith("/chart-narrow.svg" if width < 640 else "/chart.svg")
        # Nothing makes the page scroll sideways: wide tables scroll inside their own box.
        scroll, client = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert scroll <= client, f"the page is {scroll} px wide in a {client} px window"
        drawn = image.evaluate("img => img.getBoundingClientRect().width")
        assert drawn <= client
        page.screenshot(path=str(tmp_path / f"chart-{width}.png"), full_page=True)
        if SCREENSHOT:
            page.screenshot(path=SCREENSHOT.replace(".png", f"-{width}.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors
