"""Exposure to a drug and the monitoring it calls for: the `exposure` and `neutrophils` calculations.

`exposure` reads the prefetched medication orders (active and completed) of one medication class and the
draft order being signed (rules-logic.md (e): "higher doses", "prolonged therapy", "given in the last 7
days"). The seeds define none of these numerically, so the class, the high dose and the windows are all
parameters of the providing rule file.

Each prior order is a course: one period at one daily dose. It starts at timing.repeat.boundsPeriod.start,
else at authoredOn. It ends at boundsPeriod.end (or start + boundsDuration); else when the next order for
the drug starts, because a dose change is written as a new order; else now, for an active order. A
completed order with none of these has no known end, and whatever depends on it becomes a bound or
unknown, with the order named, never a guess.

Facts:
- exposure.recent: a prior order is active now or ended within the recent window.
- exposure.recent_or_ordered: exposure.recent, or a draft order for the drug is being signed.
- exposure.daily_dose: the draft order's daily dose; without a draft, the newest order in force now, else
  the newest that ended within the recent window (for card text).
- exposure.days_high: days on prior orders at or above the high dose, overlapping orders counted once,
  up to now. The draft order is not counted (see planned_days_high). When some prior order's dose or end
  is unknown the value is a lower bound (">="), kept only when it already reaches `prolonged`; below it
  the fact is missing and says which order could not be placed.
- exposure.planned_days_high: the draft order's planned duration when it is at or above the high dose
  (boundsPeriod, boundsDuration or dispenseRequest.expectedSupplyDuration); 0 below the high dose.
- exposure.prior_orders: prior orders active now or ended within the episode window, which stands in
  for "this encounter" (prefetched orders carry no encounter).

`neutrophils.current` is the newest absolute neutrophil count (anc.latest) only while it is no older than
`current_within`; an older count is missing with its value, time and age, so a neutropenia rule reports
"no current count" instead of passing on a stale one. `neutrophils.last_known` keeps that older count (value,
age, and whether it is below the `neutropenia` / `severe_neutropenia` limits) for the card that asks for a
current one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cds_service.clinical.base import Configured, ParameterError, Params, Threshold, require_dose_unit
from cds_service.clinical.tristate import Tri, any_of
from cds_service.facts import numbers
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.coding import raw_list
from cds_service.facts.knowledge import MedicationClass, Medications, duration_text, unavailable
from cds_service.facts.model import DraftOrder, Facts
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.facts.orders import (
    Json,
    Normalised,
    Resolver,
    being_ordered,
    is_medication,
    normalised,
    order_json,
    resolver,
)
from cds_service.facts.time import after, duration_days, parse_datetime
from cds_service.facts.units import Units, tidy

# The unit this calculation computes and words doses in ("mg/day", "mg/kg/h"); configure refuses a rule
# pack whose medications are dosed in another.
DOSE_UNIT = "mg"

# FHIR MedicationRequest.status codes: orders that were given (active: still in force).
_GIVEN = frozenset({"active", "completed"})
_IN_FORCE = "active"
_NEVER = datetime.min.replace(tzinfo=UTC)
_DAY = 86400.0

# How each calculation words its facts' details and missing reasons: rule-file template parameters
# (high-dose-infection-watch.yaml, neutropenia.yaml) with the placeholders each may name. Doses come with
# {dose_unit} (medications.yaml dose_unit), times as "2026-11-23 08:00", windows as "7 days".
EXPOSURE_WORDING: dict[str, tuple[str, ...]] = {
    "course_text": ("order", "status", "summary", "start", "end"),
    "course_no_start_text": (),
    "course_no_end_text": (),
    "ordered_text": ("drug", "being", "summary"),
    "draft_text": ("summary",),
    "no_draft_text": ("drug",),
    "draft_dose_unknown_text": ("why",),
    "below_high_text": ("dose", "high_dose", "dose_unit"),
    "no_planned_text": (),
    "planned_text": ("days", "where", "dose", "dose_unit"),
    "not_recent_text": ("drug", "window"),
    "no_current_text": ("drug", "window"),
    "order_why_text": ("order", "why"),
    "dose_unknown_text": ("order", "why"),
    "no_start_text": ("order", "status"),
    "no_end_text": ("order", "status"),
    "days_high_text": ("days", "high_dose", "dose_unit"),
    "days_high_courses_text": ("days", "high_dose", "dose_unit", "courses"),
    "at_least_text": ("detail", "unsure"),
    "days_known_text": ("days", "high_dose", "dose_unit", "unsure"),
    "prior_text": ("count", "drug", "window"),
    "prior_courses_text": ("count", "drug", "window", "courses"),
    "unplaced_text": ("order", "status", "window"),
    "unplaced_no_start_text": ("order", "status"),
    "unplaced_more_text": ("more",),
    "older_text": ("courses",),
}
NEUTROPHIL_WORDING: dict[str, tuple[str, ...]] = {
    "none_text": ("label",),
    "stale_text": ("label", "result", "time", "age", "within"),
    "current_text": ("result", "time", "age"),
    "none_in_window_text": ("label", "window"),
    "none_usable_text": ("label", "window"),
    "last_known_text": ("label", "value", "unit", "age"),
    "severe_text": ("limit",),
    "low_text": ("limit",),
}


@dataclasses.dataclass(frozen=True)
class Wording:
    """A rule file's wording templates (EXPOSURE_WORDING or NEUTROPHIL_WORDING), checked at configure."""

    templates: Mapping[str, str]

    @classmethod
    def of(cls, params: Params, wording: Mapping[str, Sequence[str]]) -> Wording:
        return cls({name: params.template(name, names) for name, names in wording.items()})

    def __call__(self, name: str, **values: str) -> str:
        return self.templates[name].format(**values)


