"""What a number must be to enter the facts: one policy for every value read from the EHR.

A result, a dose, a rate, a strength or a duration is used only when it is finite and, unless it is
zero, of a magnitude from SMALLEST to LARGEST, both as reported and once converted to the unit the
service computes in. Anything else is not used, and whatever needed it says why ("could not evaluate").

The range is representational, not clinical: it is many orders of magnitude wider than any measurement
or order in any unit the service reads (a platelet count in /L is about 1e11 to 1e12; a ferritin in
mol/L is about 1e-10), and narrow enough that any product or ratio of two such values (at most 1e30, at
least 1e-30) and the powers a growth rate raises them to stay finite and non-zero. Without it a value of
5e-324 mg/L converts to 0.0 and is then divided by, and a ratio of 1e308 overflows when compounded.
Plausible ranges per analyte, where a rule needs one, are clinical and belong in rules/.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import MutableMapping

from cds_service.facts.named import Fact, missing

LARGEST = 1e15
SMALLEST = 1e-15


def problem(value: float) -> str | None:
    """Why `value` cannot enter the facts ("is not a finite number"), or None when it can."""
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        finite = False
    if not finite:
        return "is not a finite number"
    if value != 0 and not SMALLEST <= abs(value) <= LARGEST:
        return f"is outside the magnitudes the service computes with ({SMALLEST:g} to {LARGEST:g}, or 0)"
    return None


def usable(value: float) -> bool:
    return problem(value) is None


def shown(value: float) -> str:
    """`value` as an explanation quotes it: short even when it is 5e-324 or 1.7976931348623157e308."""
    try:
        return f"{value:.6g}"
    except OverflowError:
        return f"{str(value)[:8]}... ({len(str(value))} digits)"


def finite_facts(named: MutableMapping[str, Fact]) -> None:
    """The last guard, after every calculation: a fact whose number is not finite (a growth rate that
    overflowed) could not be evaluated; rules never compare it and cards never print it."""
    for name, fact in named.items():
        value = fact.value
        if isinstance(value, float) and not math.isfinite(value):
            named[name] = dataclasses.replace(
                missing(name, f"the computed value {shown(value)} is not a finite number", fact.evidence),
                detail=fact.detail,
            )
