"""Kidney function from serum creatinine: creatinine clearance by Cockcroft-Gault, the estimate drug labels
base renal dose adjustment on, and acute kidney injury by the KDIGO 2012 definition and staging.

For AKI, urine output and renal replacement therapy are not considered: neither is reliably coded. The
caller passes samples in one unit and the limits in that same unit, so no value is converted here.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cds_service.clinical.sample import Sample

__all__ = [
    "Aki",
    "AkiLimits",
    "DomainError",
    "adjusted_weight",
    "cockcroft_gault",
    "cockcroft_gault_any_sex",
    "creatinine_at_clearance",
    "ideal_weight",
    "judge",
    "kdigo",
    "lowest_earlier",
]


class DomainError(ValueError):
    """An input outside an equation's domain: `input` names which (creatinine, weight, clearance, age,
    height) and `value` is the value as the message shows it, so a caller can word it its own way."""

    def __init__(self, input: str, value: str, message: str) -> None:
        super().__init__(message)
        self.input = input
        self.value = value


# Cockcroft and Gault's published constants are the equation itself, not a clinical threshold.
_FEMALE_FACTOR = 0.85


def cockcroft_gault(age_years: float, weight_kg: float, creatinine_mg_dl: float, female: bool) -> float:
    """CrCl in mL/min = (140 - age) * weight / (72 * SCr), times 0.85 for women.

    Not rounded: callers compare with a threshold first and round only for display.
    """
    if not creatinine_mg_dl > 0:
        raise DomainError(
            "creatinine", f"{creatinine_mg_dl}", f"creatinine must be positive, not {creatinine_mg_dl}"
        )
    if not weight_kg > 0:
        raise DomainError("weight", f"{weight_kg}", f"weight must be positive, not {weight_kg}")
    clearance = (140 - age_years) * weight_kg / (72 * creatinine_mg_dl)
    return clearance * _FEMALE_FACTOR if female else clearance


def creatinine_at_clearance(
    age_years: float, weight_kg: float, clearance_ml_min: float, female: bool
) -> float:
    """The serum creatinine in mg/dL at which Cockcroft-Gault gives `clearance_ml_min`: the equation solved
    for SCr, so a chart can draw a clearance threshold on the creatinine axis for this patient."""
    if not clearance_ml_min > 0:
        raise DomainError(
            "clearance", f"{clearance_ml_min}", f"clearance must be positive, not {clearance_ml_min}"
        )
    if not weight_kg > 0:
        raise DomainError("weight", f"{weight_kg}", f"weight must be positive, not {weight_kg}")
    if not age_years < 140:
        raise DomainError("age", f"{age_years}", f"the equation gives no clearance at age {age_years}")
    creatinine = (140 - age_years) * weight_kg / (72 * clearance_ml_min)
    return creatinine * _FEMALE_FACTOR if female else creatinine


def cockcroft_gault_any_sex(age_years: float, weight_kg: float, creatinine_mg_dl: float, sex: str) -> float:
    """Cockcroft-Gault for a FHIR `Patient.gender`.

    The equation knows only two sexes. For "other" and "unknown" we take the lower of the two estimates
    (a project choice): underestimating clearance errs towards the renal warning, not away from it.
    """
    if sex == "female" or sex == "male":
        return cockcroft_gault(age_years, weight_kg, creatinine_mg_dl, female=sex == "female")
    if sex == "other" or sex == "unknown":
        return min(
            cockcroft_gault(age_years, weight_kg, creatinine_mg_dl, female=True),
            cockcroft_gault(age_years, weight_kg, creatinine_mg_dl, female=False),
        )
    raise ValueError(f"unknown sex {sex!r}; expected female, male, other or unknown")


def ideal_weight(height: float, base_weight: float, per_height: float, base_height: float) -> float:
    """Devine's ideal body weight: `base_weight` at `base_height`, plus `per_height` for each unit of height
    above it (Devine 1974: 50 kg for men, 45.5 kg for women, at 5 ft, plus 2.3 kg per inch). The caller
    passes the constants in one unit system; below `base_height` the line is extrapolated.
    """
    weight = base_weight + per_height * (height - base_height)
    if not weight > 0:
        raise DomainError(
            "height", f"{height:g}", f"a height of {height:g} gives no positive ideal body weight"
        )
    return weight


def adjusted_weight(actual: float, ideal: float, factor: float) -> float:
    """Adjusted body weight: the ideal weight plus `factor` times the excess of the actual weight over it."""
    return ideal + factor * (actual - ideal)


# --- acute kidney injury (KDIGO 2012) --------------------------------------------------------------

_REL_TOL = 1e-9


@dataclass(frozen=True)
class AkiLimits:
    absolute_rise: float  # in the samples' unit
    absolute_window_hours: float
    ratio: float  # value / baseline that is AKI
    baseline_window_hours: float
    stage2_ratio: float
    stage3_ratio: float
    stage3_value: float  # in the samples' unit; a value this high with AKI present is stage 3


@dataclass(frozen=True)
class Aki:
    """The AKI finding: `value` against `reference`, the lowest earlier value in the criterion's window."""

    stage: int
    criterion: Literal["absolute", "ratio"]
    value: Sample
    reference: Sample
    hours: float  # from reference to value
    ratio: float  # value / reference
    rise: float  # value - reference


