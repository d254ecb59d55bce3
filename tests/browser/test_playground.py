"""The rule playground end to end in Chromium: what an informaticist sees and clicks."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.live import LiveService

NOTES_SCREENSHOT = Path("/tmp/notes/playground.png")
WARNING_ORANGE = "rgb(239, 108, 0)"  # --warning in style.css


def open_playground(page: Page, service: LiveService) -> None:
    page.goto(f"{service.base_url}/playground")
    expect(page.get_by_role("heading", name="Rule playground")).to_be_visible()


def evaluate(page: Page) -> None:
    page.locator("#evaluate").click()
    expect(page.locator("#results")).to_be_visible()


def test_the_500_mg_request_shows_the_warning_the_order_after_and_why(
    page: Page, pages_service: LiveService, tmp_path: Path
) -> None:
    open_playground(page, pages_service)
    expect(page.locator("#prefetch-only")).to_contain_text("never contacts an EHR")
    page.locator("#saved").select_option("order-sign-500mg-day")
    page.locator("#load-saved").click()
    expect(page.locator("#request")).to_have_value(re.compile(re.escape('"hook": "order-sign"')))
    expect(page.locator("#as-of")).to_have_value("2026-11-23T07:00")
    evaluate(page)

    card = page.locator('.pg-card[data-rule="infusion-build"]')
    expect(card).to_be_visible()
    expect(card).to_have_class(re.compile(re.escape("pg-card--warning")))
    expect(card.locator(".pg-indicator")).to_have_text("warning")
    expect(card.locator(".pg-indicator")).to_have_css("background-color", WARNING_ORANGE)
    expect(card).to_have_css("border-left-color", WARNING_ORANGE)
    expect(card.locator(".pg-summary")).to_have_text(
        "500 mg/day cannot be built from whole 100 mg syringes: nearest 400 or 600 mg/day"
    )
    expect(card.locator(".pg-rule")).to_contain_text("infusion-build 1.")
    expect(card.locator(".pg-detail strong").first).to_have_text(
        "400 mg/day as 100 mg in 100 mL NS q6h at 16.67 mL/h (1 mg/mL)"
    )

    expect(page.locator("#after")).to_be_hidden()
    card.locator(".pg-suggestion").first.click()
    after = page.locator("#after")
    expect(after).to_be_visible()
    expect(page.locator("#after-label")).to_have_text(
        "Order 400 mg/day as 100 mg in 100 mL NS q6h at 16.67 mL/h (1 mg/mL)"
    )
    table = after.locator(".pg-action--update .pg-compare")
    expect(table.locator('tr[data-field="bag"]').locator(".pg-after-value")).to_have_text("100 mg in 100 mL")
    expect(table.locator('tr[data-field="timing"]').locator(".pg-after-value")).to_have_text("every 6 h")
    rate = table.locator('tr[data-field="rate"]')
    expect(rate.locator(".pg-before")).to_have_text("500 mg/d")
    expect(rate.locator(".pg-after-value")).to_have_text("16.67 mL/h")
    expect(rate).to_have_class("pg-changed")
    expect(after.locator("details pre")).to_contain_text('"additionalInstruction"')

    # The second suggestion replaces the panel with its own build.
    card.locator(".pg-suggestion").nth(1).click()
    expect(table.locator('tr[data-field="timing"]').locator(".pg-after-value")).to_have_text("every 8 h")

    explanation = page.locator("#explanation")
    infusion = explanation.locator('tr[data-rule="infusion-build"]')
    expect(infusion.locator(".pg-badge")).to_have_text("fired")
    expect(infusion).to_contain_text("warning card")
    quiet = explanation.locator('tr[data-status="not-fired"], tr[data-status="unknown"]')
    assert quiet.count() >= 1
    expect(explanation.locator('tr[data-rule="max-dose"] .pg-badge')).to_have_text("not fired")
    expect(explanation.locator('tr[data-rule="max-dose"] .pg-facts')).to_contain_text("mg/d")

    page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)
    NOTES_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / "playground.png", NOTES_SCREENSHOT)

    page.locator("#only-relevant").check()
    expect(explanation.locator('tr[data-rule="max-dose"]')).to_be_hidden()
    expect(infusion).to_be_visible()
    page.locator("#only-relevant").uncheck()
    expect(explanation.locator('tr[data-rule="max-dose"]')).to_be_visible()


def test_a_patient_and_preset_build_a_request_that_evaluates(page: Page, pages_service: LiveService) -> None:
    open_playground(page, pages_service)
    page.locator("#patient").select_option("ferritin-rising")
    page.locator("#service").select_option("anakinra-order-sign")
    page.locator("#order").select_option("iv-2400-mg-day")
    page.locator("#build").click()
    expect(page.locator("#request")).to_have_value(re.compile(re.escape('"patientId": "fer-r1"')))
    expect(page.locator("#as-of")).to_have_value("2026-11-23T07:00")
    evaluate(page)
    expect(page.locator('.pg-card[data-rule="ferritin-rise"]')).to_have_class(
        re.compile(re.escape("pg-card--warning"))
    )
    build = page.locator('.pg-card[data-rule="infusion-build"]')
    expect(build).to_have_class(re.compile(re.escape("pg-card--info")))
    expect(build.locator(".pg-summary")).to_contain_text("800 mg in 250 mL NS q8h at 31.25 mL/h")
    expect(page.locator("#result-note")).to_contain_text(
        "anakinra-order-sign (order-sign) as of 2026-11-23 07:00 UTC"
    )

    # patient-view sends no draft order, so the preset list is switched off.
    page.locator("#service").select_option("mas-patient-view")
    expect(page.locator("#order")).to_be_disabled()


@pytest.fixture
def refused_page(browser: Browser) -> Iterator[Page]:
    """Like `page`, except that Chromium's own console line for a 400 answer is expected: the request
    is refused on purpose. Anything else logged as an error, or thrown, still fails the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    errors: list[str] = []
    refused: list[str] = []
    opened.on("pageerror", lambda error: errors.append(f"page error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if message.text == "Failed to load resource: the server responded with a status of 400 (Bad Request)":
            refused.append(message.text)
        else:
            errors.append(f"console {message.type}: {message.text}")

    opened.on("console", on_console)
    yield opened
    context.close()
    assert not errors, "\n".join(errors)
    assert refused, "the request was expected to be refused with 400"


def test_an_invalid_request_shows_the_operation_outcome(
    refused_page: Page, pages_service: LiveService
) -> None:
    page = refused_page
    open_playground(page, pages_service)
    page.locator("#request").fill('{"hook": "order-sign", "context": ')
    page.locator("#evaluate").click()
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(page.locator("#error-title")).to_have_text("HTTP 400: the service would refuse this request")
    expect(page.locator("#error-issues")).to_contain_text("not valid JSON")
    expect(page.locator("#results")).to_be_hidden()

    page.locator("#request").fill('{"hook": "order-sign", "hookInstance": "x", "context": {}}')
    page.locator("#evaluate").click()
    expect(page.locator("#error-issues li").first).to_contain_text("error")
    expect(page.locator("#error-title")).to_have_text("HTTP 400: the service would refuse this request")


@pytest.mark.parametrize("width", [360, 1280])
def test_merge_and_suppression_are_shown_and_the_page_fits_a_phone_and_a_desktop(
    browser: Browser, pages_service: LiveService, tmp_path: Path, width: int
) -> None:
    """One voice per response, as the playground shows it: the data-needed card names every rule it speaks
    for, the explanation says which card another suppressed and why; at 360 px nothing scrolls sideways."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        open_playground(page, pages_service)
        page.locator("#patient").select_option("renal-ckd-female")
        page.locator("#service").select_option("anakinra-order-sign")
        page.locator("#order").select_option("iv-3000-mg-day")
        page.locator("#build").click()
        expect(page.locator("#request")).to_have_value(re.compile(re.escape('"hook": "order-sign"')))
        evaluate(page)

        cards = page.locator(".pg-card")
        expect(cards).to_have_count(2)
        renal = page.locator('.pg-card[data-rule="renal-dose"]')
        expect(renal.locator(".pg-summary")).to_contain_text("above the 1200 mg/day renal maximum")
        merged = page.locator('.pg-card[data-merged="data-needed"]')
        expect(merged.locator(".pg-summary")).to_have_text(
            "Data needed for 2 checks: ferritin trend, baseline neutrophils"
        )
        expect(merged.locator(".pg-rule")).to_have_text(
            re.compile(r"^data-needed: speaks for ferritin-rise [\d.]+, neutrophil-baseline [\d.]+$")
        )
        # The max-dose card the rules asked for is not shown: the renal card says the same, lower.
        expect(page.locator('.pg-card[data-rule="max-dose"]')).to_have_count(0)
        explanation = page.locator("#explanation")
        expect(explanation.locator('tr[data-rule="max-dose"]')).to_contain_text("suppressed by renal-dose")
        expect(explanation.locator('tr[data-rule="neutrophil-baseline"]')).to_contain_text(
            "merged into data-needed"
        )

        scroll, client = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        # What reaches past the window, named in the failure.
        wide = page.evaluate(
            "Array.from(document.querySelectorAll('body *'))"
            ".filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)"
            ".slice(0, 10).map(e => e.tagName + '#' + e.id + '.' + e.className)"
        )
        assert scroll <= client, f"the page is {scroll} px wide in a {client} px window: {wide}"
        if width < 640:
            # A phone reads each rule's row as a block (rule, outcome, why, facts), not four columns squeezed
            # to a letter each.
            narrowest = page.evaluate(
                "Math.min(...Array.from(document.querySelectorAll('#explanation tbody td'))"
                ".map(cell => cell.getBoundingClientRect().width))"
            )
            assert narrowest >= 0.8 * client, f"an explanation cell is {narrowest} px wide"
        for box in (merged, renal):
            right = box.evaluate("card => card.getBoundingClientRect().right")
            assert right <= client, f"a card reaches {right} px in a {client} px window"
        page.screenshot(path=str(tmp_path / f"playground-{width}.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors
