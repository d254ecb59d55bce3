"""The chart page over real HTTP: from a card's link to the page, its drawing, and its end."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select, update

from cds_service.pages.chart import chart_page, chart_svg
from cds_service.pages.html import HEADERS
from cds_service.store.database import ChartSnapshot, Store
from cds_service.store.schema import chart_snapshots
from tests.charts.requests import draft_order, patient, request
from tests.charts.svg import markers, vertices
from tests.live import LiveService

ORDER_SIGN = "/cds-services/anakinra-order-sign"
MISSING = "This chart link has expired or does not exist"


def ferritin_link(http: httpx.Client) -> tuple[str, list[dict[str, Any]]]:
    """POST order-sign for the ferritin-rising patient, its data moved to now; the ferritin card's link."""
    resources = patient("ferritin-rising", datetime.now(UTC))
    response = http.post(ORDER_SIGN, json=request("anakinra-order-sign", resources, draft_order(400)))
    assert response.status_code == 200
    cards = response.json()["cards"]
    ferritin = next(c for c in cards if c["extension"]["cds-service-provenance"]["ruleId"] == "ferritin-rise")
    assert ferritin["indicator"] == "warning"
    (link,) = ferritin["links"]
    assert link["type"] == "absolute"
    return link["url"], resources


def token_of(url: str, service: LiveService) -> str:
    match = re.fullmatch(re.escape(service.base_url) + r"/charts/([A-Za-z0-9_-]{43})", url)
    assert match is not None, url
    return match.group(1)


def assert_page_headers(response: httpx.Response) -> None:
    for name in ("Cache-Control", "Referrer-Policy", "X-Robots-Tag", "X-Content-Type-Options"):
        assert response.headers[name] == HEADERS[name]


def test_from_the_card_to_the_page_and_its_drawing(http: httpx.Client, service: LiveService) -> None:
    url, resources = ferritin_link(http)
    token = token_of(url, service)

    page = http.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["Content-Security-Policy"] == HEADERS["Content-Security-Policy"]
    assert_page_headers(page)
    html = page.text
    assert f'<img src="/charts/{token}/chart.svg" alt="' in html
    assert "ferritin (4)" in html  # the image's alternative text counts what it draws
    assert "Data as of" in html and "link valid until" in html
    ferritin_rows = re.findall(r"<td>ferritin</td><td class=\"num\">([^<]+)</td><td>µg/L</td>", html)
    assert ferritin_rows == ["8200", "12000", "10500", "26000"]
    # The dose in the words a clinician uses (mg/day, not the UCUM mg/d).
    assert re.search(r"<td class=\"num\">400</td><td>mg/day</td><td>400 mg/day continuous \(iv\)</td>", html)

    svg = http.get(f"{url}/chart.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    assert_page_headers(svg)
    assert len(vertices(svg.text, "series-ferritin")) == 4
    assert len(markers(svg.text, "points-ferritin")) == 4
    # Phones get the same chart drawn narrow, so that its text stays readable when scaled to the screen.
    assert f'<source media="(max-width: 40rem)" srcset="/charts/{token}/chart-narrow.svg">' in html
    narrow = http.get(f"{url}/chart-narrow.svg")
    assert narrow.status_code == 200 and narrow.headers["content-type"] == "image/svg+xml"
    assert narrow.headers["Content-Security-Policy"] == svg.headers["Content-Security-Policy"]
    assert len(vertices(narrow.text, "series-ferritin")) == 4
    assert narrow.text != svg.text
    # Every row says what the lab reported; here the unit drawn is the unit reported.
    reported = re.findall(r"<td>µg/L</td><td>([^<]*)</td></tr>", html)
    assert reported == ["8200 µg/L", "12000 µg/L", "10500 µg/L", "26000 µg/L"]

    person = next(r for r in resources if r["resourceType"] == "Patient")
    identifying = [person["id"], *(n["family"] for n in person["name"]), *person["name"][0]["given"]]
    assert not [text for text in identifying if text in url or text in svg.text]


def test_an_expired_link_unknown_and_malformed_ones_get_the_same_404(
    http: httpx.Client, service: LiveService, database_url: str
) -> None:
    url, _ = ferritin_link(http)
    token = token_of(url, service)
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            past = datetime.now(UTC) - timedelta(seconds=1)
            conn.execute(
                update(chart_snapshots).where(chart_snapshots.c.token == token).values(expires_at=past)
            )
    finally:
        engine.dispose()
    answers = [
        http.get(url),
        http.get(f"{url}/chart.svg"),
        http.get(f"/charts/{'A' * 43}"),  # well formed, never issued
        http.get(f"/charts/{'A' * 43}/chart.svg"),
        http.get("/charts/..%2F..%2Fetc"),
        http.get(f"/charts/{token}x"),
        http.get(f"/charts/{token}/other/path"),
    ]
    assert [a.status_code for a in answers] == [404] * len(answers)
    assert len({a.text for a in answers}) == 1 and MISSING in answers[0].text
    for answer in answers:
        assert_page_headers(answer)


def test_the_link_lasts_as_long_as_configured_and_purge_forgets_it(
    database_url: str, service_with: Any
) -> None:
    http = service_with(chart_ttl_hours=2)
    url, _ = ferritin_link(http)
    token = url.rsplit("/", 1)[1]
    store = Store(database_url)
    try:
        now = datetime.now(UTC)
        snapshot = store.chart(token, now)
        assert snapshot is not None
        assert timedelta(hours=2) - (snapshot.expires_at - now) < timedelta(minutes=5)
        later = snapshot.expires_at + timedelta(seconds=1)
        assert store.chart(token, later) is None  # expired before any purge
        assert store.chart(token, now) is not None
        store.purge(later, None)
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(chart_snapshots)).scalar_one() == 0
    finally:
        store.close()
    assert http.get(url).status_code == 404


