"""The eight HLH-2004 criteria (Henter 2007) read from the named facts and the Observations, each a
tri-state result with the evidence line the card shows (worded by the rule file's templates, WORDING).

Lab values are compared in the unit they were reported in (`Threshold.compare`). Results the lab facts
cannot use (sCD25 in pg/mL, NK-cell activity and hemophagocytosis, which have no verified code) are read
from the Observations themselves, through their `interpretation` or `referenceRange`, never through a
unit conversion.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from cds_service.clinical.base import ParameterError, Params, Threshold
from cds_service.clinical.inputs import HlhLabs
from cds_service.clinical.inputs import count as _count
from cds_service.clinical.inputs import worst as _worst
from cds_service.clinical.tristate import Tri, any_of, at_least, compare
from cds_service.clinical.wording import BOUNDS as _BOUNDS
from cds_service.clinical.wording import SHOWN as _SHOWN
from cds_service.clinical.wording import limit as _limit
from cds_service.clinical.wording import value as _value
from cds_service.clinical.wording import where as _where
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.knowledge import Analyte
from cds_service.facts.model import Facts, LabValue
from cds_service.facts.named import Fact
from cds_service.markup import markdown_text
from cds_service.ruleformat.text import format_number, format_time

__all__ = [
    "CRITERIA",
    "WORDING",
    "WORDS",
    "Criteria",
    "Criterion",
    "Interpretations",
    "configure",
    "per_criterion",
]

# The HLH-2004 criteria in the order of Henter's table; their display labels are rule parameters.
CRITERIA = (
    "fever",
    "splenomegaly",
    "cytopenias",
    "tg_fibrinogen",
    "hemophagocytosis",
    "nk_activity",
    "ferritin",
    "scd25",
)

# How the evidence lines read: templates of the rule file, and what each may name.
WORDING: dict[str, tuple[str, ...]] = {
    "evidence_line": ("label", "text"),
    "lineage_text": ("label", "value", "word", "limit", "where"),
    "highest_text": ("result", "value", "limit", "where"),
    "reading_text": ("value", "interpretation", "range", "time", "resource"),
    "reading_interpretation_text": ("codes",),
    "reading_no_interpretation_text": (),
    "reading_range_text": ("side", "limit"),
    "reading_no_range_text": (),
    "pathology_reading_text": ("codes", "time", "resource"),
    "unknown_text": ("missing",),
    "lineage_unknown_text": ("label", "missing"),
    "splenomegaly_text": ("result", "finding", "where"),
    "cytopenias_text": ("result", "low", "count", "needed", "hemoglobin", "platelets", "anc"),
    "anc_by_wbc_text": ("label", "missing", "wbc", "value", "limit", "where"),
    "anc_unknown_wbc_text": ("label", "missing", "wbc", "value"),
    "triglycerides_text": ("label", "value", "word", "limit", "where"),
    "tg_fibrinogen_text": ("result", "triglycerides", "fibrinogen"),
    "infant_limit_text": ("limit", "days"),
    "any_age_limit_text": ("adult", "infant", "missing"),
    "readings_text": ("result", "readings"),
    "reading_note_text": ("text", "note"),
    "hemophagocytosis_not_configured_text": (),
    "hemophagocytosis_no_result_text": ("window",),
    "hemophagocytosis_negative_text": ("text",),
    "nk_not_configured_text": (),
    "nk_no_result_text": ("window",),
    "scd25_highest_text": ("value", "limit", "where"),
    "scd25_other_unit_text": ("unit", "canonical"),
    "scd25_not_comparable_text": ("text", "limit"),
    "no_unit_text": (),
}
# Lists of three words of the rule file, for a comparison that is met, not met or undecided.
WORDS = ("lineage_words", "triglycerides_words")


@dataclasses.dataclass(frozen=True)
class Criterion:
    """One criterion's result and the evidence line the card shows for it."""

    key: str
    result: Tri
    text: str  # what was found, with values, units, times and resources
    evidence: tuple[str, ...] = ()
    # For an UNKNOWN result: whether every input it lacks was measured, but could not be compared (sCD25 in
    # pg/mL without a flag, a unit that does not convert). Such a criterion is not "not yet measured", and
    # repeating the test would not decide it.
    measured: bool = False


