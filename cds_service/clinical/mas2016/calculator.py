"""2016 EULAR/ACR/PRINTO classification of macrophage activation syndrome, in three-valued logic.

The per-item comparisons (platelets, AST, triglycerides, fibrinogen, ferritin, fever) are the caller's,
made with `tristate.compare` against the rule file's thresholds; this module only combines them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cds_service.clinical.tristate import Tri, all_of, at_least

__all__ = ["MasResult", "classify"]


@dataclass(frozen=True)
class MasResult:
    status: Tri  # MET: classified as MAS
    ferritin: Tri
    fever: Tri
    items: tuple[tuple[str, Tri], ...]
    met_items: int


def classify(fever: Tri, ferritin: Tri, items: Sequence[tuple[str, Tri]], required_items: int) -> MasResult:
    """A febrile patient with raised ferritin and at least `required_items` of the laboratory items.

    Each of the three parts can rule the classification out on its own, so one NOT_MET gives NOT_MET
    even while other data are missing.
    """
    results = [result for _, result in items]
    status = all_of(fever, ferritin, at_least(required_items, results))
    return MasResult(status, ferritin, fever, tuple(items), sum(result is Tri.MET for result in results))
