"""Aggregation of the HLH-2004 criteria ("5 of 8") over tri-state results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from cds_service.clinical.tristate import Tri

__all__ = ["Status", "counts", "hlh_status"]

Status = Literal["fulfilled", "indeterminate", "cannot_fulfil"]


def counts(results: Sequence[Tri]) -> tuple[int, int, int]:
    """(met, unknown, not_met): the three numbers the card states."""
    met = sum(result is Tri.MET for result in results)
    unknown = sum(result is Tri.UNKNOWN for result in results)
    return met, unknown, len(results) - met - unknown


def hlh_status(results: Sequence[Tri], required: int) -> Status:
    """ "indeterminate" while the unmeasured criteria could still decide either way."""
    met, unknown, _ = counts(results)
    if met >= required:
        return "fulfilled"
    if met + unknown < required:
        return "cannot_fulfil"
    return "indeterminate"