@dataclasses.dataclass(frozen=True)
class Interpretations:
    """Observation.interpretation codes (HL7 v3 ObservationInterpretation), as the rule file lists them."""

    high: frozenset[str]
    low: frozenset[str]
    normal: frozenset[str]
    positive: frozenset[str]
    negative: frozenset[str]


@dataclasses.dataclass(frozen=True)
class Criteria:
    """The configured readers of the eight criteria: every threshold and setting is the rule file's."""

    catalog: FactCatalog
    lineages: int
    labels: Mapping[str, str]
    fever: Threshold
    hemoglobin: Threshold
    hemoglobin_infant: Threshold
    infant_age: float  # days
    platelets: Threshold
    anc: Threshold
    triglycerides: Threshold
    fibrinogen: Threshold
    ferritin: Threshold
    scd25: Threshold
    labs: HlhLabs  # the analytes the rule file names as the criteria's inputs
    nk_codes: tuple[str, ...]
    hemophagocytosis_codes: tuple[str, ...]
    window: timedelta  # for the results read from Observations directly (NK activity, hemophagocytosis)
    interpretations: Interpretations
    wording: Mapping[str, str]  # WORDING
    words: Mapping[str, Mapping[Tri, str]]  # WORDS

    def say(self, name: str, **values: str) -> str:
        return self.wording[name].format(**values)

    def read(self, named: Mapping[str, Fact], facts: Facts) -> list[Criterion]:
        """The eight criteria, in CRITERIA's order."""
        return [
            self._fever(named),
            self._splenomegaly(named),
            self._cytopenias(named),
            self._tg_fibrinogen(named),
            self._hemophagocytosis(facts),
            self._nk_activity(facts),
            self._ferritin(named),
            self._scd25(named, facts),
        ]

    def line(self, criterion: Criterion) -> str:
        # The label and the line's Markdown are the rule file's; the text quotes results as the EHR
        # reported them, so it is escaped.
        return self.say("evidence_line", label=self.labels[criterion.key], text=markdown_text(criterion.text))

    def analytes(self, key: str) -> tuple[Analyte, ...]:
        """The lab analytes a criterion reads (the others read conditions or pathology results)."""
        labs = self.labs
        return {
            "fever": (labs.temperature,),
            "cytopenias": (labs.hemoglobin, labs.platelets, labs.anc, labs.wbc),
            "tg_fibrinogen": (labs.triglycerides, labs.fibrinogen),
            "ferritin": (labs.ferritin,),
            "scd25": (labs.scd25,),
        }.get(key, ())

    # --- the eight criteria ------------------------------------------------------------------------

    def _fever(self, named: Mapping[str, Fact]) -> Criterion:
        temperature = self.labs.temperature
        return self._highest("fever", named[_worst(temperature)], self.fever, _has_data(named, temperature))

    def _splenomegaly(self, named: Mapping[str, Fact]) -> Criterion:
        fact = named["conditions.splenomegaly.status"]
        result = {"present": Tri.MET, "refuted": Tri.NOT_MET}.get(str(fact.value))
        if result is None:
            return Criterion(
                "splenomegaly", Tri.UNKNOWN, self.say("unknown_text", missing=str(fact.missing or fact.value))
            )
        # The condition's own words (its detail), or the status itself.
        text = self.say(
            "splenomegaly_text",
            result=_SHOWN[result],
            finding=fact.detail or str(fact.value),
            where=_where(fact),
        )
        return Criterion("splenomegaly", result, text, fact.evidence)

    def _cytopenias(self, named: Mapping[str, Fact]) -> Criterion:
        hemoglobin, hb_text = self._hemoglobin_low(named)
        platelets = named[_worst(self.labs.platelets)]
        plt = self.platelets.compare(platelets, "<")
        plt_text = self._lineage(
            self.labs.platelets.label, platelets, plt, f"<{_limit(self.platelets, platelets)}"
        )
        anc, anc_text, anc_evidence = self._anc_low(named)
        lineages = [hemoglobin, plt, anc]
        result = at_least(self.lineages, lineages)
        low = sum(r is Tri.MET for r in lineages)
        text = self.say(
            "cytopenias_text",
            result=_SHOWN[result],
            low=str(low),
            count=str(len(lineages)),
            needed=str(self.lineages),
            hemoglobin=hb_text,
            platelets=plt_text,
            anc=anc_text,
        )
        evidence = named[_worst(self.labs.hemoglobin)].evidence + platelets.evidence + anc_evidence
        # Not yet measured while an undecided lineage has no result at all (the CBC would decide it).
        lacking = [
            analyte
            for analyte, lineage in (
                (self.labs.hemoglobin, hemoglobin),
                (self.labs.platelets, plt),
                (self.labs.anc, anc),
            )
            if lineage is Tri.UNKNOWN and not _has_data(named, analyte)
        ]
        return Criterion("cytopenias", result, text, evidence, measured=not lacking)

    def _hemoglobin_low(self, named: Mapping[str, Fact]) -> tuple[Tri, str]:
        fact = named[_worst(self.labs.hemoglobin)]
        age = named["patient.age_days"]
        adult = self.hemoglobin.compare(fact, "<")
        infant = self.hemoglobin_infant.compare(fact, "<")
        age_days = (
            age.value if isinstance(age.value, int | float) and not isinstance(age.value, bool) else None
        )
        is_infant = compare(None if age_days is None else float(age_days), "<", self.infant_age)
        adult_limit = f"<{_limit(self.hemoglobin, fact)}"
        infant_limit = self.say(
            "infant_limit_text",
            limit=f"<{_limit(self.hemoglobin_infant, fact)}",
            days=format_number(self.infant_age),
        )
        if is_infant is Tri.MET:
            result, limit = infant, infant_limit
        elif is_infant is Tri.NOT_MET:
            result, limit = adult, adult_limit
        else:
            # Without an age both limits apply; only a value on the same side of both decides.
            result = adult if adult is infant else Tri.UNKNOWN
            limit = self.say(
                "any_age_limit_text", adult=adult_limit, infant=infant_limit, missing=str(age.missing)
            )
        return result, self._lineage(self.labs.hemoglobin.label, fact, result, limit)

    def _anc_low(self, named: Mapping[str, Fact]) -> tuple[Tri, str, tuple[str, ...]]:
        anc = named[_worst(self.labs.anc)]
        label = self.labs.anc.label
        if anc.value is not None:
            result = self.anc.compare(anc, "<")
            return result, self._lineage(label, anc, result, f"<{_limit(self.anc, anc)}"), anc.evidence
        wbc = named[_worst(self.labs.wbc)]
        missing = str(anc.missing)
        # All neutrophils are leukocytes: a WBC below the ANC limit proves the ANC is below it too.
        if self.anc.compare(wbc, "<") is Tri.MET:
            text = self.say(
                "anc_by_wbc_text",
                label=label,
                missing=missing,
                wbc=self.labs.wbc.label,
                value=_value(wbc),
                limit=_limit(self.anc, wbc),
                where=_where(wbc),
            )
            return Tri.MET, text, wbc.evidence
        if wbc.value is None:
            return Tri.UNKNOWN, self.say("lineage_unknown_text", label=label, missing=missing), ()
        text = self.say(
            "anc_unknown_wbc_text", label=label, missing=missing, wbc=self.labs.wbc.label, value=_value(wbc)
        )
        return Tri.UNKNOWN, text, ()

    def _tg_fibrinogen(self, named: Mapping[str, Fact]) -> Criterion:
        tg, fib = named[_worst(self.labs.triglycerides)], named[_worst(self.labs.fibrinogen)]
        high = self.triglycerides.compare(tg, ">=")
        low = self.fibrinogen.compare(fib, "<=")
        result = any_of(high, low)
        label = self.labs.triglycerides.label
        if tg.value is None:
            tg_text = self.say("lineage_unknown_text", label=label, missing=str(tg.missing))
        else:
            tg_text = self.say(
                "triglycerides_text",
                label=label,
                value=_value(tg),
                word=self.words["triglycerides_words"][high],
                limit=_limit(self.triglycerides, tg),
                where=_where(tg),
            )
        fib_text = self._lineage(self.labs.fibrinogen.label, fib, low, f"<={_limit(self.fibrinogen, fib)}")
        lacking = [
            analyte
            for analyte, part in ((self.labs.triglycerides, high), (self.labs.fibrinogen, low))
            if part is Tri.UNKNOWN and not _has_data(named, analyte)
        ]
        return Criterion(
            "tg_fibrinogen",
            result,
            self.say("tg_fibrinogen_text", result=_SHOWN[result], triglycerides=tg_text, fibrinogen=fib_text),
            tg.evidence + fib.evidence,
            measured=not lacking,
        )

    def _hemophagocytosis(self, facts: Facts) -> Criterion:
        if not self.hemophagocytosis_codes:
            why = self.say("hemophagocytosis_not_configured_text")
            return Criterion("hemophagocytosis", Tri.UNKNOWN, self.say("unknown_text", missing=why))
        labs = _results(facts, self.hemophagocytosis_codes, facts.now - self.window)
        if not labs:
            why = self.say("hemophagocytosis_no_result_text", window=_days(self.window))
            return Criterion("hemophagocytosis", Tri.UNKNOWN, self.say("unknown_text", missing=why))
        found = self.interpretations.positive
        absent = self.interpretations.negative | self.interpretations.normal
        readings = []
        for lab in labs:
            codes = _interpretation(lab)
            result = Tri.MET if codes & found else Tri.NOT_MET if codes & absent else Tri.UNKNOWN
            said = ", ".join(sorted(codes)) or self.say("reading_no_interpretation_text")
            text = self.say(
                "pathology_reading_text",
                codes=said,
                time=format_time(lab.time),
                resource=f"Observation/{lab.id}",
            )
            readings.append((result, text))
        result = any_of(*(r for r, _ in readings))
        text = self._readings(result, readings)
        if result is Tri.NOT_MET:
            text = self.say("hemophagocytosis_negative_text", text=text)
        evidence = tuple(f"Observation/{lab.id}" for lab in labs)
        return Criterion("hemophagocytosis", result, text, evidence, measured=True)

    def _nk_activity(self, facts: Facts) -> Criterion:
        if not self.nk_codes:
            why = self.say("nk_not_configured_text")
            return Criterion("nk_activity", Tri.UNKNOWN, self.say("unknown_text", missing=why))
        labs = _results(facts, self.nk_codes, facts.now - self.window)
        if not labs:
            why = self.say("nk_no_result_text", window=_days(self.window))
            return Criterion("nk_activity", Tri.UNKNOWN, self.say("unknown_text", missing=why))
        i = self.interpretations
        readings = [self._flagged(lab, "low", i.low, i.normal | i.high) for lab in labs]
        result = any_of(*(r for r, _ in readings))
        evidence = tuple(f"Observation/{lab.id}" for lab in labs)
        return Criterion("nk_activity", result, self._readings(result, readings), evidence, measured=True)

    def _ferritin(self, named: Mapping[str, Fact]) -> Criterion:
        ferritin = self.labs.ferritin
        return self._highest("ferritin", named[_worst(ferritin)], self.ferritin, _has_data(named, ferritin))

    def _scd25(self, named: Mapping[str, Fact], facts: Facts) -> Criterion:
        analyte = self.labs.scd25
        fact = named[_worst(analyte)]
        # Results in units that do not convert to U/mL (pg/mL: another assay) are judged by the lab's own
        # flag or reference range, never converted (rules-logic.md (a) criterion 8).
        raw = [
            lab
            for lab in _results(facts, analyte.codes, facts.now - analyte.window)
            if not self._converts(lab.unit)
        ]
        readings: list[tuple[Tri, str]] = []
        evidence: list[str] = []
        if fact.value is not None:
            result = self.scd25.compare(fact, ">=")
            text = self.say(
                "scd25_highest_text", value=_value(fact), limit=_limit(self.scd25, fact), where=_where(fact)
            )
            readings.append((result, text))
            evidence += fact.evidence
        i = self.interpretations
        for lab in raw:
            unit = self.catalog.units.ucum(lab.unit) or self.say("no_unit_text")
            note = self.say("scd25_other_unit_text", unit=unit, canonical=str(analyte.unit))
            readings.append(self._flagged(lab, "high", i.high, i.normal | i.low, note))
            evidence.append(f"Observation/{lab.id}")
        if not readings:
            return Criterion(
                "scd25",
                Tri.UNKNOWN,
                self.say("unknown_text", missing=str(fact.missing)),
                measured=_has_data(named, analyte),
            )
        result = any_of(*(r for r, _ in readings))
        text = self._readings(result, readings)
        if result is Tri.UNKNOWN and raw:
            text = self.say("scd25_not_comparable_text", text=text, limit=_limit(self.scd25, fact))
        return Criterion("scd25", result, text, tuple(evidence), measured=True)

    def _converts(self, unit: str | None) -> bool:
        code = self.catalog.units.ucum(unit)
        if code is None:
            return False
        try:
            self.catalog.convert(1.0, code, self.labs.scd25.unit, analyte=self.labs.scd25.name)
        except ValueError:
            return False
        return True

    def _flagged(
        self, lab: LabValue, side: str, flagged: frozenset[str], normal: frozenset[str], note: str = ""
    ) -> tuple[Tri, str]:
        """Whether a result the lab facts cannot compare is beyond its reference limit on `side`: by the
        lab's interpretation, or by its reference range in the same unit."""
        codes = _interpretation(lab)
        by_flag = Tri.MET if codes & flagged else Tri.NOT_MET if codes & normal else Tri.UNKNOWN
        by_range, limit = self._against_range(lab, side)
        result = (
            Tri.MET
            if Tri.MET in (by_flag, by_range)
            else Tri.NOT_MET
            if Tri.NOT_MET in (by_flag, by_range)
            else Tri.UNKNOWN
        )
        text = self.say(
            "reading_text",
            value=_raw_value(lab),
            interpretation=self.say("reading_interpretation_text", codes=", ".join(sorted(codes)))
            if codes
            else self.say("reading_no_interpretation_text"),
            range=limit or self.say("reading_no_range_text"),
            time=format_time(lab.time),
            resource=f"Observation/{lab.id}",
        )
        if result is Tri.UNKNOWN and note:
            text = self.say("reading_note_text", text=text, note=note)
        return result, text

    def _against_range(self, lab: LabValue, side: str) -> tuple[Tri, str | None]:
        units = self.catalog.units
        if lab.value is None or not math.isfinite(lab.value):
            return Tri.UNKNOWN, None
        comparator = lab.comparator if lab.comparator in _BOUNDS else None
        if lab.comparator is not None and comparator is None:
            return Tri.UNKNOWN, None
        for reference in lab.resource.referenceRange or ():
            bound = reference.low if side == "low" else reference.high
            if bound is None or bound.value is None:
                continue
            unit = units.ucum(bound.code or bound.unit)
            if unit is not None and unit != units.ucum(lab.unit):
                continue  # a range in another unit is not converted, as the value is not
            op = "<" if side == "low" else ">"
            shown = self.say(
                "reading_range_text", side=side, limit=f"{format_number(bound.value)} {unit or ''}"
            )
            shown = shown.strip()
            return compare(lab.value, op, bound.value, comparator), shown
        return Tri.UNKNOWN, None

    def _readings(self, result: Tri, readings: Sequence[tuple[Tri, str]]) -> str:
        """The criterion's result and the readings that decide it (all of them when none does)."""
        shown = [t for r, t in readings if r is result or result is Tri.UNKNOWN]
        return self.say("readings_text", result=_SHOWN[result], readings="; ".join(shown))

    def _lineage(self, label: str, fact: Fact, result: Tri, limit: str) -> str:
        if fact.value is None:
            return self.say("lineage_unknown_text", label=label, missing=str(fact.missing))
        word = self.words["lineage_words"][result]
        return self.say(
            "lineage_text", label=label, value=_value(fact), word=word, limit=limit, where=_where(fact)
        )

    def _highest(self, key: str, fact: Fact, threshold: Threshold, measured: bool) -> Criterion:
        """A criterion met by the highest value in the window reaching `threshold`; `measured` says
        whether there were results at all, should none of them be usable."""
        result = threshold.compare(fact, ">=")
        if fact.value is None:
            return Criterion(
                key, result, self.say("unknown_text", missing=str(fact.missing)), measured=measured
            )
        text = self.say(
            "highest_text",
            result=_SHOWN[result],
            value=_value(fact),
            limit=_limit(threshold, fact),
            where=_where(fact),
        )
        return Criterion(key, result, text, fact.evidence, measured=True)


