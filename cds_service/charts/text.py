"""How a chart writes times, numbers and UCUM units for people: on the page and in the drawing alike."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# UCUM writes powers of ten as 10*9 and micro as a leading u (ug/L, umol/L, uL).
_POWER = re.compile(r"10\*(-?\d+)")
_MICRO = re.compile(r"(?<![A-Za-z])u(?=[a-zA-Z])")
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def unit_text(code: str) -> str:
    """A UCUM code as printed on a lab report: 10*9/L -> 10⁹/L, ug/L -> µg/L, mg/d -> mg/d."""
    text = _POWER.sub(lambda m: "10" + m.group(1).translate(_SUPERSCRIPT), code)
    return _MICRO.sub("µ", text)


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
