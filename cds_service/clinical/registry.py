"""Every calculation a rule file can `provide`, by name. Add a calculation here to make it available."""

from __future__ import annotations

from cds_service.clinical.base import Calculation
from cds_service.clinical.exposure.facts import Exposure, Neutrophils
from cds_service.clinical.ferritin.facts import FERRITIN_RESPONSE, FERRITIN_TREND
from cds_service.clinical.hlh2004.facts import Hlh
from cds_service.clinical.infusion.facts import Infusion
from cds_service.clinical.renal.facts import AcuteKidneyInjury, Renal
from cds_service.clinical.therapy.facts import Therapy

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
