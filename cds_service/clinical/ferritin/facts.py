"""Ferritin trajectory (rules-logic.md (b)): how fast ferritin rose over the last hours (`ferritin_trend`,
rule FER-RISE), and whether it still rises once the current dose has had time to act
(`ferritin_response`, rule FER-ESC).

Rates are compound daily growth (calculator.py beside it), because ferritin rises multiplicatively. No
rate is ever claimed from too little data: a single result, results too close together for assay noise
to average out, or a censored endpoint (">40000") leave the rate missing, and the reason says which.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from cds_service.clinical.base import Configured, ParameterError, Params, require_dose_unit
from cds_service.clinical.ferritin.calculator import Trend, trend
from cds_service.clinical.sample import Sample
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.knowledge import Analyte, MedicationClass, unavailable
from cds_service.facts.labs import Point, collect, point_fact
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.facts.orders import Normalised, is_medication, normalised, order_json, resolver
from cds_service.facts.time import parse_datetime
from cds_service.facts.units import tidy
from cds_service.ruleformat.text import format_number, format_time

# The unit this calculation computes and words doses in ("mg/day", "mg/kg/h"); configure refuses a rule
# pack whose medications are dosed in another.
DOSE_UNIT = "mg"

__all__ = [
    "FERRITIN_RESPONSE",
    "FERRITIN_TREND",
    "RESPONSE_WORDING",
    "TREND_WORDING",
    "FerritinResponse",
    "FerritinTrend",
]

# The wording both calculations share (a result at its time, results the window could not use), then each
# one's own: rule-file template parameters with the placeholders each may name. {label} is the analyte's
# label (analytes.yaml), {Label} the same capitalised; durations come as "48 h", results as "8500 ug/L".
_WINDOW_WORDING: dict[str, tuple[str, ...]] = {
    "at_text": ("result", "time"),
    "unused_text": ("result",),
    "unused_more_text": ("result", "more"),
    "nonpositive_text": ("resource", "value"),
}
TREND_WORDING: dict[str, tuple[str, ...]] = {
    **_WINDOW_WORDING,
    "growth_text": ("first", "last", "hours"),
    "none_text": ("label", "window"),
    "none_last_text": ("time",),
    "single_text": ("label", "window", "result"),
    "too_close_text": ("Label", "window", "spacing", "first", "last"),
    "censored_text": ("Label", "results"),
    "censored_joiner": (),
    "few_text": ("label", "window"),
    "step_text": ("before", "latest", "hours"),
    "step_censored_text": ("label", "step"),
    "no_intermediate_text": (),
    "steps_item_text": ("earlier", "later", "hours", "rate", "fall", "earlier_time", "later_time"),
    "steps_rate_text": ("rate",),
    "steps_censored_text": (),
    "steps_too_close_text": (),
    "steps_fall_text": (),
}
RESPONSE_WORDING: dict[str, tuple[str, ...]] = {
    **_WINDOW_WORDING,
    "no_order_text": ("drug",),
    "no_daily_dose_text": (),
    "no_start_text": ("order",),
    "no_weight_text": (),
    "weight_text": ("weight", "unit"),
    "since_text": ("dose", "dose_unit", "time", "orders"),
    "assessable_text": ("since", "hours", "min_time"),
    "early_text": ("dose", "dose_unit", "hours", "since", "assess_from"),
    "none_since_text": ("label", "time"),
    "no_baseline_text": ("label", "earliest", "latest"),
    "too_close_text": ("Label", "baseline", "baseline_time", "latest", "apart", "spacing"),
    "rise_text": ("previous", "latest"),
    "rise_censored_text": ("label", "results"),
    "below_text": ("latest", "peak"),
    "below_open_text": ("label", "results"),
    "below_censored_text": ("label", "results"),
    "no_draft_text": (),
    "draft_text": ("draft", "current", "dose_unit"),
}

# The rule-file parameter naming the analyte (rules/facts/analytes.yaml) both calculations read.
ANALYTE = "analyte"
# Rates are rounded to this many decimals, so that exactly 60 %/day (x1.6 in 24 h, x2.56 in 48 h) meets a
# 60 %/day threshold despite floating point (rules-logic.md (b) step 3 asks for a 1e-9 tolerance).
_DECIMALS = 9
# MedicationRequest statuses of orders that were in effect, so that they can start a run of one dose.
_IN_EFFECT = frozenset({"active", "completed", "stopped"})
# The widest `ferritin_trend.latest_step` renders ("123456 ug/L to 234567 ug/L over 12.5 h"), for the
# summary-length lint; a longer text is clipped.
_STEP_WIDTH = 48
_LOWER = frozenset({">", ">="})
_UPPER = frozenset({"<", "<="})
_FERRITIN_FACTS = ("baseline", "latest", "rise", "peak", "below_peak")
_RESPONSE_FACTS = (
    "assessable",
    "draft_increase",
    "dose",
    "dose_rate_per_kg",
    "dose_start",
    "hours_on_dose",
    "baseline",
    "latest",
    "rise",
    "peak",
    "below_peak",
)


def _positive_hours(params: Params, name: str) -> float:
    hours = params.number(name, "h")
    if not hours > 0:
        raise ParameterError(name, f"parameter {name!r} must be a positive duration")
    return hours


def _duration(hours: float) -> str:
    # "48 h" as the sources say it, not "2 days".
    return f"{format_number(hours)} h"


def _shown(point: Point, unit: str) -> str:
    return f"{point.comparator or ''}{format_number(point.value)} {unit}"


@dataclasses.dataclass(frozen=True)
class _Wording:
    """The rule file's wording templates (TREND_WORDING or RESPONSE_WORDING), checked at configure."""

    templates: Mapping[str, str]

    @classmethod
    def of(cls, params: Params, wording: Mapping[str, Sequence[str]]) -> _Wording:
        return cls({name: params.template(name, names) for name, names in wording.items()})

    def __call__(self, name: str, **values: str) -> str:
        return self.templates[name].format(**values)

    def at(self, point: Point, unit: str) -> str:
        return self("at_text", result=_shown(point, unit), time=format_time(point.time))


