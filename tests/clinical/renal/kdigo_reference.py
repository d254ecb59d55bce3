"""The quadratic KDIGO judgement as it was before the sliding-window version (cds_service/clinical/renal/
calculator.py), kept verbatim as the reference the property tests compare with: every sample against
every earlier one. Not used by the service."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from cds_service.clinical.renal.calculator import Aki, AkiLimits
from cds_service.clinical.sample import Sample

_REL_TOL = 1e-9


def reference_kdigo(samples: Sequence[Sample], limits: AkiLimits) -> Aki | None:
    """The highest-stage AKI the samples show (the latest on a tie), or None.

    Each sample is judged against the lowest earlier sample within each window: a rise of at least
    `absolute_rise` within `absolute_window_hours`, or a ratio of at least `ratio` to the baseline within
    `baseline_window_hours`. Censored samples are skipped: a bound is neither a rise nor a baseline.
    Raises ValueError for a non-positive value, which has no ratio; the caller drops such results.
    """
    for sample in samples:
        if not sample.censored and not sample.value > 0:
            raise ValueError(f"sample values must be positive, not {sample.value} ({sample.ref})")
    usable = sorted((sample for sample in samples if not sample.censored), key=lambda sample: sample.time)
    worst: Aki | None = None
    for index, sample in enumerate(usable):
        finding = _finding(sample, usable[:index], limits)
        if finding is not None and (worst is None or finding.stage >= worst.stage):
            worst = finding
    return worst


def _finding(sample: Sample, earlier: Sequence[Sample], limits: AkiLimits) -> Aki | None:
    # Staging reads the ratio to the baseline, so when the ratio criterion holds it is the one reported.
    baseline = _lowest(sample, earlier, limits.baseline_window_hours)
    if baseline is not None and _at_least(sample.value / baseline.value, limits.ratio):
        return _aki(sample, baseline, "ratio", limits)
    recent = _lowest(sample, earlier, limits.absolute_window_hours)
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


def _lowest(sample: Sample, earlier: Sequence[Sample], window_hours: float) -> Sample | None:
    """The lowest sample in [t - window, t); the earliest of equal values, for the longest reported span."""
    start = sample.time - timedelta(hours=window_hours)
    # Samples at the same instant as `sample` are not earlier: a duplicate result is not a baseline.
    candidates = [other for other in earlier if start <= other.time < sample.time]
    return min(candidates, key=lambda other: other.value, default=None)


def _at_least(value: float, limit: float) -> bool:
    # Differences of decimals are inexact: 1.2 - 0.9 is 0.29999999999999993, which must meet 0.3.
    return value >= limit or math.isclose(value, limit, rel_tol=_REL_TOL)


def reference_judge(
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
            finding = reference_kdigo([earlier, sample], limits)
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
