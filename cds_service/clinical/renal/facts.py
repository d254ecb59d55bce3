"""Kidney function for dosing: the `renal` and `aki` calculations.

- `renal` (rules-logic.md (c)): creatinine clearance by Cockcroft-Gault from patient.age, patient.sex,
  the dosing weight (actual, Devine ideal or adjusted body weight, as the rule file says) and a current
  creatinine; and the kidney function dosing goes by (`renal.impairment`): dialysis of any modality, or a
  recorded end-stage renal disease, counts as a clearance below the threshold, since a creatinine lowered
  by dialysis makes Cockcroft-Gault meaningless. The `infusion` calculation reads it for the renal dose
  ceiling.
- `aki`: acute kidney injury by the KDIGO creatinine criteria, judged on the creatinine results themselves
  (a steady-state estimate such as Cockcroft-Gault is unreliable while creatinine is still rising).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal

from cds_service.clinical.base import Configured, ParameterError, Params, Threshold
from cds_service.clinical.renal.calculator import (
    AkiLimits,
    DomainError,
    adjusted_weight,
    cockcroft_gault,
    creatinine_at_clearance,
    ideal_weight,
    judge,
)
from cds_service.clinical.sample import Sample
from cds_service.clinical.tristate import Tri, compare
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.knowledge import Analyte, duration_text, unavailable
from cds_service.facts.labs import Point, collect
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.facts.units import Units, tidy
from cds_service.markup import Markdown, markdown_text

# The rule-file parameters naming the analytes (rules/facts/analytes.yaml) these calculations read: the
# serum creatinine (Cockcroft-Gault, KDIGO) and the height (ideal body weight).
CREATININE = "creatinine_analyte"
HEIGHT = "height_analyte"
WEIGHT_BASES = ("actual", "ideal", "adjusted")
UNSTATED_SEX_CHOICES = ("lower", "higher")
CRITERIA = ("absolute", "ratio", "none")
# What dosing goes by: dialysis in the window, a recorded end-stage renal disease, a clearance below the
# threshold, or none of these (renal.impairment).
IMPAIRMENTS = ("dialysis", "esrd", "clearance", "none")
IMPAIRED = frozenset({"dialysis", "esrd", "clearance"})
SUMMARY_WIDTH = 40  # "SCr 114.5→353.6 umol/L in 167.5 h"; the specs' fallback, before configuring
# The widest numbers aki.summary's template receives, for the width the configured template gives
# (AkiSettings.widths): a creatinine of 8 characters, hours of 6 (a pair is at most a week apart).
_WIDEST_CREATININE, _WIDEST_HOURS = "0" * 8, "0" * 6
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
_SHOWN_RESULTS = 6
_SEXES = ("female", "male")

# How the renal facts read: templates of rules/renal-dose.yaml, and what each may name. Numbers, times and
# quantities arrive formatted ({weight}: "60", {creatinine}: "97 umol/L = 1.097 mg/dL (2026-11-23 06:00)").
RENAL_WORDING: dict[str, tuple[str, ...]] = {
    "no_order_text": (),
    "sc_other_route_text": ("route",),
    "sc_no_route_text": (),
    "sc_no_interval_text": ("route", "missing"),
    "sc_interval_text": ("hours", "label"),
    "under_age_text": ("min_age", "age"),
    "limit_missing_text": ("inputs",),
    "limit_inexact_weight_text": (),
    "cannot_use_text": ("error",),
    "creatinine_domain_text": ("value",),
    "weight_domain_text": ("value",),
    "clearance_domain_text": ("value",),
    "age_domain_text": ("value",),
    "height_domain_text": ("value",),
    "creatinine_limit_text": ("analyte", "threshold", "age", "weight", "basis", "sex"),
    "not_recorded_text": (),
    "height_needed_text": ("missing", "basis"),
    "weight_bound_text": ("weight",),
    "unstated_sex_text": ("sex", "choice", "female", "male"),
    "crcl_text": ("value", "inputs"),
    "crcl_inputs_text": ("age", "weight", "analyte", "creatinine", "sex"),
    "stale_text": ("analyte", "creatinine", "time", "age", "window"),
    "actual_weight_text": ("weight",),
    "ideal_shown_text": ("ideal", "height", "sex"),
    "not_above_ideal_text": ("actual", "ideal"),
    "ideal_weight_text": ("ideal", "weight"),
    "adjusted_weight_text": ("weight", "ideal", "factor", "actual"),
    "unread_text": ("gaps",),
    "none_on_record_text": (),
    "crcl_but_unread_text": ("crcl", "unread"),
    "straddles_text": (),
    "and_unread_text": ("missing", "unread"),
}
# How the aki facts read: templates of rules/acute-kidney-injury.yaml, and what each may name ({analyte}:
# the creatinine analyte's label; numbers, times and results arrive formatted).
AKI_WORDING: dict[str, tuple[str, ...]] = {
    "bound_result_text": ("resource", "result"),
    "nonpositive_result_text": ("resource", "result"),
    "limit_rise_text": ("lowest", "window", "rise"),
    "limit_ratio_text": ("ratio", "lowest", "window"),
    "limit_no_result_text": ("analyte", "window"),
    "limit_text": ("analyte", "value", "unit", "why"),
    "as_reported_text": (),
    "converted_text": (),
    "no_pair_text": ("analyte", "window", "reach", "newest", "time"),
    "no_rise_text": ("analyte", "window", "unit", "native", "results"),
    "no_aki_text": ("analyte",),
    "summary_text": ("reference", "value", "unit", "hours"),
    "ratio_text": ("ratio", "reference", "unit", "time", "resource", "window", "limit"),
    "rise_text": ("rise", "reference", "unit", "time", "resource", "window", "limit"),
    "stage_text": ("stage", "finding"),
    "finding_text": ("analyte", "value", "unit", "time", "resource", "why", "native", "results"),
    "no_result_text": ("analyte", "window"),
    "one_result_text": ("analyte", "window", "result", "time"),
    "excluded_text": ("reason", "excluded", "more"),
    "more_excluded_text": ("count",),
    "result_text": ("value", "time"),
    "older_results_text": ("count",),
}
# The template wording each input of the equations (renal/calculator.py DomainError.input) that is out of
# its domain.
DOMAIN = {name: f"{name}_domain_text" for name in ("creatinine", "weight", "clearance", "age", "height")}
# The names of the inputs the creatinine limit lists as missing, in this order (limit_input_words).
LIMIT_INPUTS = ("age", "weight", "sex", "height")


# --- renal ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class IdealWeight:
    """Devine's ideal body weight for one sex: `base` kg at `base_height` inches, plus `per_inch` kg."""

    base: float  # kg
    per_inch: float  # kg/[in_i]
    base_height: float  # [in_i]