@dataclasses.dataclass(frozen=True)
class _Window:
    points: list[Point]  # usable results, oldest first
    note: str  # results in the window that could not be used, and why ("" when none)
    older: datetime | None  # the newest result before the window


def _usable(analyte: Analyte, facts: Facts, catalog: FactCatalog, start: datetime, say: _Wording) -> _Window:
    """The analyte's results from `start` to now."""
    series = collect(analyte, facts, catalog.units, start)
    excluded = list(series.excluded)
    points = []
    for point in series.points:
        if point.time > facts.now:
            continue  # a result timed after the request belongs to no window ending now
        if not point.value > 0:
            # A growth rate from or to zero has no meaning.
            excluded.append(
                say("nonpositive_text", resource=point.evidence[0], value=format_number(point.value))
            )
            continue
        points.append(point)
    points.sort(key=lambda p: p.time)
    note = ""
    if len(excluded) == 1:
        note = say("unused_text", result=excluded[0])
    elif excluded:
        note = say("unused_more_text", result=excluded[0], more=str(len(excluded) - 1))
    return _Window(points, note, series.older)


# --- ferritin_trend ---------------------------------------------------------------------------------


class FerritinTrend:
    """`ferritin_trend.*`: the compound daily growth from the earliest to the latest ferritin in a window
    ending now (rules-logic.md (b) FER-RISE). Settings: `trend_window` and `min_spacing` (durations)."""

    name = "ferritin_trend"
    after: tuple[str, ...] = ()

    def specs(self, catalog: FactCatalog, params: Params) -> list[FactSpec]:
        unit = params.analyte_unit(ANALYTE)
        n = self.name
        return [
            FactSpec(
                f"{n}.daily_growth",
                "quantity",
                "%/d",
                "compound daily growth of ferritin from the earliest to the latest result in the trend "
                "window; missing with fewer than two results, results closer than the minimum spacing, "
                "or a censored endpoint",
            ),
            FactSpec(f"{n}.first", "quantity", unit, "earliest ferritin in the trend window"),
            FactSpec(f"{n}.last", "quantity", unit, "latest ferritin in the trend window"),
            FactSpec(f"{n}.hours", "quantity", "h", "hours from the earliest to the latest ferritin"),
            FactSpec(
                f"{n}.steps",
                "text",
                None,
                "each consecutive pair of ferritins in the trend window with its daily rate; an "
                "intermediate fall is shown, and does not cancel the endpoint rate",
                width=160,
            ),
            FactSpec(
                f"{n}.latest_fall",
                "quantity",
                "%",
                "how far the latest ferritin lies below the one before it, in % of that one (negative when "
                "it rose): the present direction, whatever the endpoint rate",
            ),
            FactSpec(
                f"{n}.latest_step",
                "text",
                None,
                "the latest interval: the ferritin before the latest, the latest, and the hours between",
                width=_STEP_WIDTH,
            ),
        ]

    def configure(self, params: Params, catalog: FactCatalog, before: Mapping[str, Configured]) -> Configured:
        return _Trend(
            self.name,
            params.analyte(ANALYTE),
            catalog,
            _positive_hours(params, "trend_window"),
            _positive_hours(params, "min_spacing"),
            _Wording.of(params, TREND_WORDING),
        )


