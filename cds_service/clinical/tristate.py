"""Three-valued (Kleene) logic, so that missing data stays UNKNOWN instead of silently counting as NOT_MET."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence

__all__ = ["Tri", "all_of", "any_of", "at_least", "compare"]


class Tri(enum.Enum):
    MET = "met"
    NOT_MET = "not-met"
    UNKNOWN = "unknown"


def any_of(*values: Tri) -> Tri:
    """Kleene OR: one MET decides, and only a full set of NOT_MET rules it out (so `any_of()` is NOT_MET)."""
    if Tri.MET in values:
        return Tri.MET
    if Tri.UNKNOWN in values:
        return Tri.UNKNOWN
    return Tri.NOT_MET


def all_of(*values: Tri) -> Tri:
    """Kleene AND: one NOT_MET decides, and only a full set of MET proves it (so `all_of()` is MET)."""
    if Tri.NOT_MET in values:
        return Tri.NOT_MET
    if Tri.UNKNOWN in values:
        return Tri.UNKNOWN
    return Tri.MET


def at_least(n: int, values: Sequence[Tri]) -> Tri:
    """At least n of these: MET once n are MET; NOT_MET once even every UNKNOWN turning MET falls short."""
    met = sum(value is Tri.MET for value in values)
    unknown = sum(value is Tri.UNKNOWN for value in values)
    if met >= n:
        return Tri.MET
    if met + unknown < n:
        return Tri.NOT_MET
    return Tri.UNKNOWN


# A bound is (number, inclusive); None is unbounded on that side.
_Bound = tuple[float, bool] | None

_OPERATORS = (">", ">=", "<", "<=")
_NEGATION = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}


def compare(value: float | None, op: str, threshold: float, comparator: str | None = None) -> Tri:
    """`value op threshold`, where `comparator` (FHIR `Quantity.comparator`) says `value` only bounds the truth.

    A censored result such as ferritin ">40000" is the interval (40000, inf). The test is MET when every
    value in that interval passes, NOT_MET when none does, and UNKNOWN when the interval straddles the
    threshold. Comparison is exact: callers compare in the result's own unit, so no tolerance is needed.
    A missing or NaN value is UNKNOWN.
    """
    if op not in _OPERATORS:
        raise ValueError(f"unknown operator {op!r}; expected one of {', '.join(_OPERATORS)}")
    if comparator is not None and comparator not in _OPERATORS:
        # FHIR's "ad" ("sufficient to achieve") is not a numeric bound; the caller decides what it means.
        raise ValueError(f"unknown comparator {comparator!r}; expected one of {', '.join(_OPERATORS)}")
    if value is None or math.isnan(value):
        return Tri.UNKNOWN
    lower, upper = _interval(value, comparator)
    if _entirely(op, threshold, lower, upper):
        return Tri.MET
    if _entirely(_NEGATION[op], threshold, lower, upper):
        return Tri.NOT_MET
    return Tri.UNKNOWN


def _interval(value: float, comparator: str | None) -> tuple[_Bound, _Bound]:
    """The set of true values a reported value with this comparator allows."""
    if comparator is None:
        return (value, True), (value, True)
    inclusive = comparator.endswith("=")
    if comparator.startswith(">"):
        return (value, inclusive), None
    return None, (value, inclusive)


def _entirely(op: str, threshold: float, lower: _Bound, upper: _Bound) -> bool:
    """Whether every value between `lower` and `upper` satisfies `x op threshold`."""
    inclusive_test = op.endswith("=")
    bound = lower if op.startswith(">") else upper
    if bound is None:
        return False
    number, inclusive_bound = bound
    if number == threshold:
        # The only value at the threshold is the bound itself: it passes an inclusive test, and an open
        # bound never reaches it.
        return inclusive_test or not inclusive_bound
    return number > threshold if op.startswith(">") else number < threshold