EXPOSURE_FACTS = (
    "exposure.recent",
    "exposure.recent_or_ordered",
    "exposure.daily_dose",
    "exposure.days_high",
    "exposure.planned_days_high",
    "exposure.prior_orders",
)


@dataclasses.dataclass(frozen=True)
class Course:
    """One prior order as a period at one daily dose."""

    reference: str
    status: str
    dose: float | None  # mg/d; None when the order does not give one (`why` says why)
    why: str
    start: datetime | None
    end: datetime | None  # None: not known (a completed order with no end and no later order)
    summary: str

    def describe(self, say: Wording) -> str:
        start = f"{self.start:%Y-%m-%d %H:%M}" if self.start else say("course_no_start_text")
        end = f"{self.end:%Y-%m-%d %H:%M}" if self.end else say("course_no_end_text")
        return say(
            "course_text",
            order=self.reference,
            status=self.status,
            summary=self.summary,
            start=start,
            end=end,
        )


@dataclasses.dataclass(frozen=True)
class ExposureSettings:
    drug: MedicationClass
    medications: Medications
    units: Units
    high_dose: float  # mg/d
    prolonged: float  # d
    recent: timedelta
    episode: timedelta
    say: Wording
    dose_unit: str  # medications.yaml dose_unit as people write it ("mg")

    def _courses(self, courses: Iterable[Course]) -> str:
        return "; ".join(c.describe(self.say) for c in courses)

    def _unplaced(self, unsure: Sequence[Course], window: str) -> str:
        """Why these courses cannot be placed in or out of the window (they have no end date)."""
        say = self.say
        reasons = [
            say("unplaced_text", order=c.reference, status=c.status, window=window)
            if c.start is not None
            else say("unplaced_no_start_text", order=c.reference, status=c.status)
            for c in unsure[:2]
        ]
        more = say("unplaced_more_text", more=str(len(unsure) - 2)) if len(unsure) > 2 else ""
        return "; ".join(reasons) + more

    def _with_older(self, detail: str, older: Sequence[Course]) -> str:
        return detail + (self.say("older_text", courses=self._courses(older)) if older else "")

    def compute(self, named: Mapping[str, Fact], facts: Facts) -> dict[str, Fact]:
        resolve = resolver(facts)
        weight = named["patient.weight"]
        draft = _draft(facts, self.drug, self.medications, resolve)
        ordered = (
            normalised(facts, draft.raw, self.drug, self.medications, self.units, weight) if draft else None
        )
        out = {"exposure.planned_days_high": self._planned(draft, ordered, facts.now)}
        gap = unavailable(facts.unavailable, self.medications.sources)
        if gap is not None:
            for name in ("exposure.recent", "exposure.days_high", "exposure.prior_orders"):
                out[name] = missing(name, gap)
            out["exposure.recent_or_ordered"] = self._ordered(ordered, facts.hook) or missing(
                "exposure.recent_or_ordered", gap
            )
            out["exposure.daily_dose"] = self._draft_dose(ordered) or missing("exposure.daily_dose", gap)
            return out
        draft_id = draft.id if draft else None
        courses = prior_courses(facts, self.drug, self.medications, self.units, resolve, weight, draft_id)
        recent = self._recent(courses, facts.now)
        out["exposure.recent"] = recent
        out["exposure.recent_or_ordered"] = self._ordered(ordered, facts.hook) or dataclasses.replace(
            recent, name="exposure.recent_or_ordered"
        )
        out["exposure.daily_dose"] = self._draft_dose(ordered) or self._current_dose(courses, facts.now)
        out["exposure.days_high"] = self._days_high(courses, facts.now)
        out["exposure.prior_orders"] = self._prior_orders(courses, facts.now)
        return out

    # --- the draft order ----------------------------------------------------------------------------

    def _ordered(self, ordered: Normalised | None, hook: str) -> Fact | None:
        if ordered is None:
            return None
        return Fact(
            "exposure.recent_or_ordered",
            True,
            evidence=(ordered.reference,),
            detail=self.say(
                "ordered_text", drug=self.drug.label, being=being_ordered(hook), summary=ordered.summary
            ),
        )

    def _draft_dose(self, ordered: Normalised | None) -> Fact | None:
        if ordered is None:
            return None
        name = "exposure.daily_dose"
        if "daily_dose" not in ordered.values:
            return missing(
                name, self.say("draft_text", summary=ordered.why["daily_dose"]), (ordered.reference,)
            )
        return Fact(
            name,
            ordered.values["daily_dose"],
            unit="mg/d",
            evidence=(ordered.reference,),
            detail=self.say("draft_text", summary=ordered.summary),
        )

    def _planned(self, draft: DraftOrder | None, ordered: Normalised | None, now: datetime) -> Fact:
        name = "exposure.planned_days_high"
        if draft is None or ordered is None:
            return missing(name, self.say("no_draft_text", drug=self.drug.label))
        evidence = (ordered.reference,)
        dose = ordered.values.get("daily_dose")
        if dose is None:
            return missing(name, self.say("draft_dose_unknown_text", why=ordered.why["daily_dose"]), evidence)
        if dose < self.high_dose:
            below = self.say(
                "below_high_text", dose=_n(dose), high_dose=_n(self.high_dose), dose_unit=self.dose_unit
            )
            return Fact(name, 0.0, unit="d", evidence=evidence, detail=below)
        planned = planned_duration(draft.raw, now, self.units)
        if planned is None:
            return missing(name, self.say("no_planned_text"), evidence)
        days, where = planned
        detail = self.say("planned_text", days=_n(days), where=where, dose=_n(dose), dose_unit=self.dose_unit)
        return Fact(name, days, unit="d", evidence=evidence, detail=detail)

    # --- prior orders -------------------------------------------------------------------------------

    def _recent(self, courses: Sequence[Course], now: datetime) -> Fact:
        name = "exposure.recent"
        window = duration_text(self.recent)
        since = now - self.recent
        states = [(course, within(course, since)) for course in courses]
        result = any_of(*(state for _, state in states))
        if result is Tri.UNKNOWN:
            unsure = [c for c, state in states if state is Tri.UNKNOWN]
            return missing(name, self._unplaced(unsure, window), _refs(unsure))
        if result is Tri.MET:
            hits = [c for c, state in states if state is Tri.MET]
            return Fact(name, True, evidence=_refs(hits), detail=self._courses(hits))
        detail = self.say("not_recent_text", drug=self.drug.label, window=window)
        return Fact(name, False, evidence=_refs(courses), detail=self._with_older(detail, courses))

    def _current_dose(self, courses: Sequence[Course], now: datetime) -> Fact:
        name = "exposure.daily_dose"
        in_force = [c for c in courses if c.status == _IN_FORCE and c.end is not None and c.end >= now]
        ended = [c for c in courses if c.end is not None and now - self.recent <= c.end]
        chosen = max(in_force, key=_started, default=None) or max(
            ended, key=lambda c: c.end or _NEVER, default=None
        )
        if chosen is None:
            window = duration_text(self.recent)
            return missing(name, self.say("no_current_text", drug=self.drug.label, window=window))
        if chosen.dose is None:
            why = self.say("order_why_text", order=chosen.reference, why=chosen.why)
            return missing(name, why, (chosen.reference,))
        detail = chosen.describe(self.say)
        return Fact(name, chosen.dose, unit="mg/d", evidence=(chosen.reference,), detail=detail)

    def _days_high(self, courses: Sequence[Course], now: datetime) -> Fact:
        name = "exposure.days_high"
        periods: list[tuple[datetime, datetime]] = []
        counted: list[Course] = []
        unsure: list[str] = []
        say = self.say
        for course in courses:
            if course.dose is None:
                unsure.append(say("dose_unknown_text", order=course.reference, why=course.why))
                continue
            if course.dose < self.high_dose:
                continue
            if course.start is None:
                unsure.append(say("no_start_text", order=course.reference, status=course.status))
                continue
            if course.end is None:
                unsure.append(say("no_end_text", order=course.reference, status=course.status))
                continue
            end = min(course.end, now)
            if end > course.start:
                periods.append((course.start, end))
                counted.append(course)
        days = tidy(union_seconds(periods) / _DAY)
        high = {"days": _n(days), "high_dose": _n(self.high_dose), "dose_unit": self.dose_unit}
        detail = (
            say("days_high_courses_text", **high, courses=self._courses(counted))
            if counted
            else say("days_high_text", **high)
        )
        if not unsure:
            return Fact(name, days, unit="d", evidence=_refs(counted), detail=detail)
        if days >= self.prolonged:
            # Already prolonged whatever the unplaced orders add: keep the bound.
            note = say("at_least_text", detail=detail, unsure="; ".join(unsure))
            return Fact(name, days, unit="d", comparator=">=", evidence=_refs(counted), detail=note)
        known = say("days_known_text", **high, unsure="; ".join(unsure[:2]))
        return missing(name, known, _refs(counted), detail)

    def _prior_orders(self, courses: Sequence[Course], now: datetime) -> Fact:
        name = "exposure.prior_orders"
        since = now - self.episode
        window = duration_text(self.episode)
        states = [(course, within(course, since)) for course in courses]
        known = [c for c, state in states if state is Tri.MET]
        unsure = [c for c, state in states if state is Tri.UNKNOWN]
        count = {"count": str(len(known)), "drug": self.drug.label, "window": window}
        detail = (
            self.say("prior_courses_text", **count, courses=self._courses(known))
            if known
            else self.say("prior_text", **count)
        )
        if unsure and not known:
            return missing(name, self._unplaced(unsure, window), _refs(unsure))
        return Fact(
            name,
            len(known),
            comparator=">=" if unsure else None,
            evidence=_refs(known),
            detail=self._with_older(detail, [c for c, state in states if state is Tri.NOT_MET]),
        )