def configure(params: Params, catalog: FactCatalog, labs: HlhLabs, labels: Mapping[str, str]) -> Criteria:
    codes = {name: _codes(params, name) for name in ("nk_activity_codes", "hemophagocytosis_codes")}
    interpretations = Interpretations(
        high=frozenset(params.texts("interpretation_high")),
        low=frozenset(params.texts("interpretation_low")),
        normal=frozenset(params.texts("interpretation_normal")),
        positive=frozenset(params.texts("interpretation_positive")),
        negative=frozenset(params.texts("interpretation_negative")),
    )
    return Criteria(
        catalog=catalog,
        lineages=params.whole("cytopenia_lineages"),
        labels=labels,
        fever=params.threshold("fever", "Cel", labs.temperature.name),
        hemoglobin=params.threshold("hemoglobin_low", "g/dL", labs.hemoglobin.name),
        hemoglobin_infant=params.threshold("hemoglobin_low_infant", "g/dL", labs.hemoglobin.name),
        infant_age=params.number("infant_age", "d"),
        platelets=params.threshold("platelets_low", "10*9/L", labs.platelets.name),
        anc=params.threshold("anc_low", "10*9/L", labs.anc.name),
        triglycerides=params.threshold("triglycerides_high", "mg/dL", labs.triglycerides.name),
        fibrinogen=params.threshold("fibrinogen_low", "mg/dL", labs.fibrinogen.name),
        ferritin=params.threshold("ferritin_high", "ug/L", labs.ferritin.name),
        scd25=params.threshold("scd25_high", labs.scd25.unit, labs.scd25.name),
        labs=labs,
        nk_codes=codes["nk_activity_codes"],
        hemophagocytosis_codes=codes["hemophagocytosis_codes"],
        window=timedelta(hours=params.number("result_window", "h")),
        interpretations=interpretations,
        wording={name: params.template(name, names) for name, names in WORDING.items()},
        words={name: _words(params, name) for name in WORDS},
    )


