"""FHIR date and dateTime values as aware datetimes (UTC when the value carries no zone)."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")
# Years a clinical time can fall in. FHIR allows 0001-9999, and EHRs write their "no date" as
# 0001-01-01 or 9999-12-31; taken as times, those overflow the calendar in the first subtraction (a
# lookback) or time-zone shift. Outside this range a value is no date.
_YEARS = range(1800, 2200)
# Durations are bounded the same way: one longer than the calendar's span (a boundsDuration of 9999
# years) is no duration, and a time it would end at outside the calendar is no date.
MAX_DAYS = (datetime(_YEARS.stop, 1, 1) - datetime(_YEARS.start, 1, 1)).days


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


def in_calendar(moment: datetime) -> bool:
    return moment.year in _YEARS


def duration_days(days: float | None) -> float | None:
    """`days` as a duration the service computes with; None when it is not a number of days from 0 to
    MAX_DAYS (not finite, negative, or longer than the calendar)."""
    if days is None or not math.isfinite(days) or not 0 <= days <= MAX_DAYS:
        return None
    return days


def after(start: datetime, days: float) -> datetime | None:
    """`start` plus `days`; None when the duration is none (duration_days) or the end falls outside the
    years 1800-2199, where parse_datetime finds no date either."""
    length = duration_days(days)
    if length is None:
        return None
    try:
        end = start + timedelta(days=length)
    except OverflowError:
        return None
    return end if in_calendar(end) else None