class Exposure:
    name = "exposure"
    after: tuple[str, ...] = ()

    def specs(self, catalog: FactCatalog, params: Params) -> list[FactSpec]:
        return [
            FactSpec(
                "exposure.recent",
                "boolean",
                None,
                "a prior order for the drug is active now or ended within the recent window",
            ),
            FactSpec(
                "exposure.recent_or_ordered",
                "boolean",
                None,
                "exposure.recent, or a draft order for the drug is being signed",
            ),
            FactSpec(
                "exposure.daily_dose",
                "quantity",
                "mg/d",
                "daily dose of the draft order; else of the newest order in force, or ended in the recent window",
            ),
            FactSpec(
                "exposure.days_high",
                "quantity",
                "d",
                "days on prior orders (not the draft) at or above the high dose, overlaps counted once",
            ),
            FactSpec(
                "exposure.planned_days_high",
                "quantity",
                "d",
                "planned duration of the draft order at or above the high dose (0 below it)",
            ),
            FactSpec(
                "exposure.prior_orders",
                "count",
                None,
                "prior orders for the drug active now or ended within the episode window",
            ),
        ]

    def configure(
        self, params: Params, catalog: FactCatalog, before: Mapping[str, Configured]
    ) -> ExposureSettings:
        require_dose_unit(catalog, DOSE_UNIT, self.name)
        classes = catalog.medications.classes
        medication = params.text("medication", tuple(classes))
        settings = ExposureSettings(
            drug=classes[medication],
            medications=catalog.medications,
            units=catalog.units,
            high_dose=params.number("high_dose", "mg/d"),
            prolonged=params.number("prolonged", "d"),
            recent=timedelta(hours=params.number("recent_window", "h")),
            episode=timedelta(hours=params.number("episode_window", "h")),
            say=Wording.of(params, EXPOSURE_WORDING),
            dose_unit=catalog.units.text(catalog.medications.dose_unit),
        )
        for name, value in (
            ("high_dose", settings.high_dose),
            ("prolonged", settings.prolonged),
            ("recent_window", settings.recent.total_seconds()),
            ("episode_window", settings.episode.total_seconds()),
        ):
            if value <= 0:
                raise ParameterError(name, f"parameter {name!r} must be above 0")
        return settings


