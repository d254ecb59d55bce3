"""HScore (Fardet et al. 2014) for reactive haemophagocytic syndrome, with unmeasured items as a range.

A missing item is not scored as normal: the score is reported as [low, high], where low counts every
unknown item at its fewest points and high at its most, so the true score lies in the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

__all__ = ["HScore", "HScoreInputs", "HScoreTable", "hscore", "probability"]


@dataclass(frozen=True)
class HScoreTable:
    """The published point table; the caller builds it from rule-file parameters.

    A two-cut-off variable scores points[0] below the first cut-off, points[1] from the first to the second
    inclusive, and points[2] above the second, which is how Fardet's "38.4-39.4" and "2000-6000" read.
    """

    immunosuppression: int
    temperature: tuple[float, float]  # Cel
    temperature_points: tuple[int, int, int]
    organomegaly_points: tuple[int, int, int]  # neither, liver or spleen, both
    cytopenia_limits: tuple[float, float, float]  # inclusive maxima: Hb g/dL, WBC 10*9/L, platelets 10*9/L
    cytopenia_points: tuple[int, int, int, int]  # 0, 1, 2, 3 lineages
    ferritin: tuple[float, float]  # ng/mL
    ferritin_points: tuple[int, int, int]
    triglycerides: tuple[float, float]  # mmol/L
    triglycerides_points: tuple[int, int, int]
    fibrinogen: float  # g/L, inclusive maximum
    fibrinogen_points: int
    ast: float  # U/L, inclusive minimum
    ast_points: int
    hemophagocytosis: int
    # (score, percent) rows, ascending. Between rows the percentage is interpolated; outside them it is
    # only bounded ("<1 %" below the first row, ">99 %" above the last).
    probability: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class HScoreInputs:
    """The patient's values, in the table's units; None where not measured or not recorded."""

    immunosuppression: bool | None = None
    temperature: float | None = None  # Cel
    hepatomegaly: bool | None = None
    splenomegaly: bool | None = None
    hemoglobin: float | None = None  # g/dL
    wbc: float | None = None  # 10*9/L
    platelets: float | None = None  # 10*9/L
    ferritin: float | None = None  # ng/mL
    triglycerides: float | None = None  # mmol/L
    fibrinogen: float | None = None  # g/L
    ast: float | None = None  # U/L
    hemophagocytosis: bool | None = None


@dataclass(frozen=True)
class HScore:
    low: int
    high: int
    items: tuple[tuple[str, int, int], ...]  # (item, fewest points, most points), in table order
    unknown: tuple[str, ...]  # the items whose points the data leave open (fewest < most)


def hscore(inputs: HScoreInputs, table: HScoreTable) -> HScore:
    """The score range; low == high when every item that matters is known."""
    items = (
        ("immunosuppression", *_flag(inputs.immunosuppression, table.immunosuppression)),
        ("temperature", *_banded(inputs.temperature, table.temperature, table.temperature_points)),
        ("organomegaly", *_counted([inputs.hepatomegaly, inputs.splenomegaly], table.organomegaly_points)),
        ("cytopenias", *_counted(_cytopenias(inputs, table), table.cytopenia_points)),
        ("ferritin", *_banded(inputs.ferritin, table.ferritin, table.ferritin_points)),
        ("triglycerides", *_banded(inputs.triglycerides, table.triglycerides, table.triglycerides_points)),
        ("fibrinogen", *_flag(_at_most(inputs.fibrinogen, table.fibrinogen), table.fibrinogen_points)),
        ("ast", *_flag(_at_least(inputs.ast, table.ast), table.ast_points)),
        ("hemophagocytosis", *_flag(inputs.hemophagocytosis, table.hemophagocytosis)),
    )
    return HScore(
        low=sum(low for _, low, _ in items),
        high=sum(high for _, _, high in items),
        items=items,
        unknown=tuple(name for name, low, high in items if low < high),
    )


def probability(score: float, table: HScoreTable) -> str:
    """The published probability of haemophagocytic syndrome, e.g. "54 %", "<1 %", ">99 %".

    Linear between the table's rows and rounded half up to a whole percent: the table itself is in whole
    percents, and a decimal would claim a precision the interpolation does not have.
    """
    rows = table.probability
    if not rows:
        raise ValueError("the probability table has no rows")
    (first_score, first_percent), (last_score, last_percent) = rows[0], rows[-1]
    if score < first_score:
        return f"<{first_percent:g} %"
    if score > last_score:
        return f">{last_percent:g} %"
    for (score0, percent0), (score1, percent1) in pairwise(rows):
        if score0 <= score <= score1:
            if score1 == score0:
                return f"{_percent(percent1)} %"
            fraction = (score - score0) / (score1 - score0)
            return f"{_percent(percent0 + fraction * (percent1 - percent0))} %"
    return f"{_percent(first_percent)} %"  # a single row, and score is exactly on it


def _flag(present: bool | None, points: int) -> tuple[int, int]:
    if present is None:
        return min(0, points), max(0, points)
    return (points, points) if present else (0, 0)


def _banded(
    value: float | None, cutoffs: tuple[float, float], points: tuple[int, int, int]
) -> tuple[int, int]:
    if value is None:
        return min(points), max(points)
    if value < cutoffs[0]:
        band = 0
    elif value <= cutoffs[1]:
        band = 1
    else:
        band = 2
    return points[band], points[band]


def _counted(findings: list[bool | None], points: tuple[int, ...]) -> tuple[int, int]:
    """Points for how many findings are present; the unknown ones could be any number between."""
    present = sum(finding is True for finding in findings)
    unknown = sum(finding is None for finding in findings)
    possible = [points[count] for count in range(present, present + unknown + 1)]
    return min(possible), max(possible)


def _cytopenias(inputs: HScoreInputs, table: HScoreTable) -> list[bool | None]:
    hemoglobin, wbc, platelets = table.cytopenia_limits
    return [
        _at_most(inputs.hemoglobin, hemoglobin),
        _at_most(inputs.wbc, wbc),
        _at_most(inputs.platelets, platelets),
    ]


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def _percent(value: float) -> str:
    # int(x + 0.5) rounds half up for the non-negative percentages here; round() would round 2.5 to 2.
    return str(int(value + 0.5))