@dataclasses.dataclass(frozen=True)
class _Trend:
    name: str
    analyte: Analyte
    catalog: FactCatalog
    window_hours: float
    spacing_hours: float
    say: _Wording

    def compute(self, named: Mapping[str, Fact], facts: Facts) -> dict[str, Fact]:
        n, unit = self.name, self.analyte.unit
        names = [
            f"{n}.{s}"
            for s in ("daily_growth", "first", "last", "hours", "steps", "latest_fall", "latest_step")
        ]
        gap = unavailable(facts.unavailable, self.catalog.labs.sources)
        if gap is not None:
            return {name: missing(name, gap) for name in names}
        start = facts.now - timedelta(hours=self.window_hours)
        window = _usable(self.analyte, facts, self.catalog, start, self.say)
        by_ref = {p.evidence[0]: p for p in window.points}
        samples = [Sample(p.time, p.value, p.comparator is not None, p.evidence[0]) for p in window.points]
        result = trend(samples, self.spacing_hours)
        evidence = tuple(e for p in window.points for e in p.evidence)
        note = window.note or None
        reason = self._reason(result, by_ref, window)
        out = {name: missing(name, reason, evidence, note) for name in names}
        out.update(self._latest_step(window.points))
        if result.first is None or result.last is None:
            return out
        first, last = by_ref[str(result.first.ref)], by_ref[str(result.last.ref)]
        out[f"{n}.first"] = point_fact(f"{n}.first", unit, first, first.comparator)
        out[f"{n}.last"] = point_fact(f"{n}.last", unit, last, last.comparator)
        if result.hours is None:
            return out
        hours = tidy(result.hours)
        out[f"{n}.hours"] = Fact(f"{n}.hours", hours, unit="h", time=last.time, evidence=evidence)
        out[f"{n}.steps"] = Fact(f"{n}.steps", self._steps(result, by_ref), evidence=evidence, detail=note)
        if result.daily_growth is not None:
            at = self.say.at
            detail = self.say(
                "growth_text", first=at(first, unit), last=at(last, unit), hours=_duration(hours)
            )
            out[f"{n}.daily_growth"] = Fact(
                f"{n}.daily_growth",
                round(result.daily_growth * 100, _DECIMALS),
                unit="%/d",
                time=last.time,
                evidence=evidence,
                detail=f"{detail}; {note}" if note else detail,
            )
        return out

    def _reason(self, result: Trend, by_ref: Mapping[str, Point], window: _Window) -> str:
        """Why there is no daily rate (rules-logic.md (b) FER-RISE steps 2 and 5)."""
        label, unit, span = self.analyte.label, self.analyte.unit, _duration(self.window_hours)
        say = self.say
        if result.status == "rate":
            return ""
        if result.first is None or result.last is None:
            reason = say("none_text", label=label, window=span)
            if window.older is not None and not window.note:
                reason += say("none_last_text", time=format_time(window.older))
        elif result.status == "single":
            first = say.at(by_ref[str(result.first.ref)], unit)
            reason = say("single_text", label=label, window=span, result=first)
        elif result.status == "too-close":
            reason = say(
                "too_close_text",
                Label=label.capitalize(),
                window=span,
                spacing=_duration(self.spacing_hours),
                first=say.at(by_ref[str(result.first.ref)], unit),
                last=say.at(by_ref[str(result.last.ref)], unit),
            )
        else:
            ends = say("censored_joiner").join(
                say.at(by_ref[str(s.ref)], unit) for s in (result.first, result.last) if s.censored
            )
            reason = say("censored_text", Label=label.capitalize(), results=ends)
        return f"{reason}; {window.note}" if window.note else reason

    def _latest_step(self, points: Sequence[Point]) -> dict[str, Fact]:
        """The direction now: the latest result against the one just before it, whatever their spacing
        (a fall from 8500 to 4250 in 12 h is no assay noise), never from a censored result."""
        n, unit, label = self.name, self.analyte.unit, self.analyte.label
        fall, step = f"{n}.latest_fall", f"{n}.latest_step"
        if len(points) < 2:
            why = self.say("few_text", label=label, window=_duration(self.window_hours))
            return {fall: missing(fall, why), step: missing(step, why)}
        before, latest = points[-2], points[-1]
        evidence = before.evidence + latest.evidence
        hours = tidy((latest.time - before.time).total_seconds() / 3600)
        text = self.say(
            "step_text", before=_shown(before, unit), latest=_shown(latest, unit), hours=_duration(hours)
        )
        shown = Fact(
            step, text if len(text) <= _STEP_WIDTH else text[: _STEP_WIDTH - 1] + "…", evidence=evidence
        )
        if before.comparator or latest.comparator:
            why = self.say("step_censored_text", label=label, step=text)
            return {fall: missing(fall, why, evidence), step: shown}
        value = round((1 - latest.value / before.value) * 100, _DECIMALS)
        return {
            fall: Fact(fall, value, unit="%", time=latest.time, evidence=evidence, detail=text),
            step: shown,
        }

    def _steps(self, result: Trend, by_ref: Mapping[str, Point]) -> str:
        say = self.say
        if len(result.steps) < 2:
            return say("no_intermediate_text")
        unit = self.analyte.unit
        parts = []
        for earlier, later, growth in result.steps:
            a, b = by_ref[str(earlier.ref)], by_ref[str(later.ref)]
            hours = _duration(tidy((b.time - a.time).total_seconds() / 3600))
            if growth is None:
                rate = say("steps_censored_text" if a.comparator or b.comparator else "steps_too_close_text")
            else:
                rate = say("steps_rate_text", rate=f"{growth * 100:+.0f}")
            fall = say("steps_fall_text") if b.value < a.value and not (a.comparator or b.comparator) else ""
            parts.append(
                say(
                    "steps_item_text",
                    earlier=_shown(a, unit),
                    later=_shown(b, unit),
                    hours=hours,
                    rate=rate,
                    fall=fall,
                    earlier_time=format_time(a.time),
                    later_time=format_time(b.time),
                )
            )
        return "; ".join(parts)