# --- neutrophils ------------------------------------------------------------------------------------

# The rule-file parameter naming the analyte (rules/facts/analytes.yaml) whose newest result this reads.
_ANALYTE = "analyte"


# The widest `neutrophils.last_known` renders ("last ANC 0.3 x10^9/L, 30 h ago: severe (<0.5)"), for the
# summary-length lint; a longer text is clipped.
LAST_KNOWN_WIDTH = 56


@dataclasses.dataclass(frozen=True)
class NeutrophilSettings:
    analyte: str  # the analyte of rules/facts/analytes.yaml the rule file names
    label: str
    unit: str
    window: str  # the analyte's lookback, as text
    within: float  # hours
    low: Threshold
    severe: Threshold
    units: Units
    say: Wording

    @property
    def unit_text(self) -> str:
        return self.units.text(self.unit)

    def compute(self, named: Mapping[str, Fact], facts: Facts) -> dict[str, Fact]:
        name = "neutrophils.current"
        latest = named[f"{self.analyte}.latest"]
        known = self._last_known(latest, named[f"{self.analyte}.count"], facts)
        if latest.value is None:
            why = latest.missing or self.say("none_text", label=self.label)
            return {name: missing(name, why, latest.evidence), **known}
        assert latest.time is not None  # a lab point always has a time
        age = tidy((facts.now - latest.time).total_seconds() / 3600)
        value = latest.native_value if latest.native_value is not None else float(latest.value)
        shown = f"{latest.comparator or ''}{_n(value)}"
        shown = self.units.quantity(shown, latest.native_unit or latest.unit)
        when = f"{latest.time:%Y-%m-%d %H:%M}"
        if age > self.within:
            return {
                name: missing(
                    name,
                    self.say(
                        "stale_text",
                        label=self.label,
                        result=shown,
                        time=when,
                        age=_n(age),
                        within=_n(self.within),
                    ),
                    latest.evidence,
                ),
                **known,
            }
        now = self.say("current_text", result=shown, time=when, age=_n(age))
        detail = "; ".join(x for x in (now, latest.detail) if x)
        return {name: dataclasses.replace(latest, name=name, detail=detail), **known}

    def _last_known(self, latest: Fact, count: Fact, facts: Facts) -> dict[str, Fact]:
        """The newest count in the lookback however old, with its age and band, for a card that asks for a
        current one: a known severe value must not read as "no count"."""
        name = "neutrophils.last_known"
        if latest.value is None or latest.time is None:
            none = self.say(
                "none_in_window_text" if count.value == 0 else "none_usable_text",
                label=self.label,
                window=self.window,
            )
            return {name: Fact(name, none, detail=latest.missing)}
        age = tidy((facts.now - latest.time).total_seconds() / 3600)
        value = f"{latest.comparator or ''}{_n(float(latest.value))}"
        text = self.say("last_known_text", label=self.label, value=value, unit=self.unit_text, age=_n(age))
        if self.severe.compare(latest, "<") is Tri.MET:
            text += self.say("severe_text", limit=_n(self.severe.value))
        elif self.low.compare(latest, "<") is Tri.MET:
            text += self.say("low_text", limit=_n(self.low.value))
        clipped = text if len(text) <= LAST_KNOWN_WIDTH else text[: LAST_KNOWN_WIDTH - 1] + "…"
        return {name: Fact(name, clipped, time=latest.time, evidence=latest.evidence, detail=latest.detail)}


