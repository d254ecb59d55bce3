"""A dated lab result as the calculators read it (ferritin trends, KDIGO acute kidney injury): pure data,
shared by the calculators of several topics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Sample"]


@dataclass(frozen=True)
class Sample:
    """One dated result. `censored` marks a value reported with a comparator (">40000"): only a bound."""

    time: datetime
    value: float
    censored: bool = False
    ref: str | None = None  # e.g. "Observation/123", so the card can cite its evidence
