"""The chart behind a card's link: GET /charts/{token} (the page) and /charts/{token}/chart.svg (the
drawing).

No JWT protects these (a browser opened from an EHR has none): the token is. It is 256 random bits,
expires with its data, and an unknown token, an expired one and a malformed one get the same 404, so
the answer tells nothing about which tokens exist. Malformed ones are refused before any query.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cds_service.charts.links import is_token
from cds_service.charts.text import number_text, time_text, unit_text, value_text
from cds_service.pages.html import HEADERS, page
from cds_service.store.database import ChartSnapshot, Store

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# matplotlib writes its styles inline, which the pages' policy forbids; an SVG loaded through <img> runs
# no script and loads nothing, so inline styles are all this one may have.
SVG_HEADERS = {
    **HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


class _Unavailable(Exception):
    """The database could not say whether the token exists."""


@router.get("/charts/{token}")
async def chart_page(token: str, request: Request) -> Response:
    try:
        snapshot = await _snapshot(request, token)
    except _Unavailable:
        return _unavailable()
    if snapshot is None:
        return _missing(request)
    return page("chart.html", **chart_context(snapshot))


@router.get("/charts/{token}/chart.svg")
async def chart_svg(token: str, request: Request) -> Response:
    return await _svg(token, request, narrow=False)


@router.get("/charts/{token}/chart-narrow.svg")
async def chart_svg_narrow(token: str, request: Request) -> Response:
    # The same chart drawn narrow, for phones: scaled down, the wide one's text would be unreadable.
    return await _svg(token, request, narrow=True)


async def _svg(token: str, request: Request, narrow: bool) -> Response:
    try:
        snapshot = await _snapshot(request, token)
    except _Unavailable:
        return _unavailable()
    if snapshot is None:
        return _missing(request)
    from cds_service.charts.draw import NARROW_WIDTH, draw_svg  # matplotlib: only once a chart is opened

    if narrow:
        svg = await run_in_threadpool(draw_svg, snapshot.payload, NARROW_WIDTH)
    else:
        svg = await run_in_threadpool(draw_svg, snapshot.payload)
    return Response(svg, media_type="image/svg+xml", headers=SVG_HEADERS)


@router.get("/charts/{anything:path}")
async def chart_elsewhere(anything: str, request: Request) -> Response:
    # Any other path under /charts is a link that never was: the same page as an expired one.
    return _missing(request)


async def _snapshot(request: Request, token: str) -> ChartSnapshot | None:
    if not is_token(token):
        return None
    store: Store = request.app.state.store
    try:
        return await run_in_threadpool(store.chart, token, datetime.now(UTC))
    except Exception as exc:
        log.error("chart lookup failed: %s", type(exc).__name__)
        raise _Unavailable from exc


def _missing(request: Request) -> Response:
    hours = request.app.state.runtime.settings.chart_ttl_hours
    return page("chart_missing.html", status=404, ttl_hours=number_text(hours))


def _unavailable() -> Response:
    return page("chart_missing.html", status=503, unavailable=True)


def chart_context(snapshot: ChartSnapshot) -> dict[str, Any]:
    """What chart.html shows: the payload's values as text, and the image's alternative text."""
    payload = snapshot.payload
    panels = []
    counts = []
    for panel in payload["panels"]:
        rows = []
        for series in panel["series"]:
            counts.append(f"{series['label']} ({len(series['points'])})")
            for time, value, comparator, reported in series["points"]:
                rows.append(
                    {
                        "time": time_text(time),
                        "sort": time,
                        "analyte": series["label"],
                        "value": value_text(value, comparator),
                        "bound": comparator is not None,
                        # As the lab reported it, its unit as people write it (the snapshot wrote it).
                        "reported": reported or "",
                    }
                )
        rows.sort(key=lambda row: (row["sort"], row["analyte"]))
        excluded = [(s["label"], reason) for s in panel["series"] for reason in s["excluded"]]
        panels.append(
            {
                "title": panel["title"],
                "unit": unit_text(panel),
                "rows": rows,
                "excluded": excluded,
                "thresholds": _threshold_rows(panel),
            }
        )
    dose = payload.get("dose")
    steps = []
    if dose:
        for step in dose["steps"]:
            steps.append(
                {
                    "start": time_text(step["start"]) or "unknown",
                    "end": time_text(step["end"]) or ("open" if step["draft"] else "unknown"),
                    "dose": number_text(step["dose"]) if step["dose"] is not None else "unknown",
                    "why": step["why"],
                    "status": "being signed" if step["draft"] else step["status"],
                    "summary": step["summary"],
                }
            )
    alt = f"{payload['title']}. Results drawn: {', '.join(counts)}"
    if dose:
        alt += f"; {len(steps)} {dose['label']} dose step(s)"
    alt += ". Every value is listed in the tables below."
    return {
        "token": snapshot.token,
        "title": payload["title"],
        "description": payload["description"],
        "as_of": time_text(payload["as_of"]),
        "since": time_text(payload["from"]),
        "expires": time_text(snapshot.expires_at),
        "notes": payload["notes"] + (dose["notes"] if dose else []),
        "panels": panels,
        "dose": {
            "title": dose["title"],
            "unit": unit_text(dose),
            "steps": steps,
            "thresholds": _threshold_rows(dose),
        }
        if dose
        else None,
        "alt": alt,
    }


def _threshold_rows(part: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """The lines drawn on a panel, with their value and source, and those this request could not draw."""
    unit = unit_text(part)
    return {
        "drawn": [
            {"label": t["label"], "value": f"{number_text(t['value'])} {unit}", "source": t["source"]}
            for t in part.get("thresholds") or ()
        ],
        "not_drawn": [{"label": t["label"], "why": t["why"]} for t in part.get("thresholds_not_drawn") or ()],
    }
