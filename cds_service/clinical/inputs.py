"""The lab inputs of the HLH calculations (the HLH-2004 criteria, the HScore, the 2016 MAS classification):
which analytes of rules/facts/analytes.yaml they read, as the providing rule file names them (one
`<input>_analyte` parameter each), so that renaming an analyte needs no change in code."""

from __future__ import annotations

import dataclasses

from cds_service.clinical.base import Params
from cds_service.facts.knowledge import Analyte

__all__ = ["HlhLabs", "count", "worst"]


@dataclasses.dataclass(frozen=True)
class HlhLabs:
    """One analyte per input; the rule file's parameter for `platelets` is `platelets_analyte`."""

    temperature: Analyte
    hemoglobin: Analyte
    platelets: Analyte
    anc: Analyte
    wbc: Analyte
    triglycerides: Analyte
    fibrinogen: Analyte
    ferritin: Analyte
    scd25: Analyte
    ast: Analyte

    @classmethod
    def configure(cls, params: Params) -> HlhLabs:
        return cls(
            **{field.name: params.analyte(f"{field.name}_analyte") for field in dataclasses.fields(cls)}
        )


def worst(analyte: Analyte) -> str:
    """The name of the analyte's worst-result fact in its window."""
    return f"{analyte.name}.worst"


def count(analyte: Analyte) -> str:
    """The name of the analyte's result-count fact."""
    return f"{analyte.name}.count"
