"""Kidney function for dosing: the `renal` and `aki` calculations.

- `renal` (rules-logic.md (c)): creatinine clearance by Cockcroft-Gault from patient.age, patient.sex,
  patient.weight and creatinine.latest; the renally reduced daily dose of the draft order, and the nearest
  bag build of it, made by the `infusion` calculation so that both propose the same kind of bag.
- `aki`: acute kidney injury by the KDIGO creatinine criteria, judged on the creatinine results themselves
  (a steady-state estimate such as Cockcroft-Gault is unreliable while creatinine is still rising).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from cds_service.calculations.base import Configured, ParameterError, Params, Threshold
from cds_service.calculators.bags import BagLimits, Build, nearest_dose
from cds_service.calculators.growth import Sample
from cds_service.calculators.kdigo import Aki, AkiLimits, kdigo
from cds_service.calculators.renal import cockcroft_gault, reduced_dose
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.knowledge import Analyte, duration_text, unavailable
from cds_service.facts.labs import Point, collect
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.facts.units import Units, tidy
from cds_service.markup import Markdown, markdown_text

# The analyte (rules/facts/analytes.yaml) both calculations read; its facts are creatinine.latest etc.
CREATININE = "creatinine"
WEIGHT_BASES = ("actual", "ideal", "adjusted")
# Only actual body weight is computed: ideal and adjusted weight need a height and a formula choice
# that no rule file makes yet. Asking for them must fail at lint, not silently fall back.
IMPLEMENTED_WEIGHT_BASES = ("actual",)
UNSTATED_SEX_CHOICES = ("lower", "higher")
CRITERIA = ("absolute", "ratio", "none")
BUILD_WIDTH = 80  # as infusion.* builds: "1200 mg/day as 400 mg in 100 mL NS q8h at 12.5 mL/h (4 mg/mL)"
SUMMARY_WIDTH = 40  # "SCr 114.5→353.6 umol/L in 167.5 h"
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
_SHOWN_RESULTS = 6


@runtime_checkable
class BagMaker(Protocol):
    """What renal dosing needs of the configured `infusion` calculation: its limits, its maximum daily
    dose and its build facts."""

    limits: BagLimits
    max_daily_dose: float

    def build_fact(self, name: str, build: Build | None, order: str | None, why: str) -> Fact: ...


# --- renal ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RenalSettings:
    min_age: float  # years
    weight_basis: str
    unstated_sex: Literal["lower", "higher"]
    dose_factor: float
    infusion: BagMaker
    infusion_routes: frozenset[str]
    route_labels: Mapping[str, str]

    def compute(self, named: Mapping[str, Fact], facts: Facts) -> dict[str, Fact]:
        reduced = self._reduced_dose(named)
        return {
            "renal.crcl": self._crcl(named),
            "renal.reduced_dose": reduced,
            "renal.reduced_build": self._reduced_build(named, reduced),
        }

    def _crcl(self, named: Mapping[str, Fact]) -> Fact:
        name = "renal.crcl"
        age, sex = named["patient.age"], named["patient.sex"]
        weight, creatinine = named["patient.weight"], named[f"{CREATININE}.latest"]
        years, kg, mg_dl = _number(age), _number(weight), _number(creatinine)
        # The equation was derived in adults; under the age limit no input makes it valid, so say that
        # rather than list whatever else is missing.
        if years is not None and years < self.min_age:
            why = f"Cockcroft-Gault does not apply under {_n(self.min_age)} years (age {_n(years)})"
            return missing(name, why, detail=age.detail)
        inputs = (("creatinine", creatinine, mg_dl), ("weight", weight, kg), ("age", age, years))
        absent = [(label, fact) for label, fact, number in inputs if number is None]
        if sex.value is None:
            absent.append(("sex", sex))
        if absent:
            labels = ", ".join(label for label, _ in absent)
            reasons = "; ".join(fact.missing or "not recorded" for _, fact in absent)
            return missing(name, f"missing {labels} ({reasons})")
        assert years is not None and kg is not None and mg_dl is not None
        evidence = (*creatinine.evidence, *weight.evidence)
        if weight.comparator is not None:
            return missing(name, f"weight is only a bound ({weight.comparator}{_n(kg)} kg)", evidence)
        try:
            female = cockcroft_gault(years, kg, mg_dl, female=True)
            male = cockcroft_gault(years, kg, mg_dl, female=False)
        except ValueError as exc:
            return missing(name, f"Cockcroft-Gault cannot use these inputs: {exc}", evidence)
        if sex.value == "female" or sex.value == "male":
            value, sex_text = (female if sex.value == "female" else male), str(sex.value)
        else:
            # The equation knows two sexes; which estimate to take for the others is a rule file choice.
            value = min(female, male) if self.unstated_sex == "lower" else max(female, male)
            sex_text = (
                f"{sex.value}: the {self.unstated_sex} of the female ({female:.1f}) and male "
                f"({male:.1f}) estimates"
            )
        # A creatinine reported as a bound ("<0.3") bounds the clearance the other way.
        comparator = _FLIP.get(creatinine.comparator or "")
        # Bold figure, then the inputs as the EHR gave them (escaped: a unit or a sex is the EHR's text).
        detail = Markdown(
            f"Cockcroft-Gault **{comparator or ''}{value:.1f} mL/min** "
            + markdown_text(
                f"from age {_n(years)} years; {self.weight_basis} body weight {_n(kg)} kg{_when(weight)}; "
                f"creatinine {_reported(creatinine, mg_dl)}{_when(creatinine)}; sex {sex_text}"
            )
        )
        # tidy() only removes float noise (29.999999999999996 is 30); the value is not rounded for display.
        return Fact(
            name,
            tidy(value),
            unit="mL/min",
            comparator=comparator,
            time=creatinine.time,
            evidence=evidence,
            detail=detail,
        )

    def _reduced_dose(self, named: Mapping[str, Fact]) -> Fact:
        name = "renal.reduced_dose"
        present, daily = named["order.present"], named["order.daily_dose"]
        if present.value is not True:
            return missing(name, present.missing or "no draft order for the medication")
        ordered = _number(daily)
        if ordered is None:
            return missing(name, f"no daily dose: {daily.missing}", daily.evidence)
        # Halving a dose above the maximum would still suggest more than the series ever gave in renal
        # failure: reduce from the maximum instead.
        base = min(ordered, self.infusion.max_daily_dose)
        value = tidy(reduced_dose(base, self.dose_factor))
        detail = f"{_n(self.dose_factor * 100)} % of the ordered {_n(ordered)} mg/day"
        if base < ordered:
            detail = (
                f"{_n(self.dose_factor * 100)} % of the {_n(base)} mg/day maximum (ordered {_n(ordered)})"
            )
        return Fact(name, value, unit="mg/d", evidence=daily.evidence, detail=detail)

    def _reduced_build(self, named: Mapping[str, Fact], reduced: Fact) -> Fact:
        name = "renal.reduced_build"
        present, route = named["order.present"], named["order.route"]
        order = present.evidence[0] if present.value is True and present.evidence else None
        target = _number(reduced)
        if target is None:
            return self.infusion.build_fact(name, None, order, reduced.missing or "no reduced dose")
        if route.value is None:
            why = f"the route is unknown ({route.missing}), so it is not known to be an infusion"
            return self.infusion.build_fact(name, None, order, why)
        if route.value not in self.infusion_routes:
            label = self.route_labels.get(str(route.value))
            why = (
                f"a {label} order is not given as infusion bags"
                if label
                else f"route {route.value} is not an infusion route"
            )
            return self.infusion.build_fact(name, None, order, why)
        build = nearest_dose(target, self.infusion.limits, prefer="lower")
        fact = self.infusion.build_fact(
            name, build, order, f"no buildable daily dose near {_n(target)} mg/day"
        )
        if build is not None and not math.isclose(build.daily_dose, target, rel_tol=1e-9):
            note = (
                f"{_n(target)} mg/day cannot be built; {_n(build.daily_dose)} mg/day is the nearest "
                "buildable dose (a tie goes to the lower)"
            )
            fact = dataclasses.replace(fact, detail=f"{fact.detail}. {note}" if fact.detail else note)
        return fact


class Renal:
    name = "renal"
    after: tuple[str, ...] = ("infusion",)

    def specs(self, catalog: FactCatalog) -> list[FactSpec]:
        return [
            FactSpec(
                "renal.crcl",
                "quantity",
                "mL/min",
                "creatinine clearance by Cockcroft-Gault from age, sex, body weight and the newest creatinine; "
                "not rounded (display it with :.1f)",
            ),
            FactSpec(
                "renal.reduced_dose",
                "quantity",
                "mg/d",
                "the draft order's daily dose times the rule file's renal dose factor",
            ),
            FactSpec(
                "renal.reduced_build",
                "build",
                None,
                "the bag build of the buildable daily dose nearest renal.reduced_dose (a tie goes to the "
                "lower); missing for a non-infusion order",
                width=BUILD_WIDTH,
            ),
        ]

    def configure(
        self, params: Params, catalog: FactCatalog, before: Mapping[str, Configured]
    ) -> RenalSettings:
        infusion = before.get("infusion")
        if not isinstance(infusion, BagMaker):
            raise ParameterError("", "calculation 'renal' needs the configured 'infusion' calculation")
        basis = params.text("weight_basis", WEIGHT_BASES)
        if basis not in IMPLEMENTED_WEIGHT_BASES:
            raise ParameterError(
                "weight_basis",
                f"weight_basis {basis!r} is not implemented; only "
                f"{', '.join(IMPLEMENTED_WEIGHT_BASES)} body weight is",
            )
        unstated = params.text("unstated_sex", UNSTATED_SEX_CHOICES)
        factor = params.number("dose_factor")
        if not 0 < factor <= 1:
            raise ParameterError("dose_factor", f"dose_factor must be above 0 and at most 1, not {factor:g}")
        routes = catalog.medications.routes
        return RenalSettings(
            min_age=params.number("min_age", "a"),
            weight_basis=basis,
            unstated_sex="lower" if unstated == "lower" else "higher",
            dose_factor=factor,
            infusion=infusion,
            infusion_routes=frozenset(name for name, route in routes.items() if route.infusion),
            route_labels={name: route.label for name, route in routes.items()},
        )


# --- aki -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AkiSettings:
    analyte: Analyte
    units: Units
    sources: tuple[str, ...]  # prefetch labels of the lab results
    assessment_window: timedelta
    absolute_rise: Threshold
    absolute_window_hours: float
    ratio: float
    baseline_window_hours: float
    stage2_ratio: float
    stage3_ratio: float
    stage3_value: Threshold

    @property
    def lookback(self) -> timedelta:
        """A result judged at the start of the assessment window needs its baseline from before it."""
        return self.assessment_window + timedelta(hours=self._reach_hours)

    @property
    def _reach_hours(self) -> float:
        return max(self.absolute_window_hours, self.baseline_window_hours)

    def limits(self, unit: str) -> AkiLimits | None:
        """The limits stated in `unit` (the canonical unit always is); None when a threshold is not."""
        rise, value = _stated(self.absolute_rise, unit), _stated(self.stage3_value, unit)
        if rise is None or value is None:
            return None
        return AkiLimits(
            absolute_rise=rise,
            absolute_window_hours=self.absolute_window_hours,
            ratio=self.ratio,
            baseline_window_hours=self.baseline_window_hours,
            stage2_ratio=self.stage2_ratio,
            stage3_ratio=self.stage3_ratio,
            stage3_value=value,
        )

    def compute(self, named: Mapping[str, Fact], facts: Facts) -> dict[str, Fact]:
        span = duration_text(self.lookback)
        series = collect(self.analyte, facts, self.units, facts.now - self.lookback)
        excluded = list(series.excluded)
        points: list[Point] = []
        for point in series.points:
            if point.comparator is not None:
                excluded.append(f"{point.evidence[0]} is only a bound ({_point_text(point)})")
            elif not point.native_value > 0:
                excluded.append(f"{point.evidence[0]} is not a positive value ({_point_text(point)})")
            else:
                points.append(point)
        if len(points) < 2:
            return _aki_missing(self._too_few(points, excluded, span, facts))
        unit, limits, as_reported = self._unit(points)
        # Each sample's ref is its index in `points`: Observation ids may be absent or repeated.
        samples = [
            Sample(p.time, p.native_value if unit == p.native_unit else p.value, False, str(index))
            for index, p in enumerate(points)
        ]
        judged_from = facts.now - self.assessment_window
        found, compared = _judge(samples, limits, judged_from, self._reach_hours)
        results = _results(points, unit)
        native = (
            "as reported"
            if as_reported
            else "converted: the results are not all in one unit the thresholds are stated in"
        )
        if not compared:
            newest = points[0]
            return _aki_missing(
                f"no creatinine in the last {duration_text(self.assessment_window)} has an earlier one within "
                f"{_hours_text(self._reach_hours)} to compare with (newest {_point_text(newest)} at "
                f"{newest.time:%Y-%m-%d %H:%M})"
            )
        if found is None:
            detail = (
                f"No KDIGO creatinine rise in the last {duration_text(self.assessment_window)} "
                f"(compared in {unit}, {native}). Results: {results}."
            )
            evidence = tuple(p.evidence[0] for p in points)
            none = "no acute kidney injury by the KDIGO creatinine criteria"
            return {
                "aki.stage": Fact("aki.stage", 0, evidence=evidence, detail=detail),
                "aki.criterion": Fact("aki.criterion", "none", evidence=evidence, detail=detail),
                "aki.summary": missing("aki.summary", none, evidence, detail),
            }
        reference, value = points[int(str(found.reference.ref))], points[int(str(found.value.ref))]
        shown_ref, shown_value = _shown(found.reference.value), _shown(found.value.value)
        summary = f"SCr {shown_ref}→{shown_value} {unit} in {_n(round(found.hours, 1))} h"
        lowest = (
            f"{shown_ref} {unit} at {reference.time:%Y-%m-%d %H:%M} ({reference.evidence[0]}), the lowest "
            "result in the previous"
        )
        if found.criterion == "ratio":
            why = (
                f"{_n(round(found.ratio, 2))} × {lowest} {_hours_text(self.baseline_window_hours)} "
                f"(KDIGO: ≥ {_n(self.ratio)} × baseline)"
            )
        else:
            window = _hours_text(self.absolute_window_hours)
            why = (
                f"a rise of {_shown(found.rise)} {unit} from {lowest} {window} "
                f"(KDIGO: ≥ {_shown(limits.absolute_rise)} {unit} within {window})"
            )
        detail = Markdown(
            f"KDIGO stage **{found.stage}**: "
            + markdown_text(
                f"creatinine {shown_value} {unit} at {value.time:%Y-%m-%d %H:%M} ({value.evidence[0]}) is "
                f"{why}. Compared in {unit}, {native}. Results: {results}."
            )
        )
        evidence = (reference.evidence[0], value.evidence[0])
        return {
            "aki.stage": Fact("aki.stage", found.stage, time=value.time, evidence=evidence, detail=detail),
            "aki.criterion": Fact(
                "aki.criterion", found.criterion, time=value.time, evidence=evidence, detail=detail
            ),
            "aki.summary": Fact("aki.summary", summary, time=value.time, evidence=evidence, detail=detail),
        }

    def _unit(self, points: Sequence[Point]) -> tuple[str, AkiLimits, bool]:
        """The unit to compare in, its limits, and whether that is the unit the results were reported in.

        Native-unit comparison (rules-logic.md): a rise of 26.5 umol/L must meet the 26.5 umol/L limit,
        though converted it is 0.2998 mg/dL. Only possible when every result shares a unit the thresholds
        are stated in; otherwise all are compared in the canonical unit.
        """
        reported = {p.native_unit for p in points}
        if len(reported) == 1:
            (unit,) = reported
            limits = self.limits(unit)
            if limits is not None:
                return unit, limits, True
        canonical = self.limits(self.analyte.unit)
        assert canonical is not None  # a Threshold's canonical value is always stated
        return self.analyte.unit, canonical, False

    def _too_few(self, points: Sequence[Point], excluded: Sequence[str], span: str, facts: Facts) -> str:
        gap = unavailable(facts.unavailable, self.sources)
        if gap is not None:
            return gap
        label = self.analyte.label
        if not points:
            reason = f"no {label} in the last {span}"
        else:
            point = points[0]
            reason = (
                f"only one {label} in the last {span} ({_point_text(point)} at {point.time:%Y-%m-%d %H:%M})"
            )
        if excluded:
            more = f" and {len(excluded) - 2} more" if len(excluded) > 2 else ""
            reason += f"; not used: {'; '.join(excluded[:2])}{more}"
        return reason


class AcuteKidneyInjury:
    name = "aki"
    after: tuple[str, ...] = ()

    def specs(self, catalog: FactCatalog) -> list[FactSpec]:
        return [
            FactSpec(
                "aki.stage",
                "count",
                None,
                "KDIGO acute kidney injury stage (0-3) from creatinine alone; missing without two results to "
                "compare",
            ),
            FactSpec(
                "aki.criterion",
                "text",
                None,
                "the KDIGO criterion met: absolute (a rise within hours), ratio (to the 7-day baseline), none",
                CRITERIA,
            ),
            FactSpec(
                "aki.summary",
                "text",
                None,
                'the rise that defines the AKI, e.g. "SCr 1.0→1.6 mg/dL in 30 h"',
                width=SUMMARY_WIDTH,
            ),
        ]

    def configure(
        self, params: Params, catalog: FactCatalog, before: Mapping[str, Configured]
    ) -> AkiSettings:
        analyte = catalog.analytes.get(CREATININE)
        if analyte is None:
            raise ParameterError("", f"no {CREATININE!r} analyte in rules/facts/analytes.yaml")
        ratio = params.number("baseline_ratio")
        stage2 = params.number("stage2_ratio")
        stage3 = params.number("stage3_ratio")
        if not 1 < ratio <= stage2 <= stage3:
            raise ParameterError(
                "stage2_ratio",
                f"need 1 < baseline_ratio <= stage2_ratio <= stage3_ratio, not {ratio:g}, {stage2:g}, {stage3:g}",
            )
        windows = {
            name: params.number(name, "h")
            for name in ("assessment_window", "absolute_window", "baseline_window")
        }
        for name, hours in windows.items():
            if not hours > 0:
                raise ParameterError(name, f"{name} must be a positive duration")
        return AkiSettings(
            analyte=analyte,
            units=catalog.units,
            sources=catalog.labs.sources,
            assessment_window=timedelta(hours=windows["assessment_window"]),
            absolute_rise=params.threshold("absolute_rise", analyte.unit, CREATININE),
            absolute_window_hours=windows["absolute_window"],
            ratio=ratio,
            baseline_window_hours=windows["baseline_window"],
            stage2_ratio=stage2,
            stage3_ratio=stage3,
            stage3_value=params.threshold("stage3_creatinine", analyte.unit, CREATININE),
        )


def _judge(
    samples: Sequence[Sample], limits: AkiLimits, judged_from: datetime, reach_hours: float
) -> tuple[Aki | None, bool]:
    """The worst AKI shown by a result on or after `judged_from`, and whether any such result had an
    earlier one within reach to compare with.

    kdigo() judges every sample it is given, so a rise found only among older results would be reported
    as current. Giving it one pair at a time (an earlier result, then the judged one) keeps each finding
    about the judged result; taking the worst over the pairs is kdigo's own choice for that result.
    """
    best: Aki | None = None
    compared = False
    for sample in samples:
        if sample.time < judged_from:
            continue
        for earlier in samples:
            hours = (sample.time - earlier.time).total_seconds() / 3600
            if not 0 < hours <= reach_hours:
                continue
            compared = True
            finding = kdigo([earlier, sample], limits)
            if finding is not None and (best is None or _rank(finding) > _rank(best)):
                best = finding
    return best, compared


def _rank(finding: Aki) -> tuple[int, datetime, bool, float, float]:
    # Highest stage, then the newest result, then (as kdigo reports) the ratio criterion, the largest
    # ratio, and the earliest of equal references (the longest span).
    return (
        finding.stage,
        finding.value.time,
        finding.criterion == "ratio",
        finding.ratio,
        -finding.reference.time.timestamp(),
    )


def _aki_missing(reason: str) -> dict[str, Fact]:
    return {name: missing(name, reason) for name in ("aki.stage", "aki.criterion", "aki.summary")}


def _stated(threshold: Threshold, unit: str) -> float | None:
    if unit == threshold.unit:
        return threshold.value
    return threshold.native.get(unit)


def _results(points: Sequence[Point], unit: str) -> str:
    shown = [
        (
            f"{_shown(p.native_value)} {unit}"
            if unit == p.native_unit
            else f"{p.native_value:g} {p.native_unit} = {_shown(p.value)} {unit}"
        )
        + f" at {p.time:%Y-%m-%d %H:%M}"
        for p in points[:_SHOWN_RESULTS]
    ]
    more = f" and {len(points) - _SHOWN_RESULTS} older" if len(points) > _SHOWN_RESULTS else ""
    return "; ".join(shown) + more


def _point_text(point: Point) -> str:
    return f"{point.comparator or ''}{point.native_value:g} {point.native_unit}"


def _shown(value: float) -> str:
    """A creatinine as a lab prints it: 1.0 and 1.05 mg/dL (one or two decimals), 88 and 114.5 umol/L."""
    text = f"{value:.2f}".rstrip("0")
    if text.endswith("."):
        text = text + "0" if abs(value) < 10 else text[:-1]
    return text


def _hours_text(hours: float) -> str:
    """'48 hours' as KDIGO says it, '7 days' from three days on."""
    if hours >= 72 and hours % 24 == 0:
        return duration_text(timedelta(hours=hours))
    return f"{_n(hours)} hours"


def _number(fact: Fact) -> float | None:
    value = fact.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _reported(fact: Fact, value: float) -> str:
    """As reported, then converted: "97 umol/L = 1.097 mg/dL"."""
    comparator = fact.comparator or ""
    text = f"{comparator}{_n(value)} {fact.unit}"
    if fact.native_unit and fact.native_unit != fact.unit and fact.native_value is not None:
        text = f"{comparator}{_n(fact.native_value)} {fact.native_unit} = {text}"
    return text


def _when(fact: Fact) -> str:
    return f" ({fact.time:%Y-%m-%d %H:%M})" if fact.time else ""


def _n(value: float) -> str:
    """At most 3 decimals, no trailing zeros: 1200, 0.5, 1.097."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