# --- configuration helpers --------------------------------------------------------------------------


def per_criterion(params: Params, name: str) -> dict[str, str]:
    values = params.texts(name)
    if len(values) != len(CRITERIA):
        raise ParameterError(
            name,
            f"parameter {name!r} must list {len(CRITERIA)} texts, one per criterion: {', '.join(CRITERIA)}",
        )
    return dict(zip(CRITERIA, values, strict=True))


def _words(params: Params, name: str) -> dict[Tri, str]:
    values = params.texts(name)
    if len(values) != 3:
        raise ParameterError(
            name, f"parameter {name!r} must list 3 texts: for a comparison met, not met, and undecided"
        )
    return dict(zip((Tri.MET, Tri.NOT_MET, Tri.UNKNOWN), values, strict=True))


def _codes(params: Params, name: str) -> tuple[str, ...]:
    # An empty list is allowed: the criterion then stays UNKNOWN, and says why.
    values = params.texts(name)
    for value in values:
        system, _, code = value.partition("|")
        if not system.strip() or not code.strip():
            raise ParameterError(name, f"parameter {name!r}: {value!r} is not system|code")
    return values


def _raw_value(lab: LabValue) -> str:
    if lab.value is None:
        return "no numeric value"
    comparator = lab.comparator if lab.comparator in _BOUNDS else ""
    return f"{comparator}{format_number(lab.value)} {lab.unit or ''}".strip()


def _has_data(named: Mapping[str, Fact], analyte: Analyte) -> bool:
    """Whether the analyte has any result in its window, usable or not: a count of 0 is "none"; a count
    that is missing means results were there but could not all be used (or could not be read)."""
    return named[_count(analyte)].value != 0


def _days(window: timedelta) -> str:
    days = window.total_seconds() / 86400
    return f"{format_number(days)} days" if days != 1 else "1 day"


# --- data helpers -----------------------------------------------------------------------------------


def _results(facts: Facts, codes: Iterable[str], start: datetime) -> list[LabValue]:
    """Results coded with one of `codes` in the window, newest first, each Observation once."""
    seen: set[int] = set()
    out = []
    for code in codes:
        for lab in facts.labs.get(code, ()):
            if id(lab.resource) in seen or lab.time is None or lab.time < start:
                continue
            seen.add(id(lab.resource))
            out.append(lab)
    out.sort(key=lambda lab: lab.time or start, reverse=True)
    return out


def _interpretation(lab: LabValue) -> set[str]:
    return {
        coding.code
        for concept in lab.resource.interpretation or ()
        for coding in concept.coding or ()
        if coding.code
    }
