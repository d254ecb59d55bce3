"""GET /report?since=&until=&rule=&by_service=: the feedback report (store/report.py, which says what
is counted) as a page. It shows rule ids, counts and the EHRs' override codings, never a patient or a
comment; it is still served only when asked for (--report-page), since it is not behind a JWT."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from cds_service.engine.reasons import offered_reasons
from cds_service.pages.html import page
from cds_service.store.database import StoreError
from cds_service.store.report import DEFAULT_DAYS, PeriodError, check_rule_id, iso, period

log = logging.getLogger("cds_service.pages.report")
router = APIRouter(include_in_schema=False)

TOP_REASONS = 5
QUICK_PERIODS = (
    ("24 hours", timedelta(days=1)),
    ("7 days", timedelta(days=7)),
    ("30 days", timedelta(days=30)),
)


@dataclasses.dataclass
class _Form:
    """What the form shows: the period as read (or as typed, when it could not be read)."""

    since: str
    until: str
    rule: str
    by_service: bool

    def link(self, **changes: str) -> str:
        """This page's URL for the same period with some parameters changed (a rule picked)."""
        current = {"since": self.since, "until": self.until, "rule": self.rule}
        if self.by_service:
            current["by_service"] = "1"
        return _link(**(current | changes))


@router.get("/report")
async def report_page(request: Request) -> HTMLResponse:
    params = request.query_params
    form = _Form(
        since=params.get("since", ""),
        until=params.get("until", ""),
        rule=params.get("rule", ""),
        by_service=bool(params.get("by_service")),
    )
    # Up to the next whole second: the form shows seconds, and no card is issued in the future.
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    rule_ids = _known_rule_ids(request)
    context: dict[str, Any] = {
        "form": form,
        "quick": [(label, _link(since=_local(now - span))) for label, span in QUICK_PERIODS],
        "days": DEFAULT_DAYS,
        "report": None,
    }
    try:
        since, until = period(form.since or None, form.until or None, now)
        rule_id = check_rule_id(form.rule)
    except PeriodError as exc:
        return page("report.html", status=400, error=str(exc), rule_ids=rule_ids, **context)
    form.since, form.until, form.rule = _local(since), _local(until), rule_id or ""
    try:
        ruleset = request.app.state.runtime.engine.ruleset
        merge = ruleset.response.data_needed
        offered = offered_reasons(
            (rule.spec for rule in ruleset.rules.values()), merge.overrideReasons if merge else ()
        )
        report = await run_in_threadpool(
            request.app.state.store.feedback_report,
            since,
            until,
            rule_id,
            form.by_service,
            TOP_REASONS,
            offered,
        )
    except StoreError:
        # The message names the database; this page has no login, so it only says what failed.
        log.exception("the feedback report could not be read")
        error = "The database is unavailable; try again later."
        return page("report.html", status=503, error=error, rule_ids=rule_ids, **context)
    rule_ids = sorted(set(rule_ids) | {row.rule_id for row in report.rows})
    context["report"] = report
    return page("report.html", error=None, rule_ids=rule_ids, iso=iso, link=form.link, **context)


def _known_rule_ids(request: Request) -> list[str]:
    ruleset = request.app.state.runtime.engine.ruleset
    ids = set(ruleset.rules)
    ids.update(s.incomplete_data_card.id for s in ruleset.services if s.incomplete_data_card is not None)
    return sorted(ids)


def _local(moment: datetime) -> str:
    """A UTC time as a datetime-local input holds it (the form says the times are UTC)."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(timespec="milliseconds" if naive.microsecond else "seconds")


def _link(**params: str) -> str:
    return "/report?" + urlencode({key: value for key, value in params.items() if value})
