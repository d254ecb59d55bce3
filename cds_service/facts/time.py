"""FHIR date and dateTime values as aware datetimes (UTC when the value carries no zone)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")
# Years a clinical time can fall in. FHIR allows 0001-9999, and EHRs write their "no date" as
# 0001-01-01 or 9999-12-31; taken as times, those overflow the calendar in the first subtraction (a
# lookback) or time-zone shift. Outside this range a value is no date.
_YEARS = range(1800, 2200)


def parse_datetime(value: str | None) -> datetime | None:
    """A FHIR dateTime or instant; a partial date (YYYY, YYYY-MM) means its first moment. None when the
    value is not one, or falls outside the years 1800-2199."""
    if not value:
        return None
    match = None if "T" in value else _PARTIAL.match(value)
    if match:
        year, month, day = match.groups()
        try:
            parsed = datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
        except ValueError:
            return None
    else:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    if parsed.year not in _YEARS:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: str | None) -> date | None:
    moment = parse_datetime(value)
    return moment.date() if moment else None
