"""Pages for people, beside the API for EHRs: the chart behind a card's link, the rule playground and
the feedback report. None of them takes a JWT (a browser has none): the chart is reached only through
an unguessable, expiring token, and the playground and report are served only when asked for."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from cds_service.config import Settings

__all__ = ["include_pages"]


def include_pages(app: FastAPI, settings: Settings) -> None:
    from cds_service.pages import chart

    app.include_router(chart.router)
    if settings.playground:
        from cds_service.pages import playground

        app.include_router(playground.router)
    if settings.report_page:
        from cds_service.pages import report

        app.include_router(report.router)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        # Browsers ask for it on every page; an empty answer keeps their consoles free of 404s.
        return Response(status_code=204)

    app.mount("/static", StaticFiles(packages=[("cds_service.pages", "static")]), name="static")
