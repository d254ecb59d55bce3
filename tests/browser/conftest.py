"""A real headless Chromium (Debian's /usr/bin/chromium, installed by `make test`) driven by Playwright,
and the service over real HTTP with its pages switched on."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from cds_service.config import Settings
from tests.live import LiveService

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium(path: Path, ci: bool) -> None:
    """Skip when the browser is genuinely absent, which only a bare `pytest` on a machine without it
    meets: `make test` installs it first. CI must run these tests, so there absent is a failure."""
    if os.access(path, os.X_OK):
        return
    reason = f"{path} is not installed: `make test` installs Debian's chromium (or apt-get install chromium)"
    if ci:
        pytest.fail(f"CI runs the browser tests: {reason}")
    pytest.skip(reason)


# Per module, not per session: sync Playwright keeps an asyncio loop running in this thread while it is
# open, and every async test collected after tests/browser would fail with "cannot be called from a
# running event loop".
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium(CHROMIUM, ci=bool(os.environ.get("CI")))
    # Present, it must work: a browser that does not start fails here, it is never skipped.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    errors: list[str] = []
    # A page that throws, or that the CSP blocks, is a failing page even when the text looks right.
    opened.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    opened.on(
        "console",
        lambda message: (
            errors.append(f"console {message.type}: {message.text}") if message.type == "error" else None
        ),
    )
    yield opened
    context.close()
    assert not errors, "\n".join(errors)


@pytest.fixture
def pages_service(settings: Settings) -> Iterator[LiveService]:
    """The service with the playground and the report page on, as `make serve` runs it."""
    with LiveService(dataclasses.replace(settings, playground=True, report_page=True)) as live:
        yield live
