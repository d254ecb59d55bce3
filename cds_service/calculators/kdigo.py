"""Acute kidney injury from serum creatinine by the KDIGO 2012 definition and staging.

Urine output and renal replacement therapy are not considered: neither is reliably coded. The caller
passes samples in one unit and the limits in that same unit, so no value is converted here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from cds_service.calculators.growth import Sample

__all__ = ["Aki", "AkiLimits", "kdigo"]

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