class Neutrophils:
    name = "neutrophils"
    after: tuple[str, ...] = ()

    def specs(self, catalog: FactCatalog, params: Params) -> list[FactSpec]:
        return [
            FactSpec(
                "neutrophils.current",
                "quantity",
                params.analyte_unit(_ANALYTE),
                "the newest absolute neutrophil count, only while no older than the current window",
            ),
            FactSpec(
                "neutrophils.last_known",
                "text",
                None,
                "the newest absolute neutrophil count in the lookback however old, with its age and "
                "whether it is low or severe, or that there is none",
                width=LAST_KNOWN_WIDTH,
            ),
        ]

    def configure(
        self, params: Params, catalog: FactCatalog, before: Mapping[str, Configured]
    ) -> NeutrophilSettings:
        within = params.number("current_within", "h")
        analyte = params.analyte(_ANALYTE)
        if within <= 0:
            raise ParameterError("current_within", "parameter 'current_within' must be above 0")
        return NeutrophilSettings(
            analyte.name,
            analyte.label,
            analyte.unit,
            analyte.window_text,
            within,
            params.threshold("neutropenia", analyte.unit, analyte.name),
            params.threshold("severe_neutropenia", analyte.unit, analyte.name),
            catalog.units,
            Wording.of(params, NEUTROPHIL_WORDING),
        )


