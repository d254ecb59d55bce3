"""Chart files (rules/charts/*.yaml): what a chart behind a card's link draws, checked like rule files.

A chart names analytes of rules/facts/analytes.yaml and a medication class of medications.yaml; this
module knows neither. Every problem is reported with its file:line, all at once, and a chart file that
does not lint keeps the whole ruleset from loading, as a rule file would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from cds_service.facts.catalog import FactCatalog
from cds_service.facts.orders import quantities
from cds_service.facts.units import UnitError
from cds_service.ruleformat.rulefile import ChartId
from cds_service.yamlfile import FileProblems, Location, Problem, YamlDoc, load_yaml, validation_problems

CHARTS_DIR = "charts"
# More panels than this no longer fit a laptop screen at a readable height.
MAX_PANELS = 6

Text = Annotated[str, StringConstraints(min_length=1)]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DurationModel(_Strict):
    value: float = Field(gt=0)
    unit: Text = Field(description="a UCUM time unit: h, d, wk")


class ThresholdModel(_Strict):
    label: Text = Field(description="what the line means, as the chart labels it, e.g. HLH-2004 criterion")
    parameter: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9\-]*\.[a-z][a-z0-9_]*$",
        description="a rule file's parameter, as rule-id.parameter: the line is its value, and its source "
        "is the parameter's",
    )
    fact: str | None = Field(
        default=None,
        description="a quantity fact a calculation computes per request (e.g. renal.creatinine_limit): the "
        "line is drawn when the fact has a value, and the chart says why when it has none",
    )

    @model_validator(mode="after")
    def _one(self) -> ThresholdModel:
        if (self.parameter is None) == (self.fact is None):
            raise ValueError("give either `parameter` (rule-id.parameter) or `fact`")
        return self


class PanelModel(_Strict):
    title: Text
    analytes: list[Name] = Field(min_length=1, description="analyte names of rules/facts/analytes.yaml")
    unit: Text = Field(description="the UCUM unit the panel is drawn in; every analyte must convert to it")
    scale: Literal["linear", "log"] = "linear"
    thresholds: list[ThresholdModel] = Field(
        default_factory=list,
        description="criterion thresholds drawn as labelled horizontal lines; the axis always includes them",
    )


class DoseModel(_Strict):
    title: Text
    medication: Name = Field(description="a medication class of rules/facts/medications.yaml")
    unit: Text = Field(description="the daily-dose unit the chart draws in, e.g. mg/d")
    thresholds: list[ThresholdModel] = Field(
        default_factory=list, description="dose ceilings drawn as labelled horizontal lines"
    )


class ChartFile(_Strict):
    id: ChartId
    title: Text
    description: Text
    lookback: DurationModel = Field(description="how far back from the request's time results are drawn")
    panels: list[PanelModel] = Field(min_length=1, max_length=MAX_PANELS)
    dose: DoseModel | None = Field(default=None, description="the medication's dose steps, in a panel below")
    source: Text = Field(description="why these analytes, this lookback: paper, section, or [project choice]")


@dataclasses.dataclass(frozen=True)
class ThresholdLine:
    label: str
    value: float | None  # in the panel's unit, for a rule parameter; None for a fact
    fact: str | None  # the fact whose value, per request, is the line
    source: str  # the parameter's source, or what the fact is


@dataclasses.dataclass(frozen=True)
class Panel:
    title: str
    analytes: tuple[str, ...]
    unit: str
    scale: Literal["linear", "log"]
    thresholds: tuple[ThresholdLine, ...] = ()


@dataclasses.dataclass(frozen=True)
class DoseSeries:
    title: str
    medication: str
    unit: str
    thresholds: tuple[ThresholdLine, ...] = ()


@dataclasses.dataclass(frozen=True)
class ChartDefinition:
    id: str
    title: str
    description: str
    lookback: timedelta
    panels: tuple[Panel, ...]
    dose: DoseSeries | None
    source: str
    path: Path


def chart_files(rules_dir: Path) -> list[Path]:
    folder = rules_dir / CHARTS_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def load_charts(
    rules_dir: Path, catalog: FactCatalog, parameters: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[dict[str, ChartDefinition], list[Problem]]:
    """The charts of rules_dir/charts, and every problem (errors and warnings) with its file:line.

    `parameters` are the rule files' parameters by rule id, which thresholds may name. A chart with an
    error is left out of the result (a wrong threshold only loses its line, so that the cards linking to
    the chart are not reported too); the problems keep the ruleset from loading."""
    charts: dict[str, ChartDefinition] = {}
    problems: list[Problem] = []
    for path in chart_files(rules_dir):
        try:
            doc = load_yaml(path)
        except FileProblems as exc:
            problems.extend(exc.problems)
            continue
        try:
            spec = ChartFile.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(validation_problems(doc, exc))
            continue
        before = len(problems)
        lines: list[Problem] = []
        chart = _checked(doc, spec, catalog, problems, parameters or {}, lines)
        if spec.id in charts:
            problems.append(
                doc.problem(("id",), f"duplicate chart id {spec.id!r} (also in {charts[spec.id].path})")
            )
            continue
        if not any(p.severity == "error" for p in problems[before:]):
            charts[spec.id] = chart
        problems.extend(lines)
    return charts, problems


def _checked(
    doc: YamlDoc,
    spec: ChartFile,
    catalog: FactCatalog,
    problems: list[Problem],
    parameters: Mapping[str, Mapping[str, Any]],
    line_problems: list[Problem],
) -> ChartDefinition:
    def error(location: Location, message: str, severity: str = "error") -> None:
        problems.append(doc.problem(location, message, severity))

    def line_error(location: Location, message: str) -> None:
        if location[-1] == "parameter":
            rule_id = _named_rule(doc, location)
            rule_file = doc.path.parent.parent / f"{rule_id}.yaml"
            if rule_id and rule_id not in parameters and rule_file.is_file():
                return  # that rule file did not load: its own error says why
        line_problems.append(doc.problem(location, message))

    if doc.path.stem != spec.id:
        error(("id",), f"file name should be {spec.id}.yaml", "warning")
    lookback = timedelta(0)
    try:
        lookback = timedelta(hours=catalog.convert(spec.lookback.value, spec.lookback.unit, "h"))
    except UnitError as exc:
        error(("lookback", "unit"), f"{exc} (a duration is needed, e.g. d or h)")
    analytes = catalog.analytes
    for index, panel in enumerate(spec.panels):
        where: Location = ("panels", index)
        seen: set[str] = set()
        for position, name in enumerate(panel.analytes):
            at: Location = (*where, "analytes", position)
            analyte = analytes.get(name)
            if analyte is None:
                error(at, f"unknown analyte {name!r} (known: {', '.join(sorted(analytes))})")
                continue
            if name in seen:
                error(at, f"analyte {name!r} is listed twice in this panel")
            seen.add(name)
            try:
                catalog.convert(1.0, analyte.unit, panel.unit, analyte=name)
            except UnitError as exc:
                error(
                    (*where, "unit"),
                    f"{analyte.label} ({analyte.unit}) cannot be drawn in {panel.unit}: {exc}",
                )
            if analyte.derive is not None:
                error(
                    at,
                    f"{name!r} is derived from other results; a chart draws only results reported as "
                    f"{name!r} (list {analyte.derive.first!r} and {analyte.derive.second!r} to see the rest)",
                    "warning",
                )
    dose = None
    if spec.dose is not None:
        medication = catalog.medications.classes.get(spec.dose.medication)
        if medication is None:
            known = ", ".join(sorted(catalog.medications.classes))
            error(("dose", "medication"), f"unknown medication {spec.dose.medication!r} (known: {known})")
        # Dose steps are computed in the drug's daily-dose unit (medications.yaml dose_unit per day).
        daily = quantities(medication.dose_unit if medication else catalog.medications.dose_unit)[
            "daily_dose"
        ]
        try:
            catalog.convert(1.0, daily, spec.dose.unit)
        except UnitError as exc:
            error(("dose", "unit"), f"a daily dose cannot be drawn in {spec.dose.unit}: {exc}")
        ceilings = _lines(
            spec.dose.thresholds, spec.dose.unit, None, ("dose",), catalog, parameters, line_error
        )
        dose = DoseSeries(spec.dose.title, spec.dose.medication, spec.dose.unit, ceilings)
    panels = []
    for index, p in enumerate(spec.panels):
        # The first analyte's molar mass converts a threshold stated in another kind of unit.
        first = p.analytes[0] if p.analytes[0] in analytes else None
        lines = _lines(p.thresholds, p.unit, first, ("panels", index), catalog, parameters, line_error)
        panels.append(Panel(p.title, tuple(p.analytes), p.unit, p.scale, lines))
    description = " ".join(spec.description.split())
    return ChartDefinition(
        spec.id, spec.title, description, lookback, tuple(panels), dose, spec.source, doc.path
    )


def _lines(
    thresholds: list[ThresholdModel],
    unit: str,
    analyte: str | None,
    where: Location,
    catalog: FactCatalog,
    parameters: Mapping[str, Mapping[str, Any]],
    error: Any,
) -> tuple[ThresholdLine, ...]:
    lines = []
    for position, threshold in enumerate(thresholds):
        at: Location = (*where, "thresholds", position)
        line = _threshold(threshold, unit, analyte, at, catalog, parameters, error)
        if line is not None:
            lines.append(line)
    return tuple(lines)


def _threshold(
    threshold: ThresholdModel,
    panel_unit: str,
    analyte: str | None,
    at: Location,
    catalog: FactCatalog,
    parameters: Mapping[str, Mapping[str, Any]],
    error: Any,
) -> ThresholdLine | None:
    """The line, with a rule parameter's value converted to `panel_unit`; None (and an error) when what it
    names does not exist or is not a quantity that unit can show."""
    if threshold.parameter is not None:
        rule_id, _, name = threshold.parameter.partition(".")
        found = parameters.get(rule_id, {}).get(name)
        if found is None:
            error((*at, "parameter"), f"no parameter {name!r} in rule {rule_id!r}")
            return None
        value, unit = getattr(found, "value", None), getattr(found, "unit", None)  # a rule Parameter
        if isinstance(value, bool) or not isinstance(value, int | float) or unit is None:
            error((*at, "parameter"), f"{threshold.parameter} is not a number with a unit")
            return None
        try:
            converted = catalog.convert(float(value), unit, panel_unit, analyte=analyte)
        except UnitError as exc:
            error(
                (*at, "parameter"), f"{threshold.parameter} ({unit}) cannot be drawn in {panel_unit}: {exc}"
            )
            return None
        return ThresholdLine(threshold.label, converted, None, " ".join(str(found.source).split()))
    assert threshold.fact is not None
    spec = catalog.specs.get(threshold.fact)
    if spec is None or spec.kind != "quantity" or spec.unit is None:
        error((*at, "fact"), f"{threshold.fact!r} is not a quantity fact")
        return None
    try:
        catalog.convert(1.0, spec.unit, panel_unit, analyte=analyte)
    except UnitError as exc:
        error((*at, "fact"), f"{threshold.fact} ({spec.unit}) cannot be drawn in {panel_unit}: {exc}")
        return None
    return ThresholdLine(threshold.label, None, threshold.fact, spec.description)


def _named_rule(doc: YamlDoc, location: Location) -> str | None:
    """The rule id of the `parameter: rule-id.name` at `location`."""
    node: Any = doc.data
    for key in location:
        node = node[key]
    return str(node).partition(".")[0] if isinstance(node, str) else None
