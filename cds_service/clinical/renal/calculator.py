"""Creatinine clearance by Cockcroft-Gault, the estimate drug labels base renal dose adjustment on."""

from __future__ import annotations

__all__ = [
    "adjusted_weight",
    "cockcroft_gault",
    "cockcroft_gault_any_sex",
    "creatinine_at_clearance",
    "ideal_weight",
]

# Cockcroft and Gault's published constants are the equation itself, not a clinical threshold.
_FEMALE_FACTOR = 0.85


def cockcroft_gault(age_years: float, weight_kg: float, creatinine_mg_dl: float, female: bool) -> float:
    """CrCl in mL/min = (140 - age) * weight / (72 * SCr), times 0.85 for women.

    Not rounded: callers compare with a threshold first and round only for display.
    """
    if not creatinine_mg_dl > 0:
        raise ValueError(f"creatinine must be positive, not {creatinine_mg_dl}")
    if not weight_kg > 0:
        raise ValueError(f"weight must be positive, not {weight_kg}")
    clearance = (140 - age_years) * weight_kg / (72 * creatinine_mg_dl)
    return clearance * _FEMALE_FACTOR if female else clearance


def creatinine_at_clearance(
    age_years: float, weight_kg: float, clearance_ml_min: float, female: bool
) -> float:
    """The serum creatinine in mg/dL at which Cockcroft-Gault gives `clearance_ml_min`: the equation solved
    for SCr, so a chart can draw a clearance threshold on the creatinine axis for this patient."""
    if not clearance_ml_min > 0:
        raise ValueError(f"clearance must be positive, not {clearance_ml_min}")
    if not weight_kg > 0:
        raise ValueError(f"weight must be positive, not {weight_kg}")
    if not age_years < 140:
        raise ValueError(f"the equation gives no clearance at age {age_years}")
    creatinine = (140 - age_years) * weight_kg / (72 * clearance_ml_min)
    return creatinine * _FEMALE_FACTOR if female else creatinine


def cockcroft_gault_any_sex(age_years: float, weight_kg: float, creatinine_mg_dl: float, sex: str) -> float:
    """Cockcroft-Gault for a FHIR `Patient.gender`.

    The equation knows only two sexes. For "other" and "unknown" we take the lower of the two estimates
    (a project choice): underestimating clearance errs towards the renal warning, not away from it.
    """
    if sex == "female" or sex == "male":
        return cockcroft_gault(age_years, weight_kg, creatinine_mg_dl, female=sex == "female")
    if sex == "other" or sex == "unknown":
        return min(
            cockcroft_gault(age_years, weight_kg, creatinine_mg_dl, female=True),
            cockcroft_gault(age_years, weight_kg, creatinine_mg_dl, female=False),
        )
    raise ValueError(f"unknown sex {sex!r}; expected female, male, other or unknown")


def ideal_weight(height: float, base_weight: float, per_height: float, base_height: float) -> float:
    """Devine's ideal body weight: `base_weight` at `base_height`, plus `per_height` for each unit of height
    above it (Devine 1974: 50 kg for men, 45.5 kg for women, at 5 ft, plus 2.3 kg per inch). The caller
    passes the constants in one unit system; below `base_height` the line is extrapolated.
    """
    weight = base_weight + per_height * (height - base_height)
    if not weight > 0:
        raise ValueError(f"a height of {height:g} gives no positive ideal body weight")
    return weight


def adjusted_weight(actual: float, ideal: float, factor: float) -> float:
    """Adjusted body weight: the ideal weight plus `factor` times the excess of the actual weight over it."""
    return ideal + factor * (actual - ideal)