# --- ferritin_response ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Order:
    reference: str
    status: str
    start: datetime | None
    order: Normalised


class FerritinResponse:
    """`ferritin_response.*`: whether ferritin still rises once the current daily dose of a medication
    (the `medication` parameter, a medications.yaml class) has run for `min_time_on_dose`
    (rules-logic.md (b) FER-ESC). `baseline_lookback` bounds how far before the dose started the
    baseline may lie; `min_spacing` is the least time from the baseline to the latest result."""

    name = "ferritin_response"
    after: tuple[str, ...] = ()

    def specs(self, catalog: FactCatalog, params: Params) -> list[FactSpec]:
        unit = params.analyte_unit(ANALYTE)
        n = self.name
        return [
            FactSpec(
                f"{n}.assessable",
                "boolean",
                None,
                "the current daily dose (newest active order) has run for at least the minimum time; "
                "false, not missing, without an active order or before that time",
            ),
            FactSpec(f"{n}.dose", "quantity", "mg/d", "current daily dose; its time is when that dose began"),
            FactSpec(
                f"{n}.dose_rate_per_kg", "quantity", "mg/kg/h", "current dose per kg body weight per hour"
            ),
            FactSpec(
                f"{n}.dose_start",
                "text",
                None,
                "when the current daily dose began: the earliest start of the run of orders at that dose",
                width=16,
            ),
            FactSpec(f"{n}.hours_on_dose", "quantity", "h", "hours on the current daily dose until now"),
            FactSpec(
                f"{n}.baseline",
                "quantity",
                unit,
                "the ferritin when the current dose was reached: the newest at or before the dose began (no "
                "earlier than the lookback), else the earliest after it",
            ),
            FactSpec(
                f"{n}.latest",
                "quantity",
                unit,
                "the newest ferritin at least the minimum time after the current dose began",
            ),
            FactSpec(
                f"{n}.rise",
                "quantity",
                "%",
                "change from the baseline to the latest ferritin (the trend since the dose was reached); "
                "missing when the two are closer than the minimum spacing",
            ),
            FactSpec(
                f"{n}.peak",
                "quantity",
                unit,
                "the highest ferritin from the baseline up to (not including) the latest",
            ),
            FactSpec(
                f"{n}.below_peak",
                "quantity",
                "%",
                "how far the latest ferritin lies below that peak, in % of the peak (0 or less when the "
                "latest is the highest): a ferritin that peaked and fell is not still rising",
            ),
            FactSpec(
                f"{n}.draft_increase",
                "boolean",
                None,
                "the draft order being signed raises the daily dose above the current one (the escalation "
                "is already being ordered)",
            ),
        ]

    def configure(self, params: Params, catalog: FactCatalog, before: Mapping[str, Configured]) -> Configured:
        require_dose_unit(catalog, DOSE_UNIT, self.name)
        medication = params.text("medication")
        drug = catalog.medications.classes.get(medication)
        if drug is None:
            known = ", ".join(sorted(catalog.medications.classes))
            raise ParameterError(
                "medication", f"parameter 'medication': {medication!r} is not in medications.yaml ({known})"
            )
        return _Response(
            self.name,
            params.analyte(ANALYTE),
            drug,
            catalog,
            _positive_hours(params, "min_time_on_dose"),
            params.number("baseline_lookback", "h"),
            _positive_hours(params, "min_spacing"),
            _Wording.of(params, RESPONSE_WORDING),
            catalog.units.text(catalog.medications.dose_unit),
        )


