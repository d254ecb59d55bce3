"""Lab and vital-sign facts per analyte: `<a>.latest`, `.worst`, `.count`, `.hours_since_latest`.

Every fact looks at the analyte's lookback window ending at Facts.now only (rules-logic.md, "Lookback").
Results are taken in the analyte's canonical unit; a result that cannot be used is never dropped
silently: results without a time (they cannot be placed in a window), without a number or with a unit
that does not convert are listed in the fact's `detail`, or in `missing` when nothing usable is left.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable
from datetime import datetime

from cds_service.facts import numbers
from cds_service.facts.knowledge import Analyte, Labs, duration_text, unavailable
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.facts.units import UnitError, Units, UnknownUnit, tidy

# A censored result bounds the true value from below (">40000") or above ("<5").
_LOWER = {">", ">="}
_UPPER = {"<", "<="}
_STRICT = {">", "<"}
_BOUNDS = _LOWER | _UPPER  # FHIR also has "ad" ("sufficient to achieve"), which is no bound
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", None: None}
_SHOWN_EXCLUSIONS = 2


@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    """One usable result in the window, in the analyte's canonical unit."""

    value: float
    comparator: str | None
    native_value: float
    native_unit: str
    time: datetime
    evidence: tuple[str, ...]
    detail: str | None = None


@dataclasses.dataclass
class Series:
    points: list[Point]  # newest first
    excluded: list[str]  # why results in the window were not used
    older: datetime | None = None  # the newest result before the window, if any


def lab_specs(labs: Labs) -> list[FactSpec]:
    specs = []
    for a in labs.analytes.values():
        window = f"in the last {a.window_text}"
        specs.append(FactSpec(f"{a.name}.latest", "quantity", a.unit, f"{a.label}: newest result {window}"))
        if a.worst is not None:
            which = "highest" if a.worst == "max" else "lowest"
            specs.append(
                FactSpec(
                    f"{a.name}.worst",
                    "quantity",
                    a.unit,
                    f"{a.label}: {which} result {window}; a censored result (>40000) counts as its bound",
                )
            )
        specs.append(
            FactSpec(f"{a.name}.count", "count", None, f"{a.label}: number of usable results {window}")
        )
        specs.append(
            FactSpec(
                f"{a.name}.hours_since_latest",
                "quantity",
                "h",
                f"{a.label}: hours from the newest result {window} to now",
            )
        )
    return specs


def lab_facts(labs: Labs, facts: Facts, units: Units) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    gap = unavailable(facts.unavailable, labs.sources)
    for analyte in labs.analytes.values():
        start = facts.now - analyte.window
        series = collect(analyte, facts, units, start)
        reason = _absent_reason(analyte, series, gap)
        if not series.points and analyte.derive is not None:
            derived = _derived(labs, analyte, facts, units, start)
            if derived.points:
                series = Series(derived.points, series.excluded, series.older)
            elif gap is None:
                reason += f", and {derived.excluded[0]}"
        countable = gap is None and not series.excluded
        out.update(_facts(analyte, series, facts.now, reason, countable))
    return out


def collect(analyte: Analyte, facts: Facts, units: Units, start: datetime) -> Series:
    """The analyte's usable results from `start` on, newest first, and why others were not used."""
    seen: set[int] = set()
    points: list[Point] = []
    excluded: list[str] = []
    older: datetime | None = None
    sources = 0
    conversions: dict[str, tuple[float, float] | str] = {}
    for code in analyte.codes:
        values = facts.labs.get(code)
        if not values:
            continue
        sources += 1
        for lab in values:
            # One Observation coded twice (LOINC and a local code) is filed under both codes.
            if id(lab.resource) in seen:
                continue
            seen.add(id(lab.resource))
            ref = f"Observation/{lab.id}"
            if lab.time is None:
                excluded.append(f"{ref} has no time")
                continue
            if lab.time < start:
                older = lab.time if older is None or lab.time > older else older
                continue
            if lab.value is None:
                excluded.append(f"{ref} has no numeric value")
                continue
            unusable = numbers.problem(lab.value)
            if unusable:
                excluded.append(f"the value {numbers.shown(lab.value)} of {ref} {unusable}")
                continue
            if lab.comparator is not None and lab.comparator not in _BOUNDS:
                excluded.append(f"{ref} has comparator '{lab.comparator}', which bounds nothing")
                continue
            native = units.ucum(lab.unit)
            if native is None:
                excluded.append(f"{ref} has no unit")
                continue
            # A series is mostly in one unit: convert each unit once per call, failures included.
            conversion = conversions.get(native)
            if conversion is None:
                conversion = conversions[native] = _conversion(analyte, native, units)
            if isinstance(conversion, str):
                excluded.append(f"{ref} is in {conversion}")
                continue
            scale, offset = conversion
            if scale == 1.0 and offset == 0.0:
                points.append(Point(lab.value, lab.comparator, lab.value, native, lab.time, (ref,)))
                continue  # the value is the reported one, already found usable above
            value = tidy(scale * lab.value + offset)
            unusable = numbers.problem(value)
            if unusable:
                shown = numbers.shown
                excluded.append(
                    f"{units.quantity(shown(lab.value), native)} of {ref} is {shown(value)} "
                    f"{units.text(analyte.unit)}, which {unusable}"
                )
                continue
            points.append(Point(value, lab.comparator, lab.value, native, lab.time, (ref,)))
    if sources > 1:
        points.sort(key=lambda p: p.time, reverse=True)
    return Series(points, excluded, older)