def kdigo(samples: Sequence[Sample], limits: AkiLimits) -> Aki | None:
    """The highest-stage AKI the samples show (the latest on a tie), or None.

    Each sample is judged against the lowest earlier sample within each window: a rise of at least
    `absolute_rise` within `absolute_window_hours`, or a ratio of at least `ratio` to the baseline within
    `baseline_window_hours`. Censored samples are skipped: a bound is neither a rise nor a baseline.
    Raises ValueError for a non-positive value, which has no ratio; the caller drops such results.
    Linear after sorting: the lowest earlier sample of each window comes from one sliding-window pass.
    """
    for sample in samples:
        if not sample.censored and not sample.value > 0:
            raise ValueError(f"sample values must be positive, not {sample.value} ({sample.ref})")
    usable = sorted((sample for sample in samples if not sample.censored), key=lambda sample: sample.time)
    baselines = lowest_earlier(usable, _within(limits.baseline_window_hours))
    recents = lowest_earlier(usable, _within(limits.absolute_window_hours))
    worst: Aki | None = None
    for sample, baseline, recent in zip(usable, baselines, recents, strict=True):
        finding = _finding(
            sample,
            None if baseline is None else usable[baseline],
            None if recent is None else usable[recent],
            limits,
        )
        if finding is not None and (worst is None or finding.stage >= worst.stage):
            worst = finding
    return worst


def judge(
    samples: Sequence[Sample], limits: AkiLimits, judged_from: datetime, reach_hours: float
) -> tuple[Aki | None, bool]:
    """The worst AKI shown by a sample taken on or after `judged_from`, each judged against the samples
    before it within `reach_hours`; and whether any such sample had an earlier one within reach.

    kdigo() judges every sample it is given, so a rise found only among older samples would be reported
    as current. Here each judged sample is paired with each earlier sample in reach, the pair judged as
    kdigo judges it, and the worst pair kept: highest stage, then the newest sample, then the ratio
    criterion, the largest ratio, and the earliest of equal references (the longest span); on a full tie
    the first in `samples` order. Only two pairs per sample can be the worst (the lowest sample in the
    baseline window and the lowest in the absolute window: a lower reference never gives a lower stage
    or ratio), so only those are judged, found by one sliding-window pass: linear after sorting.
    Raises ValueError for a censored or non-positive sample: the caller passes usable results only.
    """
    for sample in samples:
        if sample.censored or not sample.value > 0:
            raise ValueError(f"judge() takes exact, positive values, not {sample.value} ({sample.ref})")
    # Sorted by time, then by position: among equal values and times the first in `samples` order wins.
    order = sorted(range(len(samples)), key=lambda index: samples[index].time)
    ordered = [samples[index] for index in order]

    def reachable(window_hours: float) -> Callable[[Sample, Sample], bool]:
        inside = _within(window_hours)
        return lambda earlier, sample: inside(earlier, sample) and _hours(earlier, sample) <= reach_hours

    baselines = lowest_earlier(ordered, reachable(limits.baseline_window_hours))
    recents = lowest_earlier(ordered, reachable(limits.absolute_window_hours))
    worst: dict[int, tuple[Aki, int]] = {}  # by the judged sample's position: its worst pair, the reference's
    compared = False
    previous: Sample | None = None  # the latest sample strictly before the current one
    for index, sample in enumerate(ordered):
        if index and ordered[index - 1].time < sample.time:
            previous = ordered[index - 1]
        if sample.time < judged_from or previous is None or not _hours(previous, sample) <= reach_hours:
            continue
        compared = True
        best: tuple[Aki, int] | None = None
        for reference in (baselines[index], recents[index]):
            if reference is None:
                continue
            finding = kdigo([ordered[reference], sample], limits)
            if finding is None:
                continue
            candidate = (finding, order[reference])
            if (
                best is None
                or _rank(finding) > _rank(best[0])
                or (_rank(finding) == _rank(best[0]) and candidate[1] < best[1])
            ):
                best = candidate
        if best is not None:
            worst[order[index]] = best
    found: Aki | None = None
    for index in sorted(worst):
        finding = worst[index][0]
        if found is None or _rank(finding) > _rank(found):
            found = finding
    return found, compared