@dataclasses.dataclass(frozen=True)
class _Response:
    name: str
    analyte: Analyte
    drug: MedicationClass
    catalog: FactCatalog
    min_hours: float
    lookback_hours: float
    spacing_hours: float
    say: _Wording
    dose_unit: str  # medications.yaml dose_unit as people write it ("mg")

    def compute(self, named: Mapping[str, Fact], facts: Facts) -> dict[str, Fact]:
        n = self.name
        names = [f"{n}.{suffix}" for suffix in _RESPONSE_FACTS]
        gap = unavailable(facts.unavailable, self.catalog.medications.sources)
        if gap is not None:
            return {name: missing(name, gap) for name in names}
        say = self.say
        weight = named.get("patient.weight") or missing("patient.weight", say("no_weight_text"))
        orders = self._orders(facts, weight)
        active = [o for o in orders if o.status == "active"]
        if not active:
            absent = say("no_order_text", drug=self.drug.label)
            quiet = {name: missing(name, absent) for name in names}
            quiet[f"{n}.assessable"] = Fact(f"{n}.assessable", False, detail=absent)
            return quiet
        # The newest active order states the current dose; one without any time cannot be placed.
        current = max(active, key=lambda o: (o.start is not None, o.start or facts.now))
        daily = current.order.values.get("daily_dose")
        if daily is None or current.start is None:
            why = (
                current.order.why.get("daily_dose", say("no_daily_dose_text"))
                if daily is None
                else say("no_start_text", order=current.reference)
            )
            return {name: missing(name, why, (current.reference,), current.order.summary) for name in names}
        run = self._run(orders, current, daily)
        began = min(o.start or current.start for o in run)
        refs = tuple(o.reference for o in run)
        hours = tidy((facts.now - began).total_seconds() / 3600)
        since = say(
            "since_text",
            dose=format_number(daily),
            dose_unit=self.dose_unit,
            time=format_time(began),
            orders=", ".join(refs),
        )
        assessable = hours >= self.min_hours
        assess_from = began + timedelta(hours=self.min_hours)
        out = {
            f"{n}.assessable": Fact(
                f"{n}.assessable",
                assessable,
                time=began,
                evidence=refs,
                detail=say(
                    "assessable_text", since=since, hours=_duration(hours), min_time=_duration(self.min_hours)
                ),
            ),
            f"{n}.dose": Fact(
                f"{n}.dose", daily, unit="mg/d", time=began, evidence=refs, detail=current.order.summary
            ),
            f"{n}.dose_rate_per_kg": self._per_kg(current, weight),
            f"{n}.dose_start": Fact(
                f"{n}.dose_start", format_time(began), time=began, evidence=refs, detail=since
            ),
            f"{n}.hours_on_dose": Fact(f"{n}.hours_on_dose", hours, unit="h", time=began, evidence=refs),
            f"{n}.draft_increase": self._draft_increase(f"{n}.draft_increase", named, daily),
        }
        if assessable:
            out.update(self._ferritin(facts, began, assess_from))
        else:
            early = say(
                "early_text",
                dose=format_number(daily),
                dose_unit=self.dose_unit,
                hours=_duration(hours),
                since=format_time(began),
                assess_from=format_time(assess_from),
            )
            out.update({f"{n}.{s}": missing(f"{n}.{s}", early, refs) for s in _FERRITIN_FACTS})
        return out

    def _orders(self, facts: Facts, weight: Fact) -> list[_Order]:
        medications, resolve = self.catalog.medications, resolver(facts)
        orders = []
        for resource in facts.medication_orders:
            if resource.status not in _IN_EFFECT:
                continue
            raw: dict[str, Any] = order_json(facts, resource)
            if not is_medication(raw, self.drug, medications, resolve):
                continue
            order = normalised(facts, raw, self.drug, medications, self.catalog.units, weight)
            orders.append(_Order(order.reference, str(resource.status), _start(raw), order))
        return orders

    def _run(self, orders: Sequence[_Order], current: _Order, daily: float) -> list[_Order]:
        """The current order and the orders at the same daily dose directly before it: a renewal at the
        same dose does not restart the clock, a change of dose does."""
        began = current.start
        assert began is not None
        earlier = sorted(
            (o for o in orders if o is not current and o.start is not None and o.start <= began),
            key=lambda o: o.start or began,
            reverse=True,
        )
        run = [current]
        for order in earlier:
            dose = order.order.values.get("daily_dose")
            if dose is None or not math.isclose(dose, daily, rel_tol=1e-9):
                break
            run.append(order)
        return run

    def _per_kg(self, current: _Order, weight: Fact) -> Fact:
        name = f"{self.name}.dose_rate_per_kg"
        order = current.order
        value = order.values.get("dose_rate_per_kg")
        if value is None:
            why = order.why.get("dose_rate_per_kg", self.say("no_weight_text"))
            return missing(name, why, (current.reference,))
        evidence: tuple[str, ...] = (current.reference,)
        detail = order.summary
        if "dose_rate_per_kg" in order.weighed and isinstance(weight.value, int | float):
            evidence += weight.evidence
            shown = self.say("weight_text", weight=format_number(float(weight.value)), unit=weight.unit or "")
            detail += "; " + shown.rstrip()
        return Fact(name, value, unit="mg/kg/h", evidence=evidence, detail=detail)

    def _ferritin(self, facts: Facts, began: datetime, assess_from: datetime) -> dict[str, Fact]:
        """The trend since the dose was reached: the baseline (the ferritin then) against the latest, and
        how far the latest lies below the peak between them. Never the last two points alone: after a peak
        and a fall, a small uptick between two close results is no rise."""
        n, unit, label, say = self.name, self.analyte.unit, self.analyte.label, self.say
        names = [f"{n}.{s}" for s in _FERRITIN_FACTS]
        gap = unavailable(facts.unavailable, self.catalog.labs.sources)
        if gap is not None:
            return {name: missing(name, gap) for name in names}
        earliest = began - timedelta(hours=self.lookback_hours)
        window = _usable(self.analyte, facts, self.catalog, earliest, say)
        points = window.points
        after = [p for p in points if p.time >= assess_from]
        if not after:
            reason = say("none_since_text", label=label, time=format_time(assess_from))
            reason += f" ({window.note})" if window.note else ""
            return {name: missing(name, reason) for name in names}
        latest = after[-1]
        out = {f"{n}.latest": point_fact(f"{n}.latest", unit, latest, latest.comparator)}
        at_start = [p for p in points if p.time <= began]
        since = [p for p in points if began < p.time < latest.time]
        baseline = at_start[-1] if at_start else since[0] if since else None
        rest = [f"{n}.{s}" for s in _FERRITIN_FACTS if s != "latest"]
        if baseline is None:
            reason = say(
                "no_baseline_text", label=label, earliest=format_time(earliest), latest=say.at(latest, unit)
            )
            out.update({name: missing(name, reason, latest.evidence) for name in rest})
            return out
        out[f"{n}.baseline"] = point_fact(f"{n}.baseline", unit, baseline, baseline.comparator)
        hours = (latest.time - baseline.time).total_seconds() / 3600
        if hours < self.spacing_hours:
            reason = say(
                "too_close_text",
                Label=label.capitalize(),
                baseline=_shown(baseline, unit),
                baseline_time=format_time(baseline.time),
                latest=_shown(latest, unit),
                apart=_duration(tidy(hours)),
                spacing=_duration(self.spacing_hours),
            )
            evidence = baseline.evidence + latest.evidence
            out.update({name: missing(name, reason, evidence) for name in rest if name != f"{n}.baseline"})
            return out
        out[f"{n}.rise"] = _rise(f"{n}.rise", label, baseline, latest, unit, say)
        between = [p for p in points if baseline.time <= p.time < latest.time and p.comparator not in _UPPER]
        peak = max(between, key=lambda p: p.value) if between else baseline
        out[f"{n}.peak"] = point_fact(f"{n}.peak", unit, peak, peak.comparator)
        out[f"{n}.below_peak"] = _below(f"{n}.below_peak", label, peak, latest, unit, say)
        return out

    def _draft_increase(self, name: str, named: Mapping[str, Fact], current: float) -> Fact:
        draft = named.get("order.daily_dose")
        value = draft.value if draft is not None else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            return missing(name, self.say("no_draft_text"))
        detail = self.say(
            "draft_text", draft=format_number(value), current=format_number(current), dose_unit=self.dose_unit
        )
        return Fact(
            name, value > current, evidence=draft.evidence if draft is not None else (), detail=detail
        )


