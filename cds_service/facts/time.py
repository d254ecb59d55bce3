"""FHIR date and dateTime values as aware datetimes (UTC when the value carries no zone)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def parse_datetime(value: str | None) -> datetime | None:
    """A FHIR dateTime or instant; a partial date (YYYY, YYYY-MM) means its first moment."""
    if not value:
        return None
    match = None if "T" in value else _PARTIAL.match(value)
    if match:
        year, month, day = match.groups()
        try:
            return datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: str | None) -> date | None:
    moment = parse_datetime(value)
    return moment.date() if moment else None
