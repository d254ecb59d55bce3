"""Named facts: the small set of clinically named values rules read (`ferritin.worst`, `order.daily_dose`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

# A "build" is a text fact (its description) whose `data` a suggestion can write back as an order.
FactKind = Literal["quantity", "text", "boolean", "count", "build"]


@dataclasses.dataclass(frozen=True, slots=True)
class Fact:
    name: str
    value: float | str | bool | None  # None = could not be computed; then `missing` says why
    unit: str | None = None  # UCUM code of `value` (the catalog's canonical unit for quantities)
    missing: str | None = None  # e.g. "no body weight in the last 7 days"
    native_value: float | None = None  # as reported, in its own unit (native-unit comparison)
    native_unit: str | None = None  # the reported UCUM unit, after alias mapping
    comparator: str | None = None  # "<", "<=", ">=", ">" for a censored result
    time: datetime | None = None  # time of the underlying result, when there is one
    evidence: tuple[str, ...] = ()  # e.g. ("Observation/fer-3",)
    detail: str | None = None  # short human text shown by explain
    # Structured values a suggestion builds from (e.g. a bag build: dose, volume, interval, rate); rules
    # never compare it, cards never show it raw.
    data: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class FactSpec:
    name: str
    kind: FactKind
    unit: str | None  # canonical UCUM unit for quantities, else None
    description: str
    values: tuple[str, ...] = ()  # the allowed values of a text fact, when closed
    width: int | None = None  # the widest an open text renders, for the summary-length lint
    # The widest its .detail renders, when a summary shows it (else the default of ruleformat/text.py WIDTH).
    detail_width: int | None = None


def missing(name: str, reason: str, evidence: Sequence[str] = (), detail: str | None = None) -> Fact:
    """A fact that could not be computed, and why."""
    return Fact(name, None, missing=reason, evidence=tuple(evidence), detail=detail)
