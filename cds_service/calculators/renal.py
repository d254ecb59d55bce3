"""Creatinine clearance by Cockcroft-Gault, the estimate drug labels base renal dose adjustment on."""

from __future__ import annotations

__all__ = ["cockcroft_gault", "cockcroft_gault_any_sex", "creatinine_at_clearance", "reduced_dose"]

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


def reduced_dose(daily_dose: float, factor: float) -> float:
    """The renally adjusted daily dose; named so that the rule and its card say what the product means."""
    return daily_dose * factor
