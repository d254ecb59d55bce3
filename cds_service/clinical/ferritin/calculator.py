"""Rate of rise of a lab value (ferritin) between dated samples, as compound growth per day.

Ferritin rises multiplicatively, so a rise is expressed as the daily factor that, compounded, gives the
observed ratio: x2.56 over 48 h is 60 %/day, where a linear reading would say 78 %/day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from cds_service.clinical.sample import Sample

__all__ = ["Trend", "compound_daily_growth", "grows_at_least", "trend"]

_REL_TOL = 1e-9


def compound_daily_growth(v0: float, v1: float, hours: float) -> float:
    """The daily growth rate r with (1 + r) ** (hours / 24) == v1 / v0; 0.6 is 60 %/day."""
    _require_rate_inputs(v0, v1, hours)
    try:
        return float((v1 / v0) ** (24 / hours) - 1)
    except OverflowError:
        # A rise too steep for a float (x1e200 in 12 h): infinite, which the facts then refuse.
        return math.inf


def grows_at_least(v0: float, v1: float, hours: float, daily_rate: float) -> bool:
    """Whether v0 -> v1 over `hours` is a compound rise of at least `daily_rate` per day.

    Compares ratios rather than rates, with a 1e-9 relative tolerance, so that a rise exactly at the
    threshold (x1.6 in 24 h against 60 %/day) passes despite floating point.
    """
    _require_rate_inputs(v0, v1, hours)
    ratio = v1 / v0
    try:
        needed = (1 + daily_rate) ** (hours / 24)
    except OverflowError:
        needed = math.inf
    return ratio >= needed or math.isclose(ratio, needed, rel_tol=_REL_TOL)


@dataclass(frozen=True)
class Trend:
    """The rise from the earliest to the latest sample, and every step in between.

    status: "rate" (daily_growth is set); "none" (no sample); "single" (first and last are that sample);
    "too-close" (earliest and latest less than the minimum spacing apart, so noise would dominate);
    "censored" (an endpoint is only a bound, so no rate can be claimed).
    """

    status: Literal["rate", "none", "single", "too-close", "censored"]
    first: Sample | None
    last: Sample | None
    hours: float | None
    daily_growth: float | None
    # Consecutive pairs in time order with their compound daily growth; None where the pair has a
    # censored value or is closer than the minimum spacing. A fall here never cancels the endpoint rate.
    steps: tuple[tuple[Sample, Sample, float | None], ...]


def trend(samples: Sequence[Sample], min_spacing_hours: float) -> Trend:
    """The endpoint trend of `samples` (already limited to the window by the caller; any order).

    Raises ValueError for a non-positive value: a growth rate from or to zero has no meaning, and the
    caller should have dropped such a result as unusable.
    """
    for sample in samples:
        if not sample.value > 0:
            raise ValueError(f"sample values must be positive, not {sample.value} ({sample.ref})")
    ordered = sorted(samples, key=lambda sample: sample.time)
    if not ordered:
        return Trend("none", None, None, None, None, ())
    if len(ordered) == 1:
        return Trend("single", ordered[0], ordered[0], None, None, ())
    first, last = ordered[0], ordered[-1]
    steps = tuple(
        (earlier, later, _step_growth(earlier, later, min_spacing_hours))
        for earlier, later in pairwise(ordered)
    )
    hours = _hours(first, last)
    if not _spaced(hours, min_spacing_hours):
        return Trend("too-close", first, last, hours, None, steps)
    if first.censored or last.censored:
        return Trend("censored", first, last, hours, None, steps)
    return Trend("rate", first, last, hours, compound_daily_growth(first.value, last.value, hours), steps)


def _step_growth(earlier: Sample, later: Sample, min_spacing_hours: float) -> float | None:
    hours = _hours(earlier, later)
    if earlier.censored or later.censored or not _spaced(hours, min_spacing_hours):
        return None
    return compound_daily_growth(earlier.value, later.value, hours)


def _spaced(hours: float, min_spacing_hours: float) -> bool:
    # Two results at one instant never give a rate, whatever the configured spacing.
    return hours > 0 and hours >= min_spacing_hours


def _hours(earlier: Sample, later: Sample) -> float:
    return (later.time - earlier.time).total_seconds() / 3600


def _require_rate_inputs(v0: float, v1: float, hours: float) -> None:
    if not v0 > 0 or not v1 > 0:
        raise ValueError(f"values must be positive, not {v0} and {v1}")
    if not hours > 0:
        raise ValueError(f"hours must be positive, not {hours}")