# --- pure helpers -----------------------------------------------------------------------------------


def prior_courses(
    facts: Facts,
    drug: MedicationClass,
    medications: Medications,
    units: Units,
    resolve: Resolver,
    weight: Fact,
    draft_id: str | None = None,
) -> list[Course]:
    """The active and completed orders for `drug`, as courses in start order (unknown starts first)."""
    found: list[tuple[str, Normalised, datetime | None, datetime | None]] = []
    for resource in facts.medication_orders:
        status = resource.status or ""
        # An order being revised arrives both as the draft and as itself: count it once, as the draft.
        if status not in _GIVEN or (draft_id is not None and resource.id == draft_id):
            continue
        raw: Json = order_json(facts, resource)
        if not is_medication(raw, drug, medications, resolve):
            continue
        order = normalised(facts, raw, drug, medications, units, weight)
        start, end = order_period(raw, units)
        found.append((status, order, start, end))
    found.sort(key=lambda item: item[2] or _NEVER)
    starts = sorted(start for _, _, start, _ in found if start is not None)
    courses = []
    for status, order, start, end in found:
        if end is None and start is not None:
            end = next((s for s in starts if s > start), None)
        if end is None and status == _IN_FORCE:
            end = facts.now
        dose = order.values.get("daily_dose")
        why = order.why.get("daily_dose", "") if dose is None else ""
        courses.append(Course(order.reference, status, dose, why, start, end, order.summary))
    return courses


