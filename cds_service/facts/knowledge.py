"""The clinical knowledge of rules/facts/*.yaml, as the plain read-only values fact code runs on.

Built once per ruleset load by catalog.py; nothing here is validated again per request.
Codes are "system|code" strings, the same keys Facts.labs uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Literal

from cds_service.facts.names import Names


def duration_text(window: timedelta) -> str:
    """'7 days', '48 hours': how a window reads in a missing-fact reason."""
    hours = window.total_seconds() / 3600
    if hours % 24 == 0:
        days = int(hours // 24)
        return "1 day" if days == 1 else f"{days} days"
    return f"{hours:g} hours" if hours != 1 else "1 hour"


def unavailable(gaps: Mapping[str, str], sources: Iterable[str]) -> str | None:
    """Why data from one of `sources` (prefetch labels, as in Facts.unavailable) could not be had."""
    for source in sources:
        why = gaps.get(source)
        if why is not None:
            return f"{source} could not be read: {why}"
    return None


@dataclasses.dataclass(frozen=True)
class Derivation:
    """This analyte = first x second (unit algebra), from results at the same time (within `within`)."""

    first: str
    second: str
    within: timedelta


@dataclasses.dataclass(frozen=True)
class Analyte:
    name: str
    label: str
    codes: tuple[str, ...]
    unit: str  # canonical UCUM unit
    window: timedelta
    worst: Literal["max", "min"] | None = None
    molar_mass: float | None = None  # g/mol, for mass <-> substance concentrations
    same_unit: frozenset[str] = frozenset()  # arbitrary-unit codes equal to `unit` (no UCUM conversion)
    derive: Derivation | None = None

    @property
    def window_text(self) -> str:
        return duration_text(self.window)


@dataclasses.dataclass(frozen=True)
class Labs:
    analytes: dict[str, Analyte]
    sources: tuple[str, ...]  # prefetch labels whose absence makes lab facts unknown


@dataclasses.dataclass(frozen=True)
class Patient:
    weight_analyte: str
    sources: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Matcher:
    """Recognises a coded concept: exact codes, code prefixes (ATC classes), NDCs, or words in its text."""

    codes: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()  # "system|prefix"
    ndc: frozenset[str] = frozenset()  # 11-digit NDCs without hyphens
    text: tuple[str, ...] = ()  # lower-case substrings

    def matches_code(self, key: str) -> bool:
        return key in self.codes or any(key.startswith(prefix) for prefix in self.prefixes)


@dataclasses.dataclass(frozen=True)
class RouteException:
    """Orders of a class that do not count by these routes (vancomycin by mouth is not absorbed)."""

    label: str
    matcher: Matcher
    routes: frozenset[str]


@dataclasses.dataclass(frozen=True)
class RouteFilter:
    """Which orders of a class count, by route: only `counted` routes, less the exceptions. An order whose
    route is not given, or not one medications.yaml knows, cannot be placed."""

    counted: frozenset[str]
    exceptions: tuple[RouteException, ...] = ()


@dataclasses.dataclass(frozen=True)
class MedicationClass:
    name: str
    label: str
    matcher: Matcher
    dose_unit: str  # UCUM unit the drug is dosed in (mg): order facts are in it, per day, per mL, per kg
    routes: RouteFilter | None = None  # None: every route counts


@dataclasses.dataclass(frozen=True)
class Route:
    name: str
    label: str
    infusion: bool  # bag facts apply only to infusion routes (not to a subcutaneous syringe)
    codes: frozenset[str]
    text: tuple[str, ...]  # lower-case words or phrases


@dataclasses.dataclass(frozen=True)
class Medications:
    classes: dict[str, MedicationClass]
    routes: dict[str, Route]
    timing_codes: dict[str, float]  # upper-case timing code (Q8H, BID) -> interval in hours
    ndc_systems: frozenset[str]
    sources: tuple[str, ...]
    # The dose unit every class shares (the catalog refuses classes that differ), so the order.* facts
    # have one unit whichever medication a service orders.
    dose_unit: str


@dataclasses.dataclass(frozen=True)
class Specimen:
    """The specimen a finding needs (blood), and the specimens known not to be it (urine, sputum)."""

    label: str
    codes: frozenset[str]
    names: Names  # display texts and words that name it ("Peripheral blood")
    other_codes: frozenset[str]
    other_names: Names
    sources: tuple[str, ...]  # prefetch labels that carry the Specimen resources


@dataclasses.dataclass(frozen=True)
class ValueSet:
    """Result values of one kind (gram-negative organisms, no growth): codes, and names for results sent
    as text only."""

    name: str
    label: str
    codes: frozenset[str]
    names: Names
    leading: bool = False  # names count only at the start of the text ("No growth at 5 days")

    def find(self, keys: Iterable[str], texts: Iterable[str]) -> str | None:
        """The code or name that puts a value with these codings and texts in this set, if any."""
        for key in keys:
            if key in self.codes:
                return key
        for text in texts:
            if self.leading:
                if self.names.starts(text):
                    return text
            else:
                found = self.names.find(text)
                if found is not None:
                    return found
        return None

    def denied(self, texts: Iterable[str]) -> bool:
        """Whether the texts name a value of this set only to deny it ("no E. coli isolated")."""
        return not self.leading and any(self.names.denied(t) for t in texts)


@dataclasses.dataclass(frozen=True)
class MicroResult:
    """One kind of result (a culture, a Gram stain) and what its values mean: `positive` values make the
    finding, `other` values are recognised as not making it (a gram-positive organism, a contaminant),
    `negative` values report no organism. Any other value of a result of this kind is unrecognised."""

    label: str
    codes: frozenset[str]
    positive: tuple[ValueSet, ...]
    other: tuple[ValueSet, ...]
    negative: tuple[ValueSet, ...]
    specimen_in_code: bool  # the code itself names the specimen (LOINC 600-7 is "in Blood")
    any_code_on_specimen: bool  # any result on the specimen with a positive value counts too


@dataclasses.dataclass(frozen=True)
class MicroFinding:
    name: str
    label: str
    window: timedelta
    specimen: Specimen
    results: tuple[MicroResult, ...]


@dataclasses.dataclass(frozen=True)
class Microbiology:
    findings: dict[str, MicroFinding]
    sources: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ConditionSet:
    name: str
    label: str
    resource: Literal["Condition", "Procedure", "Encounter"]
    matcher: Matcher
    sources: tuple[str, ...]  # prefetch labels whose absence makes the status unknown
    window: timedelta | None = None  # procedures and encounters: how recent one must be


@dataclasses.dataclass(frozen=True)
class Conditions:
    sets: dict[str, ConditionSet]