def _start(raw: Mapping[str, Any]) -> datetime | None:
    """When an order's dose began: dosageInstruction.timing.repeat.boundsPeriod.start, else authoredOn."""
    for dosage in raw.get("dosageInstruction") or ():
        timing = dosage.get("timing") if isinstance(dosage, Mapping) else None
        repeat = timing.get("repeat") if isinstance(timing, Mapping) else None
        bounds = repeat.get("boundsPeriod") if isinstance(repeat, Mapping) else None
        start = bounds.get("start") if isinstance(bounds, Mapping) else None
        if isinstance(start, str) and parse_datetime(start) is not None:
            return parse_datetime(start)
    authored = raw.get("authoredOn")
    return parse_datetime(authored) if isinstance(authored, str) else None


def _rise(name: str, label: str, previous: Point, latest: Point, unit: str, say: _Wording) -> Fact:
    """(latest / previous - 1) in %, a bound when one side is censored; missing when the two bounds
    leave the direction open (">40000" after ">40000")."""
    evidence = previous.evidence + latest.evidence
    shown = say("rise_text", previous=say.at(previous, unit), latest=say.at(latest, unit))
    # +1: the rise is at least the value; -1: at most. The previous value enters inverted.
    direction = _bound(latest.comparator) - _bound(previous.comparator)
    if _bound(latest.comparator) and _bound(previous.comparator) and direction == 0:
        return missing(name, say("rise_censored_text", label=label, results=shown), evidence)
    strict = ">" in (latest.comparator, previous.comparator) or "<" in (
        latest.comparator,
        previous.comparator,
    )
    comparator = None
    if direction > 0:
        comparator = ">" if strict else ">="
    elif direction < 0:
        comparator = "<" if strict else "<="
    value = round((latest.value / previous.value - 1) * 100, _DECIMALS)
    return Fact(
        name, value, unit="%", comparator=comparator, time=latest.time, evidence=evidence, detail=shown
    )