def test_purge_keeps_the_charts_still_valid(database_url: str) -> None:
    store = Store(database_url)
    now = datetime.now(UTC)
    made = [
        ChartSnapshot(f"{name:A<43}", "c", now - timedelta(hours=13), now + timedelta(hours=hours), {"x": 1})
        for name, hours in (("old", -1), ("new", 11))
    ]
    try:
        store.save_charts(made)
        store.purge(now, None)
        assert store.chart(made[0].token, now - timedelta(hours=2)) is None  # gone, not just expired
        kept = store.chart(made[1].token, now)
        assert kept is not None and kept.payload == {"x": 1}
    finally:
        store.close()


class _Store:
    def __init__(self, error: Exception | None = None) -> None:
        self.queries = 0
        self.error = error

    def chart(self, token: str, now: datetime) -> ChartSnapshot | None:
        self.queries += 1
        if self.error is not None:
            raise self.error
        return None


def _request(store: _Store) -> Any:
    settings = SimpleNamespace(chart_ttl_hours=12.0)
    return SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(store=store, runtime=SimpleNamespace(settings=settings)))
    )


@pytest.mark.parametrize("token", ["", "short", "A" * 44, "A" * 42 + "=", "A" * 42 + "é", "../" * 15])
async def test_a_malformed_token_is_refused_without_a_query(token: str) -> None:
    store = _Store()
    for route in (chart_page, chart_svg):
        response = await route(token, _request(store))
        assert response.status_code == 404 and MISSING in bytes(response.body).decode()
    assert store.queries == 0
    well_formed = await chart_page("A" * 43, _request(store))
    assert well_formed.status_code == 404 and store.queries == 1


async def test_a_database_that_cannot_answer_is_a_503_page() -> None:
    store = _Store(error=OSError("database is locked"))
    for route in (chart_page, chart_svg):
        response = await route("A" * 43, _request(store))
        assert response.status_code == 503
        assert "Charts are unavailable right now" in bytes(response.body).decode()
        assert response.headers["Cache-Control"] == "no-store"
