"""The facts one request is reduced to. Plain values; rules never see raw request JSON."""

from __future__ import annotations

import dataclasses
import functools
from datetime import date, datetime
from typing import Any

from cds_service.data.resources import Resource
from cds_service.facts.strict import strict_notes


@dataclasses.dataclass(frozen=True, slots=True)
class LabValue:
    """One usable result (observation hygiene already applied)."""

    id: str | None
    code: str  # "system|code", e.g. "http://loinc.org|2276-4"
    value: float | None
    comparator: str | None
    unit: str | None  # the UCUM code when given, else the unit text
    time: datetime | None
    status: str
    resource: Resource


@dataclasses.dataclass(frozen=True)
class DraftOrder:
    """An order from context.draftOrders, read leniently from its JSON: real clients omit required
    elements and send others in the wrong shape."""

    id: str | None
    resource_type: str
    raw: dict[str, Any]

    @functools.cached_property
    def validation_notes(self) -> tuple[str, ...]:
        """What strict FHIR R4 validation finds missing or wrong (e.g. no `intent`); shown by explain.

        Computed on first use: fhir.resources validation costs more than the rest of reading the order.
        """
        return strict_notes(self.raw)


@dataclasses.dataclass
class Facts:
    now: datetime
    hook: str
    hook_instance: str
    patient_id: str | None
    birth_date: date | None = None
    gender: str | None = None
    # by "system|code", newest first; results without a time sort last
    labs: dict[str, list[LabValue]] = dataclasses.field(default_factory=dict)
    draft_orders: list[DraftOrder] = dataclasses.field(default_factory=list)
    selections: list[str] = dataclasses.field(default_factory=list)
    medication_orders: list[Resource] = dataclasses.field(default_factory=list)
    conditions: list[Resource] = dataclasses.field(default_factory=list)
    other: dict[str, list[Resource]] = dataclasses.field(default_factory=dict)
    # observations dropped by hygiene (entered-in-error, cancelled, no value...), by reason
    excluded: dict[str, int] = dataclasses.field(default_factory=dict)
    # problems with the data we have, and data we could not have (label -> why)
    problems: list[str] = dataclasses.field(default_factory=list)
    unavailable: dict[str, str] = dataclasses.field(default_factory=dict)
    # labels of `unavailable` data that the incomplete-data card does not announce (PrefetchItem.announce)
    unannounced: set[str] = dataclasses.field(default_factory=set)
    # What several calculations derive from the same resource in this request, derived once
    # (facts/orders.py: an order's JSON, its normalised form, the Medication resolver).
    memo: dict[Any, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def lab(self, code: str) -> list[LabValue]:
        return self.labs.get(code, [])