@dataclasses.dataclass(frozen=True)
class ConditionSets:
    """Which condition sets (rules/facts/conditions.yaml) mean dialysis and which end-stage disease."""

    dialysis: tuple[str, ...]
    esrd: tuple[str, ...]
    sources: Mapping[str, tuple[str, ...]]  # set name -> the prefetch labels that carry its resources
    labels: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class RenalSettings:
    min_age: float  # years
    weight_basis: str
    unstated_sex: Literal["lower", "higher"]
    crcl_threshold: float  # mL/min, strict
    creatinine_window: timedelta
    ideal: Mapping[str, IdealWeight]  # by sex
    adjusted_factor: float
    sets: ConditionSets
    units: Units
    creatinine: str  # the analytes the rule file names: creatinine.latest, height.latest
    height: str
    # Read by the infusion calculation: the renal ceiling, and the subcutaneous interval of the label.
    cap: float  # mg/d
    sc_interval: float  # h
    sc_route: str  # the medications.yaml route the label's every-other-day advice is for
    wording: Mapping[str, str]  # RENAL_WORDING
    input_words: Mapping[str, str]  # LIMIT_INPUTS -> how the creatinine limit names them
    creatinine_label: str  # the creatinine analyte's label (rules/facts/analytes.yaml)
    impaired: frozenset[str] = IMPAIRED

    def compute(self, named: Mapping[str, Fact], facts: Facts) -> dict[str, Fact]:
        crcl = self._crcl(named, facts.now)
        return {
            "renal.crcl": crcl,
            "renal.impairment": self._impairment(named, crcl, facts),
            "renal.sc_too_frequent": self._sc_too_frequent(named),
            "renal.creatinine_limit": self._creatinine_limit(named),
        }

    def _say(self, name: str, **values: str) -> str:
        return self.wording[name].format(**values)

    def _cannot_use(self, exc: ValueError) -> str:
        """Why Cockcroft-Gault cannot use the inputs: an input out of the equation's domain in the rule
        file's words; any other error (a height unit that does not convert) as it says it."""
        error = self._say(DOMAIN[exc.input], value=exc.value) if isinstance(exc, DomainError) else str(exc)
        return self._say("cannot_use_text", error=error)

    def _sc_too_frequent(self, named: Mapping[str, Fact]) -> Fact:
        """Whether the draft is a non-infusion (subcutaneous) order given more often than the label's renal
        interval; no for an infusion or an order of unknown route (their renal check is the daily ceiling)."""
        name = "renal.sc_too_frequent"
        present, route, interval = named["order.present"], named["order.route"], named["order.interval"]
        if present.value is not True:
            return missing(name, present.missing or self._say("no_order_text"))
        if route.value != self.sc_route:
            detail = (
                self._say("sc_other_route_text", route=str(route.value))
                if route.value
                else self._say("sc_no_route_text")
            )
            return Fact(name, False, evidence=route.evidence, detail=detail)
        hours = _number(interval)
        if hours is None:
            why = self._say("sc_no_interval_text", route=self.sc_route, missing=str(interval.missing))
            return missing(name, why, route.evidence)
        every = self._say("sc_interval_text", hours=_n(hours), label=_n(self.sc_interval))
        return Fact(name, hours < self.sc_interval, evidence=interval.evidence, detail=every)

    def _creatinine_limit(self, named: Mapping[str, Fact]) -> Fact:
        """The creatinine at which this patient's Cockcroft-Gault clearance falls to the threshold, with the
        rule file's dosing weight: where a chart draws the renal limit on the creatinine axis."""
        name = "renal.creatinine_limit"
        age, sex, weight = named["patient.age"], named["patient.sex"], named["patient.weight"]
        height = named[f"{self.height}.latest"]
        years, kg = _number(age), _number(weight)
        if years is not None and years < self.min_age:
            return missing(name, self._say("under_age_text", min_age=_n(self.min_age), age=_n(years)))
        absent = [
            self.input_words[label]
            for label, fact in (("age", age), ("weight", weight), ("sex", sex))
            if fact.value is None
        ]
        if self.weight_basis != "actual" and _number(height) is None:
            absent.append(self.input_words["height"])
        if absent:
            return missing(name, self._say("limit_missing_text", inputs=", ".join(absent)))
        if years is None or kg is None or weight.comparator is not None:
            return missing(name, self._say("limit_inexact_weight_text"))
        limits = {}
        try:
            for sex_ in _SEXES:
                dosing, _ = self._dosing_weight(kg, height, sex_)
                limits[sex_] = creatinine_at_clearance(
                    years, dosing, self.crcl_threshold, female=sex_ == "female"
                )
        except ValueError as exc:
            return missing(name, self._cannot_use(exc))
        if sex.value in _SEXES:
            value = limits[str(sex.value)]
        else:
            # The clearance taken for other sexes is the lower (or higher) estimate: it reaches the
            # threshold at the lower (or higher) creatinine.
            value = min(limits.values()) if self.unstated_sex == "lower" else max(limits.values())
        detail = self._say(
            "creatinine_limit_text",
            analyte=self.creatinine_label,
            threshold=_n(self.crcl_threshold),
            age=_n(years),
            weight=_n(kg),
            basis=self.weight_basis,
            sex=str(sex.value),
        )
        return Fact(name, tidy(value), unit="mg/dL", evidence=weight.evidence, detail=detail)

    # --- clearance ---

    def _crcl(self, named: Mapping[str, Fact], now: datetime) -> Fact:
        name = "renal.crcl"
        age, sex = named["patient.age"], named["patient.sex"]
        weight, creatinine = named["patient.weight"], named[f"{self.creatinine}.latest"]
        years, kg, mg_dl = _number(age), _number(weight), _number(creatinine)
        # The equation was derived in adults; under the age limit no input makes it valid, so say that
        # rather than list whatever else is missing.
        if years is not None and years < self.min_age:
            why = self._say("under_age_text", min_age=_n(self.min_age), age=_n(years))
            return missing(name, why, detail=age.detail)
        stale = self._stale(creatinine, mg_dl, now)
        inputs = (("creatinine", creatinine, mg_dl), ("weight", weight, kg), ("age", age, years))
        unrecorded = self._say("not_recorded_text")
        absent = [(label, fact.missing or unrecorded) for label, fact, number in inputs if number is None]
        if stale is not None:
            absent.insert(0, ("creatinine", stale))
        if sex.value is None:
            absent.append(("sex", sex.missing or unrecorded))
        height = named[f"{self.height}.latest"]
        if self.weight_basis != "actual" and _number(height) is None:
            needed = self._say(
                "height_needed_text", missing=height.missing or unrecorded, basis=self.weight_basis
            )
            absent.append(("height", needed))
        if absent:
            # Each input's own reason, so that a card listing what is missing names the weight once even
            # when another check needs it too ("no body weight in the last 7 days").
            return missing(name, "; ".join(dict.fromkeys(reason for _, reason in absent)))
        assert years is not None and kg is not None and mg_dl is not None
        evidence = (*creatinine.evidence, *weight.evidence)
        if self.weight_basis != "actual":
            evidence += height.evidence
        if weight.comparator is not None:
            return missing(
                name, self._say("weight_bound_text", weight=f"{weight.comparator}{_n(kg)}"), evidence
            )
        try:
            estimates = {sex_: self._estimate(years, kg, mg_dl, height, sex_) for sex_ in _SEXES}
        except ValueError as exc:
            return missing(name, self._cannot_use(exc), evidence)
        if sex.value in _SEXES:
            chosen = str(sex.value)
            value, weight_text = estimates[chosen]
            sex_text = chosen
        else:
            # The equation knows two sexes; which estimate to take for the others is a rule file choice.
            pick = min if self.unstated_sex == "lower" else max
            chosen = pick(_SEXES, key=lambda s: estimates[s][0])
            value, weight_text = estimates[chosen]
            sex_text = self._say(
                "unstated_sex_text",
                sex=str(sex.value),
                choice=self.unstated_sex,
                female=f"{estimates['female'][0]:.1f}",
                male=f"{estimates['male'][0]:.1f}",
            )
        # A creatinine reported as a bound ("<0.3") bounds the clearance the other way.
        comparator = _FLIP.get(creatinine.comparator or "")
        # Bold figure, then the inputs as the EHR gave them (escaped: a unit or a sex is the EHR's text).
        used = self._say(
            "crcl_inputs_text",
            age=_n(years),
            weight=f"{weight_text}{_when(weight)}",
            analyte=self.creatinine_label,
            creatinine=f"{_reported(creatinine, mg_dl)}{_when(creatinine)}",
            sex=sex_text,
        )
        detail = Markdown(
            self._say("crcl_text", value=f"{comparator or ''}{value:.1f}", inputs=markdown_text(used))
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

    def _stale(self, creatinine: Fact, mg_dl: float | None, now: datetime) -> str | None:
        """Why the newest creatinine is too old to dose by, or None when it is current (or absent)."""
        if mg_dl is None or creatinine.time is None:
            return None
        age = now - creatinine.time
        if age <= self.creatinine_window:
            return None
        hours = age.total_seconds() / 3600
        return self._say(
            "stale_text",
            analyte=self.creatinine_label,
            creatinine=_reported(creatinine, mg_dl),
            time=f"{creatinine.time:%Y-%m-%d %H:%M}",
            age=_n(round(hours, 1)),
            window=_hours_text(self.creatinine_window.total_seconds() / 3600),
        )

    def _estimate(self, years: float, kg: float, mg_dl: float, height: Fact, sex: str) -> tuple[float, str]:
        """Cockcroft-Gault for one sex with the dosing weight of the rule file's basis, and that weight in
        words."""
        dosing, text = self._dosing_weight(kg, height, sex)
        return cockcroft_gault(years, dosing, mg_dl, female=sex == "female"), text

    def _dosing_weight(self, kg: float, height: Fact, sex: str) -> tuple[float, str]:
        actual = self._say("actual_weight_text", weight=_n(kg))
        if self.weight_basis == "actual":
            return kg, actual
        cm = _number(height)
        assert cm is not None  # _crcl lists a missing height first
        devine = self.ideal[sex]
        inches = self.units.convert(cm, height.unit or "cm", "[in_i]")
        ideal = ideal_weight(inches, devine.base, devine.per_inch, devine.base_height)
        shown = self._say("ideal_shown_text", ideal=_n(round(ideal, 1)), height=_n(cm), sex=sex)
        if kg <= ideal:
            # Below the ideal weight the actual weight is the smaller and is used (the usual practice).
            return kg, self._say("not_above_ideal_text", actual=actual, ideal=shown)
        if self.weight_basis == "ideal":
            return ideal, self._say("ideal_weight_text", ideal=shown, weight=_n(kg))
        weight = adjusted_weight(kg, ideal, self.adjusted_factor)
        return weight, self._say(
            "adjusted_weight_text",
            weight=_n(round(weight, 1)),
            ideal=shown,
            factor=_n(self.adjusted_factor),
            actual=_n(kg),
        )

    # --- what dosing goes by ---

    def _impairment(self, named: Mapping[str, Fact], crcl: Fact, facts: Facts) -> Fact:
        name = "renal.impairment"
        for kind, sets in (("dialysis", self.sets.dialysis), ("esrd", self.sets.esrd)):
            found = [named[f"conditions.{s}.status"] for s in sets]
            present = [f for f in found if f.value == "present"]
            if present:
                evidence = tuple(ref for f in present for ref in f.evidence)
                detail = "; ".join(f"{f.detail} {', '.join(f.evidence)}".strip() for f in present)
                return Fact(name, kind, time=present[0].time, evidence=evidence, detail=detail)
        # No dialysis or end-stage disease on record: the clearance decides, if the record could be read.
        gaps = [
            gap
            for s in (*self.sets.dialysis, *self.sets.esrd)
            if (gap := unavailable(facts.unavailable, self.sets.sources[s])) is not None
        ]
        unread = self._say("unread_text", gaps="; ".join(dict.fromkeys(gaps)))
        value = crcl.value
        state = (
            compare(float(value), "<", self.crcl_threshold, crcl.comparator)
            if isinstance(value, int | float) and not isinstance(value, bool)
            else Tri.UNKNOWN
        )
        if state is Tri.MET:
            return Fact(name, "clearance", time=crcl.time, evidence=crcl.evidence, detail=crcl.detail)
        if state is Tri.NOT_MET and not gaps:
            none = self._say("none_on_record_text")
            detail = f"{crcl.detail}; {none}" if crcl.detail else none
            return Fact(name, "none", time=crcl.time, evidence=crcl.evidence, detail=detail)
        if state is Tri.NOT_MET:
            shown = f"{crcl.comparator or ''}{float(value):.1f}" if isinstance(value, int | float) else "?"
            why = self._say("crcl_but_unread_text", crcl=shown, unread=unread)
            return missing(name, why, crcl.evidence, crcl.detail)
        why = crcl.missing or self._say("straddles_text")
        if gaps:
            why = self._say("and_unread_text", missing=why, unread=unread)
        return missing(name, why, crcl.evidence, crcl.detail)


class Renal:
    name = "renal"
    after: tuple[str, ...] = ()

    def specs(self, catalog: FactCatalog, params: Params) -> list[FactSpec]:
        return [
            FactSpec(
                "renal.crcl",
                "quantity",
                "mL/min",
                "creatinine clearance by Cockcroft-Gault from age, sex, the dosing body weight and the newest "
                "creatinine within the rule file's window; not rounded (display it with :.1f)",
            ),
            FactSpec(
                "renal.creatinine_limit",
                "quantity",
                "mg/dL",
                "the serum creatinine at which this patient's Cockcroft-Gault clearance equals the rule "
                "file's crcl_threshold (for the chart's renal limit line)",
            ),
            FactSpec(
                "renal.sc_too_frequent",
                "boolean",
                None,
                "the draft is an order by the label's route (label_route) given more often than its renal "
                "interval (label_interval); no for other routes",
            ),
            FactSpec(
                "renal.impairment",
                "text",
                None,
                "what renal dosing goes by: dialysis (a session in the window, or in progress), esrd (recorded "
                "end-stage renal disease or dialysis dependence), clearance (CrCl below the threshold), none",
                IMPAIRMENTS,
            ),
        ]

    def configure(
        self, params: Params, catalog: FactCatalog, before: Mapping[str, Configured]
    ) -> RenalSettings:
        basis = params.text("weight_basis", WEIGHT_BASES)
        unstated = params.text("unstated_sex", UNSTATED_SEX_CHOICES)
        factor = params.number("dose_factor")
        if not 0 < factor <= 1:
            raise ParameterError("dose_factor", f"dose_factor must be above 0 and at most 1, not {factor:g}")
        cap, series_max = params.number("renal_cap", "mg/d"), params.number("series_max", "mg/d")
        if abs(cap - factor * series_max) > 1e-9 * series_max:
            raise ParameterError(
                "renal_cap",
                f"renal_cap {cap:g} mg/d is not dose_factor x series_max ({factor:g} x {series_max:g} mg/d)",
            )
        window = params.number("creatinine_window", "h")
        if not window > 0:
            raise ParameterError("creatinine_window", "creatinine_window must be a positive duration")
        adjusted = params.number("adjusted_factor")
        if not 0 < adjusted < 1:
            raise ParameterError(
                "adjusted_factor", f"adjusted_factor must be between 0 and 1, not {adjusted:g}"
            )
        base_height = params.number("ibw_base_height", "[in_i]")
        per_inch = params.number("ibw_per_height", "kg/[in_i]")
        ideal = {
            sex: IdealWeight(params.number(f"ibw_base_{sex}", "kg"), per_inch, base_height) for sex in _SEXES
        }
        creatinine, height = params.analyte(CREATININE), params.analyte(HEIGHT)
        return RenalSettings(
            min_age=params.number("min_age", "a"),
            weight_basis=basis,
            unstated_sex="lower" if unstated == "lower" else "higher",
            crcl_threshold=params.number("crcl_threshold", "mL/min"),
            creatinine_window=timedelta(hours=window),
            ideal=ideal,
            adjusted_factor=adjusted,
            sets=_condition_sets(params, catalog),
            units=catalog.units,
            creatinine=creatinine.name,
            height=height.name,
            cap=cap,
            sc_interval=params.number("label_interval", "h"),
            sc_route=params.text("label_route", tuple(catalog.medications.routes)),
            wording={name: params.template(name, names) for name, names in RENAL_WORDING.items()},
            input_words=_input_words(params),
            creatinine_label=creatinine.label,
        )


def _input_words(params: Params) -> dict[str, str]:
    name = "limit_input_words"
    words = params.texts(name)
    if len(words) != len(LIMIT_INPUTS):
        raise ParameterError(
            name, f"parameter {name!r} must list {len(LIMIT_INPUTS)} texts, for: {', '.join(LIMIT_INPUTS)}"
        )
    return dict(zip(LIMIT_INPUTS, words, strict=True))


def _condition_sets(params: Params, catalog: FactCatalog) -> ConditionSets:
    known = catalog.conditions.sets
    chosen: dict[str, tuple[str, ...]] = {}
    for name in ("dialysis_sets", "esrd_sets"):
        sets = params.texts(name)
        unknown = [s for s in sets if s not in known]
        if unknown:
            raise ParameterError(
                name, f"{name}: {', '.join(unknown)} not in rules/facts/conditions.yaml ({', '.join(known)})"
            )
        chosen[name] = sets
    named = [*chosen["dialysis_sets"], *chosen["esrd_sets"]]
    return ConditionSets(
        dialysis=chosen["dialysis_sets"],
        esrd=chosen["esrd_sets"],
        sources={s: known[s].sources for s in named},
        labels={s: known[s].label for s in named},
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
    wording: Mapping[str, str]  # AKI_WORDING

    def _say(self, name: str, **values: str) -> str:
        return self.wording[name].format(**values)

    def widths(self) -> dict[str, int]:
        """aki.summary as wide as its template makes it with the widest numbers, in the widest unit the
        thresholds are stated in (the unit results are compared in)."""
        units = {self.analyte.unit, *self.absolute_rise.native, *self.stage3_value.native}
        text = self._say(
            "summary_text",
            reference=_WIDEST_CREATININE,
            value=_WIDEST_CREATININE,
            unit=max(units, key=len),
            hours=_WIDEST_HOURS,
        )
        return {"aki.summary": len(text)}

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
                excluded.append(
                    self._say("bound_result_text", resource=point.evidence[0], result=_point_text(point))
                )
            elif not point.native_value > 0:
                excluded.append(
                    self._say(
                        "nonpositive_result_text", resource=point.evidence[0], result=_point_text(point)
                    )
                )
            else:
                points.append(point)
        return {
            **self._stage(points, excluded, span, facts),
            "aki.creatinine_limit": self._limit(points, facts.now),
        }

    def _limit(self, points: Sequence[Point], now: datetime) -> Fact:
        """The lowest creatinine that, drawn now, would meet a KDIGO criterion against the results before
        it: where a chart draws the AKI limit. In the canonical unit, like the thresholds it adds up."""
        name = "aki.creatinine_limit"
        candidates: list[tuple[float, str, tuple[str, ...]]] = []
        for hours, criterion in ((self.absolute_window_hours, "rise"), (self.baseline_window_hours, "ratio")):
            earlier = [p for p in points if now - timedelta(hours=hours) <= p.time <= now]
            if not earlier:
                continue
            lowest = min(earlier, key=lambda p: p.value)
            if criterion == "rise":
                value = lowest.value + self.absolute_rise.value
                why = self._say(
                    "limit_rise_text",
                    lowest=_shown(lowest.value),
                    window=_hours_text(hours),
                    rise=_n(self.absolute_rise.value),
                )
            else:
                value = lowest.value * self.ratio
                why = self._say(
                    "limit_ratio_text",
                    ratio=_n(self.ratio),
                    lowest=_shown(lowest.value),
                    window=_hours_text(hours),
                )
            candidates.append((value, why, lowest.evidence))
        if not candidates:
            why = self._say(
                "limit_no_result_text", analyte=self.analyte.label, window=_hours_text(self._reach_hours)
            )
            return missing(name, why)
        value, why, evidence = min(candidates)
        detail = self._say(
            "limit_text", analyte=self.analyte.label, value=_shown(value), unit=self.analyte.unit, why=why
        )
        return Fact(name, tidy(value), unit=self.analyte.unit, evidence=evidence, detail=detail)

    def _stage(self, points: list[Point], excluded: list[str], span: str, facts: Facts) -> dict[str, Fact]:
        if len(points) < 2:
            return _aki_missing(self._too_few(points, excluded, span, facts))
        unit, limits, as_reported = self._unit(points)
        # Each sample's ref is its index in `points`: Observation ids may be absent or repeated.
        samples = [
            Sample(p.time, p.native_value if unit == p.native_unit else p.value, False, str(index))
            for index, p in enumerate(points)
        ]
        judged_from = facts.now - self.assessment_window
        found, compared = judge(samples, limits, judged_from, self._reach_hours)
        results = self._results(points, unit)
        native = self._say("as_reported_text" if as_reported else "converted_text")
        label = self.analyte.label
        if not compared:
            newest = points[0]
            return _aki_missing(
                self._say(
                    "no_pair_text",
                    analyte=label,
                    window=duration_text(self.assessment_window),
                    reach=_hours_text(self._reach_hours),
                    newest=_point_text(newest),
                    time=f"{newest.time:%Y-%m-%d %H:%M}",
                )
            )
        if found is None:
            detail = self._say(
                "no_rise_text",
                analyte=label,
                window=duration_text(self.assessment_window),
                unit=unit,
                native=native,
                results=results,
            )
            evidence = tuple(p.evidence[0] for p in points)
            none = self._say("no_aki_text", analyte=label)
            return {
                "aki.stage": Fact("aki.stage", 0, evidence=evidence, detail=detail),
                "aki.criterion": Fact("aki.criterion", "none", evidence=evidence, detail=detail),
                "aki.summary": missing("aki.summary", none, evidence, detail),
            }
        reference, value = points[int(str(found.reference.ref))], points[int(str(found.value.ref))]
        shown_ref, shown_value = _shown(found.reference.value), _shown(found.value.value)
        summary = self._say(
            "summary_text", reference=shown_ref, value=shown_value, unit=unit, hours=_n(round(found.hours, 1))
        )
        baseline = {
            "reference": shown_ref,
            "unit": unit,
            "time": f"{reference.time:%Y-%m-%d %H:%M}",
            "resource": reference.evidence[0],
        }
        if found.criterion == "ratio":
            why = self._say(
                "ratio_text",
                ratio=_n(round(found.ratio, 2)),
                window=_hours_text(self.baseline_window_hours),
                limit=_n(self.ratio),
                **baseline,
            )
        else:
            why = self._say(
                "rise_text",
                rise=_shown(found.rise),
                window=_hours_text(self.absolute_window_hours),
                limit=_shown(limits.absolute_rise),
                **baseline,
            )
        finding = self._say(
            "finding_text",
            analyte=label,
            value=shown_value,
            unit=unit,
            time=f"{value.time:%Y-%m-%d %H:%M}",
            resource=value.evidence[0],
            why=why,
            native=native,
            results=results,
        )
        detail = Markdown(self._say("stage_text", stage=str(found.stage), finding=markdown_text(finding)))
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

    def _results(self, points: Sequence[Point], unit: str) -> str:
        shown = [
            self._say(
                "result_text",
                value=(
                    f"{_shown(p.native_value)} {unit}"
                    if unit == p.native_unit
                    else f"{p.native_value:g} {p.native_unit} = {_shown(p.value)} {unit}"
                ),
                time=f"{p.time:%Y-%m-%d %H:%M}",
            )
            for p in points[:_SHOWN_RESULTS]
        ]
        more = (
            self._say("older_results_text", count=str(len(points) - _SHOWN_RESULTS))
            if len(points) > _SHOWN_RESULTS
            else ""
        )
        return "; ".join(shown) + more

    def _too_few(self, points: Sequence[Point], excluded: Sequence[str], span: str, facts: Facts) -> str:
        gap = unavailable(facts.unavailable, self.sources)
        if gap is not None:
            return gap
        label = self.analyte.label
        if not points:
            reason = self._say("no_result_text", analyte=label, window=span)
        else:
            point = points[0]
            reason = self._say(
                "one_result_text",
                analyte=label,
                window=span,
                result=_point_text(point),
                time=f"{point.time:%Y-%m-%d %H:%M}",
            )
        if excluded:
            more = self._say("more_excluded_text", count=str(len(excluded) - 2)) if len(excluded) > 2 else ""
            reason = self._say("excluded_text", reason=reason, excluded="; ".join(excluded[:2]), more=more)
        return reason


class AcuteKidneyInjury:
    name = "aki"
    after: tuple[str, ...] = ()

    def specs(self, catalog: FactCatalog, params: Params) -> list[FactSpec]:
        return [
            FactSpec(
                "aki.stage",
                "count",
                None,
                "KDIGO acute kidney injury stage (0-3) from creatinine alone; missing without two results to "
                "compare",
            ),
            FactSpec(
                "aki.creatinine_limit",
                "quantity",
                params.analyte_unit(CREATININE),
                "the lowest creatinine that, drawn at the request's time, would meet a KDIGO criterion "
                "against the results before it (for the chart's AKI limit line)",
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
        analyte = params.analyte(CREATININE)
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
            absolute_rise=params.threshold("absolute_rise", analyte.unit, analyte.name),
            absolute_window_hours=windows["absolute_window"],
            ratio=ratio,
            baseline_window_hours=windows["baseline_window"],
            stage2_ratio=stage2,
            stage3_ratio=stage3,
            stage3_value=params.threshold("stage3_creatinine", analyte.unit, analyte.name),
            wording={name: params.template(name, names) for name, names in AKI_WORDING.items()},
        )


def _aki_missing(reason: str) -> dict[str, Fact]:
    return {name: missing(name, reason) for name in ("aki.stage", "aki.criterion", "aki.summary")}


def _stated(threshold: Threshold, unit: str) -> float | None:
    if unit == threshold.unit:
        return threshold.value
    return threshold.native.get(unit)


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
