"""rules/facts/*.yaml -> FactCatalog: the clinical knowledge fact code runs on, and every fact's spec.

The files are validated by the pydantic models below (unknown keys are errors) and then checked for
meaning: units that UCUM knows, windows that are times, molar masses in g/mol, analytes that exist. Every
problem is reported with its file:line, all at once. Each number carries a `source`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from cds_service.facts.coding import ndc11
from cds_service.facts.conditions import condition_specs
from cds_service.facts.cultures import culture_specs
from cds_service.facts.knowledge import (
    Analyte,
    Conditions,
    ConditionSet,
    Derivation,
    Labs,
    Matcher,
    MedicationClass,
    Medications,
    Microbiology,
    MicroFinding,
    MicroResult,
    Patient,
    Route,
    RouteException,
    RouteFilter,
    Specimen,
    ValueSet,
)
from cds_service.facts.labs import lab_specs
from cds_service.facts.medications import medication_specs
from cds_service.facts.named import FactSpec
from cds_service.facts.names import EMPTY, NO_NEGATIONS, Names, Negations
from cds_service.facts.orders import order_specs
from cds_service.facts.patient import patient_specs
from cds_service.facts.units import MOLAR_MASS_UNIT, UnitError, Units
from cds_service.yamlfile import FileProblems, Location, Problem, YamlDoc, load_yaml, validation_problems

FACTS_DIR = "facts"
# Names of the other fact families: an analyte with one of these names would shadow them.
RESERVED = frozenset({"order", "patient", "medications", "cultures", "conditions", "param", "missing"})

Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
Code = Annotated[str, StringConstraints(pattern=r"^[^|\s]+\|[^|\s]+$")]
Source = Annotated[str, StringConstraints(min_length=3)]
# "system|code": where the code was verified (status V / V2 / U, as in terminology.md) or why it is listed.
Codes = dict[Code, Source]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sourced(_Strict):
    """A number with its UCUM unit and where it comes from."""

    value: float = Field(gt=0)
    unit: Text
    source: Source


# --- analytes.yaml ----------------------------------------------------------------------------------


class DeriveModel(_Strict):
    product_of: tuple[Name, Name]
    within: Sourced
    source: Source


class AnalyteModel(_Strict):
    label: Text
    codes: Codes = Field(min_length=1)
    unit: Text
    worst: Literal["max", "min"] | None = None
    window: Sourced | None = None
    molar_mass: Sourced | None = None
    arbitrary_units: list[Text] = Field(default_factory=list)
    derive: DeriveModel | None = None
    source: Source


class AnalytesFile(_Strict):
    sources: list[Text]
    default_window: Sourced
    analytes: dict[Name, AnalyteModel] = Field(min_length=1)


# --- patient.yaml -----------------------------------------------------------------------------------


class WeightModel(_Strict):
    analyte: Name
    source: Source


class PatientFile(_Strict):
    sources: list[Text]
    weight: WeightModel


# --- medications.yaml -------------------------------------------------------------------------------


class RouteModel(_Strict):
    label: Text
    infusion: bool
    codes: Codes = Field(default_factory=dict)
    text: list[Text] = Field(default_factory=list)
    source: Source


class RouteExceptionModel(_Strict):
    label: Text
    codes: Codes = Field(default_factory=dict)
    code_prefixes: Codes = Field(default_factory=dict)
    text: list[Text] = Field(default_factory=list)
    routes: list[Name] = Field(min_length=1)
    source: Source


class RouteFilterModel(_Strict):
    counted: list[Name] = Field(min_length=1)
    except_: list[RouteExceptionModel] = Field(default_factory=list, alias="except")
    source: Source


class DoseUnitModel(_Strict):
    """The UCUM unit a drug is dosed in, and where that comes from."""

    unit: Text
    source: Source


class MedicationModel(_Strict):
    label: Text
    dose_unit: DoseUnitModel
    codes: Codes = Field(default_factory=dict)
    code_prefixes: Codes = Field(default_factory=dict)
    text: list[Text] = Field(default_factory=list)
    routes: RouteFilterModel | None = None
    source: Source

    @model_validator(mode="after")
    def _recognisable(self) -> MedicationModel:
        if not (self.codes or self.code_prefixes or self.text):
            raise ValueError("give codes, code_prefixes or text to recognise the medication by")
        return self


class MedicationsFile(_Strict):
    sources: list[Text]
    ndc_systems: list[Text] = Field(default_factory=list)
    routes: dict[Name, RouteModel]
    timing_codes: dict[Text, Sourced] = Field(default_factory=dict)
    medications: dict[Name, MedicationModel] = Field(min_length=1)


# --- microbiology.yaml ------------------------------------------------------------------------------


class NegationsModel(_Strict):
    before: list[Text] = Field(default_factory=list)
    after: list[Text] = Field(default_factory=list)
    source: Source


class ValueSetModel(_Strict):
    label: Text
    codes: Codes = Field(default_factory=dict)
    names: list[Text] = Field(default_factory=list)
    leading: bool = False
    source: Source

    @model_validator(mode="after")
    def _recognisable(self) -> ValueSetModel:
        if not (self.codes or self.names):
            raise ValueError("give codes or names to recognise the values by")
        return self


class OtherSpecimenModel(_Strict):
    label: Text
    codes: Codes = Field(default_factory=dict)
    names: list[Text] = Field(default_factory=list)


class SpecimenModel(_Strict):
    label: Text
    codes: Codes = Field(default_factory=dict)
    names: list[Text] = Field(default_factory=list)
    not_: OtherSpecimenModel | None = Field(default=None, alias="not")
    sources: list[Text] = Field(default_factory=list)
    source: Source


class MicroResultModel(_Strict):
    label: Text
    codes: Codes = Field(min_length=1)
    specimen_in_code: bool = False
    any_code_on_specimen: bool = False
    positive: list[Name] = Field(min_length=1)
    other: list[Name] = Field(default_factory=list)
    negative: list[Name] = Field(default_factory=list)
    source: Source


class FindingModel(_Strict):
    label: Text
    window: Sourced
    specimen: SpecimenModel
    results: list[MicroResultModel] = Field(min_length=1)


class MicrobiologyFile(_Strict):
    sources: list[Text]
    negations: NegationsModel | None = None
    value_sets: dict[Name, ValueSetModel] = Field(default_factory=dict)
    findings: dict[Name, FindingModel]


# --- conditions.yaml --------------------------------------------------------------------------------


class ConditionModel(_Strict):
    label: Text
    resource: Literal["Condition", "Procedure", "Encounter"] = "Condition"
    codes: Codes = Field(default_factory=dict)
    code_prefixes: Codes = Field(default_factory=dict)
    window: Sourced | None = None
    sources: list[Text] | None = None
    source: Source

    @model_validator(mode="after")
    def _complete(self) -> ConditionModel:
        if not (self.codes or self.code_prefixes):
            raise ValueError("give codes or code_prefixes")
        if self.resource != "Condition" and self.window is None:
            raise ValueError(f"a {self.resource} set needs a window (how recent it must be)")
        return self


class ConditionsFile(_Strict):
    sources: list[Text]
    conditions: dict[Name, ConditionModel]


# --- units.yaml -------------------------------------------------------------------------------------


class AliasModel(_Strict):
    ucum: Text
    seen: list[Text] = Field(min_length=1)
    source: Source


class UnitsFile(_Strict):
    aliases: list[AliasModel] = Field(default_factory=list)
    # UCUM code -> how people write it ("Cel" -> "°C"): card text and charts show this form.
    display: dict[Text, Text] = Field(default_factory=dict)


_FILES: dict[str, type[_Strict]] = {
    "analytes": AnalytesFile,
    "patient": PatientFile,
    "medications": MedicationsFile,
    "microbiology": MicrobiologyFile,
    "conditions": ConditionsFile,
    "units": UnitsFile,
}


@dataclasses.dataclass(frozen=True)
class FactCatalog:
    directory: Path
    labs: Labs
    patient: Patient
    medications: Medications
    microbiology: Microbiology
    conditions: Conditions
    units: Units
    specs: dict[str, FactSpec]

    @property
    def analytes(self) -> dict[str, Analyte]:
        return self.labs.analytes

    def convert(self, value: float, from_unit: str, to_unit: str, analyte: str | None = None) -> float:
        """`value` from one UCUM unit to another, through the analyte's molar mass where one is given.

        Raises UnitError (a ValueError) saying why when the units are unknown or do not convert.
        """
        known = self.labs.analytes.get(analyte) if analyte else None
        if known is not None:
            return self.units.convert(value, from_unit, to_unit, known.molar_mass, known.same_unit)
        return self.units.convert(
            value, from_unit, to_unit, same=self._arbitrary if from_unit == to_unit else frozenset()
        )

    def convertible(self, unit: str, fact_name: str) -> bool:
        """Whether a value in `unit` can be compared with the fact (a quantity in its canonical unit)."""
        spec = self.specs.get(fact_name)
        if spec is None or spec.kind != "quantity" or spec.unit is None:
            return False
        try:
            self.convert(1.0, unit, spec.unit, analyte=fact_name.split(".")[0])
        except UnitError:
            return False
        return True

    @property
    def _arbitrary(self) -> frozenset[str]:
        return frozenset(u for a in self.labs.analytes.values() for u in a.same_unit)


def load_catalog(rules_dir: Path) -> FactCatalog:
    """Read rules_dir/facts/*.yaml. Raises FileProblems listing every problem with its file:line."""
    directory = rules_dir / FACTS_DIR
    problems: list[Problem] = []
    docs: dict[str, tuple[YamlDoc, Any]] = {}
    paths = (
        sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
        if directory.is_dir()
        else []
    )
    for path in paths:
        model = _FILES.get(path.stem)
        if model is None:
            problems.append(
                Problem(
                    path, 1, f"unknown facts file; expected one of {', '.join(f'{n}.yaml' for n in _FILES)}"
                )
            )
            continue
        try:
            doc = load_yaml(path)
        except FileProblems as exc:
            problems.extend(exc.problems)
            continue
        try:
            docs[path.stem] = (doc, model.model_validate(doc.data))
        except ValidationError as exc:
            problems.extend(validation_problems(doc, exc))
    for stem in _FILES:
        if stem not in docs and not any(p.path.stem == stem for p in problems):
            problems.append(Problem(directory / f"{stem}.yaml", 1, "missing: this facts file is required"))
    if problems:
        raise FileProblems(problems)
    builder = _Builder(problems)
    units = builder.units(*docs["units"])
    labs = builder.labs(units, *docs["analytes"])
    patient = builder.patient(labs, units, *docs["patient"])
    medications = builder.medications(units, *docs["medications"])
    microbiology = builder.microbiology(units, *docs["microbiology"])
    conditions = builder.conditions(units, *docs["conditions"])
    if problems:
        raise FileProblems(problems)
    specs: dict[str, FactSpec] = {}
    for spec in (
        *lab_specs(labs),
        *patient_specs(patient, labs),
        *order_specs(medications),
        *medication_specs(medications),
        *culture_specs(microbiology),
        *condition_specs(conditions),
    ):
        specs[spec.name] = spec
    return FactCatalog(directory, labs, patient, medications, microbiology, conditions, units, specs)


class _Builder:
    """Checks what the schema cannot (units, references between entries) and builds the knowledge."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems

    def error(self, doc: YamlDoc, location: Location, message: str) -> None:
        self.problems.append(doc.problem(location, message))

    def duration(self, doc: YamlDoc, location: Location, value: Sourced, units: Units) -> timedelta:
        try:
            return timedelta(hours=units.convert(value.value, value.unit, "h"))
        except UnitError as exc:
            self.error(doc, (*location, "unit"), f"{exc} (a duration is needed, e.g. d or h)")
            return timedelta(0)

    def unit(self, doc: YamlDoc, location: Location, code: str, allowed: Iterable[str] = ()) -> None:
        try:
            Units.check(code, allowed)
        except UnitError as exc:
            self.error(doc, location, str(exc))

    def units(self, doc: YamlDoc, spec: UnitsFile) -> Units:
        aliases: dict[str, str] = {}
        for index, alias in enumerate(spec.aliases):
            self.unit(doc, ("aliases", index, "ucum"), alias.ucum)
            for position, seen in enumerate(alias.seen):
                if seen in aliases and aliases[seen] != alias.ucum:
                    self.error(
                        doc,
                        ("aliases", index, "seen", position),
                        f"'{seen}' is already an alias of '{aliases[seen]}'",
                    )
                aliases[seen] = alias.ucum
        # Display keys are not checked as UCUM: arbitrary assay units ([U]/mL) are printed too.
        return Units(aliases, spec.display)

    def labs(self, units: Units, doc: YamlDoc, spec: AnalytesFile) -> Labs:
        default = self.duration(doc, ("default_window",), spec.default_window, units)
        analytes: dict[str, Analyte] = {}
        owner: dict[str, str] = {}
        for name, a in spec.analytes.items():
            where: Location = ("analytes", name)
            if name in RESERVED:
                self.error(doc, where, f"'{name}' names another family of facts; choose another analyte name")
            same = frozenset([*a.arbitrary_units, a.unit]) if a.arbitrary_units else frozenset()
            self.unit(doc, (*where, "unit"), a.unit, same)
            for code in a.codes:
                if code in owner:
                    self.error(doc, (*where, "codes", code), f"{code} is also a code of {owner[code]}")
                owner[code] = name
            window = self.duration(doc, (*where, "window"), a.window, units) if a.window else default
            molar_mass = None
            if a.molar_mass is not None:
                try:
                    molar_mass = units.convert(a.molar_mass.value, a.molar_mass.unit, MOLAR_MASS_UNIT)
                except UnitError as exc:
                    self.error(doc, (*where, "molar_mass", "unit"), f"{exc} (a molar mass is in g/mol)")
            derive = None
            if a.derive is not None:
                first, second = a.derive.product_of
                for index, other in enumerate((first, second)):
                    if other not in spec.analytes or other == name:
                        self.error(doc, (*where, "derive", "product_of", index), f"unknown analyte '{other}'")
                within = self.duration(doc, (*where, "derive", "within"), a.derive.within, units)
                derive = Derivation(first, second, within)
            analytes[name] = Analyte(
                name, a.label, tuple(a.codes), a.unit, window, a.worst, molar_mass, same, derive
            )
        for name, analyte in analytes.items():
            if analyte.derive and analyte.derive.first in analytes and analyte.derive.second in analytes:
                a_unit, b_unit = analytes[analyte.derive.first].unit, analytes[analyte.derive.second].unit
                try:
                    units.product_factor(a_unit, b_unit, analyte.unit)
                except UnitError as exc:
                    self.error(doc, ("analytes", name, "derive", "product_of"), str(exc))
        return Labs(analytes, tuple(spec.sources))

    def patient(self, labs: Labs, units: Units, doc: YamlDoc, spec: PatientFile) -> Patient:
        analyte = labs.analytes.get(spec.weight.analyte)
        if analyte is None:
            self.error(
                doc, ("weight", "analyte"), f"unknown analyte '{spec.weight.analyte}' (see analytes.yaml)"
            )
        elif units.try_convert(1.0, analyte.unit, "kg") is None:
            self.error(doc, ("weight", "analyte"), f"'{analyte.name}' is in {analyte.unit}, not a mass")
        return Patient(spec.weight.analyte, tuple(spec.sources))

    def medications(self, units: Units, doc: YamlDoc, spec: MedicationsFile) -> Medications:
        ndc_systems = frozenset(spec.ndc_systems)
        routes = {
            name: Route(name, r.label, r.infusion, frozenset(r.codes), tuple(t.lower() for t in r.text))
            for name, r in spec.routes.items()
        }
        if "other" in routes:
            self.error(doc, ("routes", "other"), "'other' is the value for routes not listed here; rename it")
        timing: dict[str, float] = {}
        for code, interval in spec.timing_codes.items():
            hours = self.duration(doc, ("timing_codes", code), interval, units).total_seconds() / 3600
            timing[code.strip().upper()] = hours
        classes = {
            name: MedicationClass(
                name,
                m.label,
                _matcher(m.codes, m.code_prefixes, m.text, ndc_systems),
                self.dose_unit(doc, ("medications", name, "dose_unit", "unit"), m.dose_unit.unit, units),
                self.route_filter(doc, ("medications", name, "routes"), m.routes, routes, ndc_systems),
            )
            for name, m in spec.medications.items()
        }
        # The order.* facts have one unit whichever class a service orders: the first class's sets it.
        dose_unit = next(iter(classes.values())).dose_unit
        for name, drug in classes.items():
            if drug.dose_unit != dose_unit:
                self.error(
                    doc,
                    ("medications", name, "dose_unit", "unit"),
                    f"dose unit {drug.dose_unit} differs from {dose_unit}: the order facts have one unit",
                )
        return Medications(classes, routes, timing, ndc_systems, tuple(spec.sources), dose_unit)

    def dose_unit(self, doc: YamlDoc, location: Location, code: str, units: Units) -> str:
        """A drug's dose unit: an amount of drug (a mass, substance or units), never a volume or time."""
        try:
            Units.check(code)
        except UnitError as exc:
            self.error(doc, location, str(exc))
            return code
        if units.try_convert(1.0, code, "mL") is not None or units.try_convert(1.0, code, "h") is not None:
            self.error(doc, location, f"{code} is a volume or a time, not an amount of drug")
        return code

    def route_filter(
        self,
        doc: YamlDoc,
        where: Location,
        spec: RouteFilterModel | None,
        routes: dict[str, Route],
        ndc_systems: frozenset[str],
    ) -> RouteFilter | None:
        if spec is None:
            return None

        def known(names: list[str], location: Location) -> frozenset[str]:
            for position, name in enumerate(names):
                if name not in routes:
                    choices = ", ".join(sorted(routes))
                    self.error(doc, (*location, position), f"unknown route '{name}' (routes: {choices})")
            return frozenset(names)

        exceptions = tuple(
            RouteException(
                e.label,
                _matcher(e.codes, e.code_prefixes, e.text, ndc_systems),
                known(e.routes, (*where, "except", index, "routes")),
            )
            for index, e in enumerate(spec.except_)
        )
        return RouteFilter(known(spec.counted, (*where, "counted")), exceptions)

    def microbiology(self, units: Units, doc: YamlDoc, spec: MicrobiologyFile) -> Microbiology:
        negations = (
            Negations.of(spec.negations.before, spec.negations.after) if spec.negations else NO_NEGATIONS
        )
        sets = {
            name: ValueSet(name, v.label, frozenset(v.codes), Names.of(v.names, negations), leading=v.leading)
            for name, v in spec.value_sets.items()
        }
        findings = {}
        for name, f in spec.findings.items():
            window = self.duration(doc, ("findings", name, "window"), f.window, units)
            other = f.specimen.not_
            specimen = Specimen(
                f.specimen.label,
                frozenset(f.specimen.codes),
                Names.of(f.specimen.names),
                frozenset(other.codes) if other else frozenset(),
                Names.of(other.names) if other else EMPTY,
                tuple(f.specimen.sources),
            )
            results = []
            for index, r in enumerate(f.results):
                where: Location = ("findings", name, "results", index)
                chosen = {}
                for role in ("positive", "other", "negative"):
                    picked = []
                    for position, set_name in enumerate(getattr(r, role)):
                        if set_name in sets:
                            picked.append(sets[set_name])
                        else:
                            known = ", ".join(sorted(sets)) or "none"
                            self.error(
                                doc, (*where, role, position), f"unknown value set '{set_name}' ({known})"
                            )
                    chosen[role] = tuple(picked)
                results.append(
                    MicroResult(
                        r.label,
                        frozenset(r.codes),
                        chosen["positive"],
                        chosen["other"],
                        chosen["negative"],
                        r.specimen_in_code,
                        r.any_code_on_specimen,
                    )
                )
            findings[name] = MicroFinding(name, f.label, window, specimen, tuple(results))
        return Microbiology(findings, tuple(spec.sources))

    def conditions(self, units: Units, doc: YamlDoc, spec: ConditionsFile) -> Conditions:
        sets = {}
        for name, c in spec.conditions.items():
            window = self.duration(doc, ("conditions", name, "window"), c.window, units) if c.window else None
            sources = tuple(spec.sources if c.sources is None else c.sources)
            matcher = _matcher(c.codes, c.code_prefixes, (), frozenset())
            sets[name] = ConditionSet(name, c.label, c.resource, matcher, sources, window)
        return Conditions(sets)


def _matcher(codes: Codes, prefixes: Codes, text: Iterable[str], ndc_systems: frozenset[str]) -> Matcher:
    ndc = frozenset(ndc11(c.partition("|")[2]) for c in codes if c.partition("|")[0] in ndc_systems)
    return Matcher(frozenset(codes), tuple(prefixes), ndc, tuple(t.lower() for t in text))