def _conversion(analyte: Analyte, native: str, units: Units) -> tuple[float, float] | str:
    """(scale, offset) from `native` to the analyte's unit, or what to say of a result in `native`."""
    try:
        return units.affine(native, analyte.unit, analyte.molar_mass, analyte.same_unit)
    except UnknownUnit:
        return units.text(native)
    except UnitError:
        return f"{units.text(native)}, which does not convert to {units.text(analyte.unit)}"


def _derived(labs: Labs, analyte: Analyte, facts: Facts, units: Units, start: datetime) -> Series:
    """Points of a derived analyte (ANC = WBC x neutrophil %) from results taken together."""
    rule = analyte.derive
    assert rule is not None
    first, second = labs.analytes[rule.first], labs.analytes[rule.second]
    pairing = f"no {first.label} with {second.label} within {duration_text(rule.within)} of each other"
    a = collect(first, facts, units, start).points
    b = [p for p in collect(second, facts, units, start).points if p.comparator is None]
    if not a or not b:
        return Series([], [pairing])
    factor = units.product_factor(first.unit, second.unit, analyte.unit)
    detail = f"derived from {first.label} x {second.label}"
    nearest = _nearest_in_time(b)
    points = []
    unusable = []
    for p in a:
        if p.comparator is not None:
            continue  # a censored count times a percentage bounds nothing useful
        q = nearest(p.time)
        if abs(q.time - p.time) > rule.within:
            continue
        value = tidy(p.value * q.value * factor)
        why = numbers.problem(value)
        if why:  # each factor was usable; their product need not be
            unusable.append(
                f"{' x '.join(p.evidence + q.evidence)} gives {numbers.shown(value)}, which {why}"
            )
            continue
        points.append(
            Point(value, None, value, analyte.unit, max(p.time, q.time), p.evidence + q.evidence, detail)
        )
    return Series(points, unusable if points or unusable else [pairing])


def _nearest_in_time(points: list[Point]) -> Callable[[datetime], Point]:
    """The point nearest in time to a given time, the first in `points` of equally near ones; found by
    bisection (log n), not by a pass over every point for every time asked about (n x m)."""
    order = sorted(range(len(points)), key=lambda index: points[index].time)  # equal times: list order
    times = [points[index].time for index in order]

    def nearest(time: datetime) -> Point:
        after = bisect.bisect_right(times, time)  # times[:after] <= time < times[after:]
        options = []
        if after < len(times):
            options.append((times[after] - time, order[after]))
        if after > 0:
            first_equal = bisect.bisect_left(times, times[after - 1])
            options.append((time - times[after - 1], order[first_equal]))
        return points[min(options)[1]]

    return nearest


def _facts(analyte: Analyte, series: Series, now: datetime, reason: str, countable: bool) -> dict[str, Fact]:
    name = analyte.name
    points = series.points
    suffixes = (
        ("latest", "worst", "hours_since_latest") if analyte.worst else ("latest", "hours_since_latest")
    )
    if not points:
        out = {f"{name}.{suffix}": missing(f"{name}.{suffix}", reason) for suffix in suffixes}
        # No results is a count of 0; results that could not be used (or could not be had) are not.
        # A count of 0 keeps the time of the newest result before the window, when there is one: card
        # text then says "none in the last 14 days (last on DATE)", never "not yet measured".
        count = (
            Fact(f"{name}.count", 0, detail=reason, time=series.older)
            if countable
            else missing(f"{name}.count", reason)
        )
        out[count.name] = count
        return out
    note = _exclusion_note(series.excluded)
    latest = points[0]
    out = {f"{name}.latest": point_fact(f"{name}.latest", analyte.unit, latest, latest.comparator, note)}
    if analyte.worst is not None:
        point, comparator, bound_note = worst(points, analyte.worst)
        out[f"{name}.worst"] = point_fact(f"{name}.worst", analyte.unit, point, comparator, bound_note, note)
    out[f"{name}.count"] = Fact(
        f"{name}.count",
        len(points),
        # Results that could not be used may be more: the count is then a lower bound.
        comparator=">=" if series.excluded else None,
        evidence=tuple(e for p in points for e in p.evidence),
        detail=note,
    )
    out[f"{name}.hours_since_latest"] = Fact(
        f"{name}.hours_since_latest",
        tidy((now - latest.time).total_seconds() / 3600),
        unit="h",
        time=latest.time,
        evidence=latest.evidence,
        detail=latest.detail,
    )
    return out


