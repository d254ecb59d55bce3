"""How a chart writes times, numbers and UCUM units for people: on the page and in the drawing alike."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cds_service.facts.units import unit_text as ucum_text


def unit_text(part: Mapping[str, Any], key: str = "unit") -> str:
    """The unit of a chart part as people write it: the display form of rules/facts/units.yaml that the
    snapshot stored (as card text writes it); a snapshot stored before it had one is written out."""
    shown = part.get(f"{key}_text")
    return shown if isinstance(shown, str) else ucum_text(str(part.get(key) or ""))


def time_text(moment: datetime | str | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def number_text(value: float) -> str:
    """Whole numbers from 1000 up, else 4 significant digits: 26000, 96, 0.9, 1.235."""
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"


def axis_text(value: float) -> str:
    """A tick label: thousands grouped as lab reports print them (1,000 and 20,000), else number_text."""
    if 1000 <= abs(value) < 1e15:
        return f"{value:,.0f}"
    return number_text(value)


def value_text(value: float, comparator: str | None) -> str:
    return f"{comparator or ''}{number_text(value)}"
