"""How the clinical calculations quote the results they used: values as the EHR reported them, limits in
the unit a value was reported in, and texts cut to the width their fact spec declares."""

from __future__ import annotations

import math

from cds_service.clinical.base import Threshold
from cds_service.clinical.tristate import Tri
from cds_service.facts.named import Fact
from cds_service.ruleformat.text import format_number, format_time

__all__ = ["BOUNDS", "SHOWN", "clip", "limit", "seen", "value", "where"]

SHOWN = {Tri.MET: "met", Tri.NOT_MET: "not met", Tri.UNKNOWN: "unknown"}

# FHIR Quantity.comparator values that bound a number; "ad" bounds nothing.
BOUNDS = (">", ">=", "<", "<=")


def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters, so that a fact never renders wider than its spec says."""
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    # Never end on half of a Markdown escape.
    return (cut[:-1] if cut.endswith("\\") and not cut.endswith("\\\\") else cut) + "…"


def value(fact: Fact) -> str:
    """The value as reported: native number and unit, with a censoring comparator (">40000 ug/L")."""
    if fact.native_value is not None:
        number, unit = fact.native_value, fact.native_unit or fact.unit
    else:
        number, unit = float(fact.value) if isinstance(fact.value, int | float) else math.nan, fact.unit
    return f"{fact.comparator or ''}{format_number(number)} {unit or ''}".strip()


def where(fact: Fact) -> str:
    place = ", ".join(fact.evidence) or "no resource"
    note = f" ({fact.detail})" if fact.detail and fact.name.endswith(".worst") else ""
    return f"{format_time(fact.time)}, {place}{note}"


def seen(fact: Fact) -> str:
    return f" ({value(fact)})" if fact.value is not None else ""


def limit(threshold: Threshold, fact: Fact) -> str:
    """The threshold in the unit the value was reported in, when the rule states it in that unit."""
    unit = fact.native_unit
    if unit is not None and unit in threshold.native:
        return f"{format_number(threshold.native[unit])} {unit}"
    return f"{format_number(threshold.value)} {threshold.unit}"
