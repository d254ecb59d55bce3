"""Every calculation a rule file can `provide`, by name. Add a calculation here to make it available."""

from __future__ import annotations

from cds_service.calculations.base import Calculation
from cds_service.calculations.exposure import Exposure, Neutrophils
from cds_service.calculations.ferritin import FERRITIN_RESPONSE, FERRITIN_TREND
from cds_service.calculations.hlh import Hlh
from cds_service.calculations.infusion import Infusion
from cds_service.calculations.kidney import AcuteKidneyInjury, Renal
from cds_service.calculations.therapy import Therapy

_ALL: tuple[Calculation, ...] = (
    # one entry per calculation module
    Renal(),
    Infusion(),
    AcuteKidneyInjury(),
    FERRITIN_TREND,
    FERRITIN_RESPONSE,
    Exposure(),
    Neutrophils(),
    Hlh(),
    Therapy(),
)

CALCULATIONS: dict[str, Calculation] = {calculation.name: calculation for calculation in _ALL}