def order_period(raw: Json, units: Units) -> tuple[datetime | None, datetime | None]:
    """Start and explicit end of an order: boundsPeriod (or boundsDuration), else authoredOn to unknown."""
    start = end = None
    length: float | None = None
    for repeat in _repeats(raw):
        bounds = repeat.get("boundsPeriod")
        if isinstance(bounds, Mapping):
            start = start or _time(bounds.get("start"))
            end = end or _time(bounds.get("end"))
        length = length if length is not None else _days(repeat.get("boundsDuration"), units)
    authored = raw.get("authoredOn")
    start = start or _time(authored if isinstance(authored, str) else None)
    if end is None and start is not None and length is not None:
        end = after(start, length)
    return start, end


def planned_duration(raw: Json, now: datetime, units: Units) -> tuple[float, str] | None:
    """Days an order is written to run, and where that was read; None when it does not say."""
    for repeat in _repeats(raw):
        bounds = repeat.get("boundsPeriod")
        if isinstance(bounds, Mapping) and _time(bounds.get("end")) is not None:
            end = _time(bounds.get("end"))
            start = _time(bounds.get("start")) or now
            assert end is not None
            return max(0.0, tidy((end - start).total_seconds() / _DAY)), "boundsPeriod"
        days = _days(repeat.get("boundsDuration"), units)
        if days is not None:
            return days, "boundsDuration"
    dispense = raw.get("dispenseRequest")
    if isinstance(dispense, Mapping):
        days = _days(dispense.get("expectedSupplyDuration"), units)
        if days is not None:
            return days, "dispenseRequest.expectedSupplyDuration"
    return None


def within(course: Course, since: datetime) -> Tri:
    """Whether the course reaches `since` or later: MET, NOT_MET, or UNKNOWN when its end is unknown."""
    if course.end is not None:
        return Tri.MET if course.end >= since else Tri.NOT_MET
    # A course that started inside the window was certainly given inside it, whenever it ended.
    if course.start is not None and course.start >= since:
        return Tri.MET
    return Tri.UNKNOWN


def union_seconds(periods: Iterable[tuple[datetime, datetime]]) -> float:
    """Total length of the periods, overlaps counted once."""
    total = 0.0
    current: tuple[datetime, datetime] | None = None
    for start, end in sorted(periods):
        if current is None or start > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total


def _draft(
    facts: Facts, drug: MedicationClass, medications: Medications, resolve: Resolver
) -> DraftOrder | None:
    # The same draft the order.* facts describe: the first MedicationRequest for the drug.
    for draft in facts.draft_orders:
        if draft.resource_type == "MedicationRequest" and is_medication(
            draft.raw, drug, medications, resolve
        ):
            return draft
    return None


def _repeats(raw: Json) -> list[Mapping[str, Any]]:
    repeats = []
    for dosage in raw_list(raw.get("dosageInstruction")):
        timing = dosage.get("timing") if isinstance(dosage, Mapping) else None
        repeat = timing.get("repeat") if isinstance(timing, Mapping) else None
        if isinstance(repeat, Mapping):
            repeats.append(repeat)
    return repeats


def _time(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def _days(duration: Any, units: Units) -> float | None:
    """A FHIR Duration in days; None when absent or not a time."""
    if not isinstance(duration, Mapping):
        return None
    value = duration.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not numbers.usable(value):
        return None
    code = duration.get("code") if isinstance(duration.get("code"), str) else duration.get("unit")
    days = units.try_convert(float(value), units.ucum(code) if isinstance(code, str) else None, "d")
    return duration_days(days)


def _started(course: Course) -> datetime:
    return course.start or _NEVER


def _refs(courses: Iterable[Course]) -> tuple[str, ...]:
    return tuple(c.reference for c in courses)


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
