"""Every calculation a rule file can `provide`, by name. Add a calculation here to make it available."""

from __future__ import annotations

from cds_service.calculations.base import Calculation
from cds_service.calculations.infusion import Infusion

_ALL: tuple[Calculation, ...] = (
    # one entry per calculation module
    Infusion(),
)

CALCULATIONS: dict[str, Calculation] = {calculation.name: calculation for calculation in _ALL}
