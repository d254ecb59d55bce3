"""Patient facts: age, sex, and the body weight dosing uses."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date

from cds_service.facts.knowledge import Labs, Patient, unavailable
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec, missing

# FHIR AdministrativeGender: a closed code system, so the rule linter can check `in:` lists against it.
SEXES = ("female", "male", "other", "unknown")


def patient_specs(patient: Patient, labs: Labs) -> list[FactSpec]:
    weight = labs.analytes[patient.weight_analyte]
    return [
        FactSpec("patient.age", "quantity", "a", "age in completed years at the time of the request"),
        FactSpec("patient.age_days", "quantity", "d", "age in days at the time of the request"),
        FactSpec("patient.sex", "text", None, "administrative sex (Patient.gender)", SEXES),
        FactSpec(
            "patient.weight",
            "quantity",
            weight.unit,
            f"newest {weight.label} in the last {weight.window_text} (the weight doses per kg use)",
        ),
    ]


def patient_facts(patient: Patient, facts: Facts, lab_facts: Mapping[str, Fact]) -> dict[str, Fact]:
    gap = unavailable(facts.unavailable, patient.sources)
    out: dict[str, Fact] = {}
    birth = facts.birth_date
    today = facts.now.date()
    if birth is None or birth > today:
        why = gap or ("no birth date" if birth is None else f"birth date {birth} is after today")
        out["patient.age"] = missing("patient.age", why)
        out["patient.age_days"] = missing("patient.age_days", why)
    else:
        detail = f"born {birth.isoformat()}"
        out["patient.age"] = Fact("patient.age", completed_years(birth, today), unit="a", detail=detail)
        out["patient.age_days"] = Fact("patient.age_days", (today - birth).days, unit="d", detail=detail)
    if facts.gender in SEXES:
        out["patient.sex"] = Fact("patient.sex", facts.gender)
    elif facts.gender:
        out["patient.sex"] = missing("patient.sex", f"Patient.gender {facts.gender!r} is not a FHIR gender")
    else:
        out["patient.sex"] = missing("patient.sex", gap or "no sex (Patient.gender) recorded")
    latest = lab_facts[f"{patient.weight_analyte}.latest"]
    out["patient.weight"] = dataclasses.replace(latest, name="patient.weight")
    return out


def completed_years(birth: date, today: date) -> int:
    years = today.year - birth.year
    # A 29 February birthday is reached on 1 March in common years.
    return years - ((today.month, today.day) < (birth.month, birth.day))