def point_fact(name: str, unit: str, point: Point, comparator: str | None, *notes: str | None) -> Fact:
    """A fact holding one result: its value in `unit`, as reported, when, and from which resource."""
    return Fact(
        name,
        point.value,
        unit=unit,
        native_value=point.native_value,
        native_unit=point.native_unit,
        comparator=comparator,
        time=point.time,
        evidence=point.evidence,
        detail="; ".join(x for x in (point.detail, *notes) if x) or None,
    )


def worst(points: list[Point], direction: str) -> tuple[Point, str | None, str | None]:
    """The highest (or lowest) of `points`: the point that decides it, the answer's comparator, and a
    note when a censored result makes the answer only a bound.

    Each result is an interval: exact x is [x, x], ">x" is (x, inf), "<x" is (-inf, x). The maximum lies
    between the largest lower end and the largest upper end. It is exact only when the two meet;
    otherwise it is reported as the lower end with ">=" (or ">"), so a rule can prove "at least 500" but
    never "below 50000" while a ">40000" may hide a higher value. Ties go to the newest result. The
    minimum is the mirror image (an upper bound "<=" or "<").
    """
    mirrored = direction == "min"
    sign = -1.0 if mirrored else 1.0
    lo_best, hi_best = -math.inf, -math.inf
    lo_points: list[Point] = []
    hi_point = points[0]
    for p in points:
        comparator = _FLIP[p.comparator] if mirrored else p.comparator
        x = sign * p.value
        lo = -math.inf if comparator in _UPPER else x
        hi = math.inf if comparator in _LOWER else x
        if lo > lo_best:
            lo_best, lo_points = lo, [p]
        elif lo == lo_best and lo_points:
            lo_points.append(p)
        # Among equal upper bounds "<=5" says more than "<5": the maximum may be 5 itself.
        if hi > hi_best or (hi == hi_best and hi_point.comparator in _STRICT and p.comparator not in _STRICT):
            hi_best, hi_point = hi, p
    if not lo_points:
        return hi_point, hi_point.comparator, None  # every result is a bound the other way ("<5")
    if hi_best == lo_best:
        return lo_points[0], None, None
    strict = [p for p in lo_points if p.comparator in _STRICT]
    chosen = strict[0] if strict else lo_points[0]
    comparator = (">" if strict else ">=") if not mirrored else ("<" if strict else "<=")
    note = None
    if chosen.comparator is None:
        # Usually a ">x" result opens the range; else an upper bound above it ("<6000" beside 5200): the
        # point that set the highest upper end.
        censored = next(
            (p for p in points if (_FLIP[p.comparator] if mirrored else p.comparator) in _LOWER), hi_point
        )
        side = "lower" if mirrored else "higher"
        note = f"bound: {_show(censored)} ({censored.evidence[0]}) may be {side}"
    return chosen, comparator, note


def _show(point: Point) -> str:
    return f"{point.comparator or ''}{point.native_value:g} {point.native_unit}"


def _absent_reason(analyte: Analyte, series: Series, gap: str | None) -> str:
    if gap is not None:
        return gap
    if series.excluded:
        shown = "; ".join(series.excluded[:_SHOWN_EXCLUSIONS])
        more = len(series.excluded) - _SHOWN_EXCLUSIONS
        return shown + (f" (and {more} more)" if more > 0 else "")
    reason = f"no {analyte.label} in the last {analyte.window_text}"
    if series.older is not None:
        reason += f" (last on {series.older:%Y-%m-%d})"
    return reason


def _exclusion_note(excluded: list[str]) -> str | None:
    if not excluded:
        return None
    more = f" (and {len(excluded) - 1} more)" if len(excluded) > 1 else ""
    return f"not used: {excluded[0]}{more}"