def lowest_earlier(ordered: Sequence[Sample], within: Callable[[Sample, Sample], bool]) -> list[int | None]:
    """For each sample of `ordered` (sorted by time), the index in `ordered` of the lowest sample strictly
    earlier than it that `within(earlier, sample)` admits; the earliest of equal values, the first in
    `ordered` on equal times; None when there is none.

    `within` must describe a window that ends at the sample and whose start only moves forward: if it
    admits an earlier sample, it admits every sample between that one and the judged one, and a sample
    it no longer admits is not admitted for later samples either. One pass with a queue of candidates
    whose values rise from front to back (a sliding-window minimum): each sample enters and leaves the
    queue once, so the work is linear in the number of samples.
    """
    lowest: list[int | None] = []
    queue: deque[int] = deque()
    entered = 0
    for sample in ordered:
        while entered < len(ordered) and ordered[entered].time < sample.time:
            value = ordered[entered].value
            # A later sample at least as low makes an earlier, higher one useless for every later window.
            while queue and ordered[queue[-1]].value > value:
                queue.pop()
            queue.append(entered)
            entered += 1
        while queue and not within(ordered[queue[0]], sample):
            queue.popleft()
        lowest.append(queue[0] if queue else None)
    return lowest


def _within(window_hours: float) -> Callable[[Sample, Sample], bool]:
    window = timedelta(hours=window_hours)
    return lambda earlier, sample: sample.time - window <= earlier.time


def _hours(earlier: Sample, sample: Sample) -> float:
    return (sample.time - earlier.time).total_seconds() / 3600


def _finding(sample: Sample, baseline: Sample | None, recent: Sample | None, limits: AkiLimits) -> Aki | None:
    # Staging reads the ratio to the baseline, so when the ratio criterion holds it is the one reported.
    if baseline is not None and _at_least(sample.value / baseline.value, limits.ratio):
        return _aki(sample, baseline, "ratio", limits)
    if recent is not None and _at_least(sample.value - recent.value, limits.absolute_rise):
        return _aki(sample, recent, "absolute", limits)
    return None


def _aki(
    sample: Sample, reference: Sample, criterion: Literal["absolute", "ratio"], limits: AkiLimits
) -> Aki:
    ratio = sample.value / reference.value
    if _at_least(ratio, limits.stage3_ratio) or _at_least(sample.value, limits.stage3_value):
        stage = 3
    elif _at_least(ratio, limits.stage2_ratio):
        stage = 2
    else:
        stage = 1
    hours = (sample.time - reference.time).total_seconds() / 3600
    return Aki(stage, criterion, sample, reference, hours, ratio, sample.value - reference.value)


def _rank(finding: Aki) -> tuple[int, datetime, bool, float, float]:
    return (
        finding.stage,
        finding.value.time,
        finding.criterion == "ratio",
        finding.ratio,
        -finding.reference.time.timestamp(),
    )


def _at_least(value: float, limit: float) -> bool:
    # Differences of decimals are inexact: 1.2 - 0.9 is 0.29999999999999993, which must meet 0.3.
    return value >= limit or math.isclose(value, limit, rel_tol=_REL_TOL)
