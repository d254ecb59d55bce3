"""Chart files (rules/charts/*.yaml): what a chart behind a card's link draws, checked like rule files.

A chart names analytes of rules/facts/analytes.yaml and a medication class of medications.yaml; this
module knows neither. Every problem is reported with its file:line, all at once, and a chart file that
does not lint keeps the whole ruleset from loading, as a rule file would.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from cds_service.facts.units import UnitError
from cds_service.yamlfile import FileProblems, Location, Problem, YamlDoc, load_yaml, validation_problems

if TYPE_CHECKING:  # the rule file format imports ChartId from here, and must stay light
    from cds_service.facts.catalog import FactCatalog

CHARTS_DIR = "charts"
# The unit dose steps are computed in (orders.py's canonical daily dose); a chart may draw another.
DAILY_DOSE_UNIT = "mg/d"
# More panels than this no longer fit a laptop screen at a readable height.
MAX_PANELS = 6

Text = Annotated[str, StringConstraints(min_length=1)]
ChartId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9\-]{0,63}$")]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DurationModel(_Strict):
    value: float = Field(gt=0)
    unit: Text = Field(description="a UCUM time unit: h, d, wk")


class PanelModel(_Strict):
    title: Text
    analytes: list[Name] = Field(min_length=1, description="analyte names of rules/facts/analytes.yaml")
    unit: Text = Field(description="the UCUM unit the panel is drawn in; every analyte must convert to it")
    scale: Literal["linear", "log"] = "linear"


class DoseModel(_Strict):
    title: Text
    medication: Name = Field(description="a medication class of rules/facts/medications.yaml")
    unit: Text = Field(default=DAILY_DOSE_UNIT, description="a daily-dose unit, e.g. mg/d")


class ChartFile(_Strict):
    id: ChartId
    title: Text
    description: Text
    lookback: DurationModel = Field(description="how far back from the request's time results are drawn")
    panels: list[PanelModel] = Field(min_length=1, max_length=MAX_PANELS)
    dose: DoseModel | None = Field(default=None, description="the medication's dose steps, in a panel below")
    source: Text = Field(description="why these analytes, this lookback: paper, section, or [project choice]")


@dataclasses.dataclass(frozen=True)
class Panel:
    title: str
    analytes: tuple[str, ...]
    unit: str
    scale: Literal["linear", "log"]


@dataclasses.dataclass(frozen=True)
class DoseSeries:
    title: str
    medication: str
    unit: str


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


def load_charts(rules_dir: Path, catalog: FactCatalog) -> tuple[dict[str, ChartDefinition], list[Problem]]:
    """The charts of rules_dir/charts, and every problem (errors and warnings) with its file:line.

    A chart with an error is left out of the result; the problems keep the ruleset from loading."""
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
        chart = _checked(doc, spec, catalog, problems)
        if spec.id in charts:
            problems.append(
                doc.problem(("id",), f"duplicate chart id {spec.id!r} (also in {charts[spec.id].path})")
            )
            continue
        if not any(p.severity == "error" for p in problems[before:]):
            charts[spec.id] = chart
    return charts, problems


def _checked(doc: YamlDoc, spec: ChartFile, catalog: FactCatalog, problems: list[Problem]) -> ChartDefinition:
    def error(location: Location, message: str, severity: str = "error") -> None:
        problems.append(doc.problem(location, message, severity))

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
        try:
            catalog.convert(1.0, DAILY_DOSE_UNIT, spec.dose.unit)
        except UnitError as exc:
            error(("dose", "unit"), f"a daily dose cannot be drawn in {spec.dose.unit}: {exc}")
        dose = DoseSeries(spec.dose.title, spec.dose.medication, spec.dose.unit)
    panels = tuple(Panel(p.title, tuple(p.analytes), p.unit, p.scale) for p in spec.panels)
    return ChartDefinition(
        spec.id, spec.title, " ".join(spec.description.split()), lookback, panels, dose, spec.source, doc.path
    )
