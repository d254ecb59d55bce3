"""The facts of one request -> what a chart shows: each analyte's results in the panel's unit, and the dose
steps of the chart's medication. A plain JSON payload, stored under the link's token, so the page can be
drawn later without the request, the ruleset that answered it, or the EHR.

Results are read exactly as the rules read them (labs.collect: observation hygiene, UCUM conversion,
censored values kept with their comparator) and dose steps as the exposure calculation places them
(prior_courses: start at boundsPeriod.start or authoredOn, end at boundsPeriod.end, the next order, or now).
Results that could not be drawn are listed with the reason, never dropped silently. Nothing identifying
the patient is copied: no name, no identifier, no patient id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cds_service.charts.definition import ChartDefinition, DoseSeries, Panel, ThresholdLine
from cds_service.clinical.exposure.facts import order_period, prior_courses
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.knowledge import unavailable
from cds_service.facts.labs import collect
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact
from cds_service.facts.orders import is_medication, normalised, quantities, resolver
from cds_service.facts.units import tidy

Payload = dict[str, Any]


def chart_payload(
    chart: ChartDefinition,
    catalog: FactCatalog,
    facts: Facts,
    weight: Fact,
    named: Mapping[str, Fact] | None = None,
) -> Payload:
    """What `chart` shows of this request; `weight` turns a per-kg dose into a daily dose, and `named`
    (the evaluation's facts) gives the thresholds that are facts of this request."""
    start = facts.now - chart.lookback
    payload: Payload = {
        "chart": chart.id,
        "title": chart.title,
        "description": chart.description,
        "as_of": iso(facts.now),
        "from": iso(start),
        "panels": [_panel(panel, catalog, facts, start, named or {}) for panel in chart.panels],
        "dose": _dose(chart.dose, catalog, facts, weight, named or {}) if chart.dose else None,
        "notes": [],
    }
    gap = unavailable(facts.unavailable, catalog.labs.sources)
    if gap is not None:
        payload["notes"].append(f"Results may be missing: {gap}.")
    return payload


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _panel(
    panel: Panel, catalog: FactCatalog, facts: Facts, start: datetime, named: Mapping[str, Fact]
) -> Payload:
    series = []
    for name in panel.analytes:
        analyte = catalog.analytes[name]
        found = collect(analyte, facts, catalog.units, start)
        # One conversion per series (lint proved it exists), applied to each point: this runs per answer.
        scale, offset = catalog.units.affine(analyte.unit, panel.unit, analyte.molar_mass, analyte.same_unit)
        points = []
        for point in reversed(found.points):  # collect gives newest first; a chart reads oldest first
            if point.time > facts.now:
                continue  # after the request's time: not part of what the card was based on
            value = point.value if (scale, offset) == (1.0, 0.0) else tidy(scale * point.value + offset)
            # The value and unit as the lab reported them, whatever the panel converts them to.
            reported = (
                f"{point.comparator or ''}{point.native_value:g} {catalog.units.text(point.native_unit)}"
            )
            points.append([iso(point.time), value, point.comparator, reported])
        series.append({"analyte": name, "label": analyte.label, "points": points, "excluded": found.excluded})
    first = panel.analytes[0] if panel.analytes[0] in catalog.analytes else None
    lines, undrawn = _thresholds(panel.thresholds, panel.unit, first, catalog, named)
    return {
        "title": panel.title,
        "unit": panel.unit,
        # The unit as people write it (rules/facts/units.yaml display), as card text writes it.
        "unit_text": catalog.units.text(panel.unit),
        "scale": panel.scale,
        "series": series,
        "thresholds": lines,
        "thresholds_not_drawn": undrawn,
    }


def _thresholds(
    thresholds: Sequence[ThresholdLine],
    unit: str,
    analyte: str | None,
    catalog: FactCatalog,
    named: Mapping[str, Fact],
) -> tuple[list[Payload], list[Payload]]:
    """The threshold lines in `unit`, and those of this request that have no value, with why."""
    lines, undrawn = [], []
    for threshold in thresholds:
        value = threshold.value
        if threshold.fact is not None:
            fact = named.get(threshold.fact)
            number = fact.value if fact is not None else None
            if (
                fact is None
                or isinstance(number, bool)
                or not isinstance(number, int | float)
                or not fact.unit
            ):
                why = fact.missing if fact is not None and fact.missing else "not computed for this request"
                undrawn.append({"label": threshold.label, "why": why})
                continue
            value = tidy(catalog.convert(float(number), fact.unit, unit, analyte=analyte))
        assert value is not None
        lines.append({"label": threshold.label, "value": value, "source": threshold.source})
    return lines, undrawn


def _dose(
    dose: DoseSeries, catalog: FactCatalog, facts: Facts, weight: Fact, named: Mapping[str, Fact]
) -> Payload:
    medications, units = catalog.medications, catalog.units
    drug = medications.classes[dose.medication]
    resolve = resolver(facts)
    steps: list[Payload] = []
    draft = next(
        (
            d
            for d in facts.draft_orders
            if d.resource_type == "MedicationRequest" and is_medication(d.raw, drug, medications, resolve)
        ),
        None,
    )
    notes = []
    gap = unavailable(facts.unavailable, medications.sources)
    if gap is None:
        draft_id = draft.id if draft else None
        for course in prior_courses(facts, drug, medications, units, resolve, weight, draft_id):
            steps.append(
                _step(course.start, course.end, course.dose, course.status, False, course.summary, course.why)
            )
    else:
        notes.append(f"Earlier orders are not shown: {gap}.")
    if draft is not None:
        order = normalised(facts, draft.raw, drug, medications, units, weight)
        start, end = order_period(draft.raw, units)
        # A draft without a start of its own starts when it is signed: now.
        stated = draft.raw.get("status")
        status = stated if isinstance(stated, str) else "draft"
        daily = order.values.get("daily_dose")
        why = order.why.get("daily_dose", "") if daily is None else ""
        steps.append(_step(start or facts.now, end, daily, status, True, order.summary, why))
    for step in steps:
        if step["dose"] is not None:
            step["dose"] = catalog.convert(step["dose"], quantities(drug.dose_unit)["daily_dose"], dose.unit)
    lines, undrawn = _thresholds(dose.thresholds, dose.unit, None, catalog, named)
    return {
        "title": dose.title,
        "label": drug.label,
        "unit": dose.unit,
        "unit_text": catalog.units.text(dose.unit),
        "steps": steps,
        "notes": notes,
        "thresholds": lines,
        "thresholds_not_drawn": undrawn,
    }


def _step(
    start: datetime | None,
    end: datetime | None,
    daily: float | None,
    status: str,
    draft: bool,
    summary: str,
    why: str,
) -> Payload:
    return {
        "start": iso(start) if start else None,
        "end": iso(end) if end else None,
        "dose": daily,
        "status": status,
        "draft": draft,
        "summary": summary,
        "why": why or None,
    }