def _below(name: str, label: str, peak: Point, latest: Point, unit: str, say: _Wording) -> Fact:
    """(1 - latest / peak) in %: how far the latest lies below the peak before it. A censored latest
    (">40000") may lie higher, so it is at most that; a lower-bound peak may lie higher, so at least."""
    evidence = peak.evidence + latest.evidence
    shown = say("below_text", latest=say.at(latest, unit), peak=say.at(peak, unit))
    if latest.comparator in _UPPER or peak.comparator in _UPPER:
        return missing(name, say("below_open_text", label=label, results=shown), evidence)
    comparator = None
    if latest.comparator in _LOWER and peak.comparator in _LOWER:
        return missing(name, say("below_censored_text", label=label, results=shown), evidence)
    if latest.comparator in _LOWER:
        comparator = "<="
    elif peak.comparator in _LOWER:
        comparator = ">="
    value = round((1 - latest.value / peak.value) * 100, _DECIMALS)
    return Fact(
        name, value, unit="%", comparator=comparator, time=latest.time, evidence=evidence, detail=shown
    )


def _bound(comparator: str | None) -> int:
    return 1 if comparator in _LOWER else -1 if comparator in _UPPER else 0


FERRITIN_TREND = FerritinTrend()
FERRITIN_RESPONSE = FerritinResponse()
