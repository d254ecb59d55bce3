"""medications.*, cultures.* and conditions.* facts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cds_service.data.resources import Resource
from tests.facts.support import LOINC, NOW, RXNORM, SNOMED, facts_of, fixture, resource

E_COLI = {"coding": [{"system": SNOMED, "code": "112283007", "display": "Escherichia coli"}]}
GN_RODS = {"coding": [{"system": SNOMED, "code": "87172008", "display": "Gram-negative bacillus"}]}
S_AUREUS = {"coding": [{"system": SNOMED, "code": "3092008", "display": "Staphylococcus aureus"}]}


def when(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


# --- medications ------------------------------------------------------------------------------------


def test_fixture_active_orders() -> None:
    facts = facts_of(fixture("mas-adult-female"))
    antibacterial = facts["medications.antibacterial.active"]
    assert antibacterial.value is True
    assert antibacterial.evidence == ("MedicationRequest/mas-f1-meropenem",)
    assert facts["medications.antibacterial.daily_dose"].value == 3000  # 1 g every 8 h
    assert facts["medications.anakinra.active"].value is True
    assert facts["medications.anakinra.daily_dose"].value == 2400  # 100 mg/h


def medication_request(ident: str, status: str = "active", **fields: Any) -> Resource:
    return resource(resourceType="MedicationRequest", id=ident, status=status, intent="order", **fields)


def test_an_atc_j01_code_is_an_antibacterial() -> None:
    concept = {"coding": [{"system": "http://www.whocc.no/atc", "code": "J01DD04"}]}
    facts = facts_of([medication_request("cro", medicationCodeableConcept=concept)])
    assert facts["medications.antibacterial.active"].value is True
    assert facts["medications.antibacterial.daily_dose"].missing is not None


def test_only_active_orders_count() -> None:
    concept = {"coding": [{"system": RXNORM, "code": "29561"}]}
    facts = facts_of([medication_request("old", status="completed", medicationCodeableConcept=concept)])
    assert facts["medications.antibacterial.active"].value is False
    assert facts["medications.antibacterial.daily_dose"].missing == "no active systemic antibacterial order"


def test_unreadable_medication_orders_are_unknown_not_absent() -> None:
    facts = facts_of(unavailable={"medications": "it was not prefetched and no fhirServer was given"})
    fact = facts["medications.antibacterial.active"]
    assert fact.value is None
    assert (
        fact.missing
        == "medication orders could not be read: it was not prefetched and no fhirServer was given"
    )


# --- cultures ---------------------------------------------------------------------------------------


def culture(ident: str, code: str, value: dict[str, Any], days: float = 1, **extra: Any) -> Resource:
    return resource(
        resourceType="Observation",
        id=ident,
        status="final",
        code={"coding": [{"system": LOINC, "code": code}]},
        valueCodeableConcept=value,
        effectiveDateTime=when(days),
        **extra,
    )


def positive(facts: dict[str, Any]) -> Any:
    return facts["cultures.gram_negative_blood.positive"]


def test_no_cultures_is_false() -> None:
    fact = positive(facts_of(fixture("mas-adult-female")))
    assert fact.value is False


def test_a_gram_negative_blood_culture_is_positive() -> None:
    fact = positive(facts_of([culture("bc1", "600-7", E_COLI)]))
    assert fact.value is True
    assert fact.evidence == ("Observation/bc1",)
    assert fact.detail == f"Escherichia coli (blood culture, {NOW - timedelta(days=1):%Y-%m-%d %H:%M})"


def test_a_gram_positive_or_old_culture_is_not() -> None:
    assert positive(facts_of([culture("bc1", "600-7", S_AUREUS)])).value is False
    assert positive(facts_of([culture("bc1", "600-7", E_COLI, days=8)])).value is False


def test_a_gram_stain_on_a_blood_specimen_is_positive() -> None:
    specimen = resource(
        resourceType="Specimen", id="s1", type={"coding": [{"system": SNOMED, "code": "119297000"}]}
    )
    stain = culture("gs1", "664-3", GN_RODS, specimen={"reference": "Specimen/s1"})
    fact = positive(facts_of([stain, specimen]))
    assert fact.value is True
    assert "Gram stain" in (fact.detail or "")


def test_a_gram_stain_on_a_specimen_named_blood_is_positive() -> None:
    stain = culture("gs1", "664-3", GN_RODS, specimen={"reference": "Specimen/gone", "display": "Blood"})
    assert positive(facts_of([stain])).value is True


def test_a_gram_stain_on_another_specimen_is_not() -> None:
    urine = resource(
        resourceType="Specimen", id="s2", type={"coding": [{"system": SNOMED, "code": "122575003"}]}
    )
    stain = culture("gs1", "664-3", GN_RODS, specimen={"reference": "Specimen/s2"})
    assert positive(facts_of([stain, urine])).value is False


def test_a_gram_stain_of_unknown_specimen_is_unknown_not_false() -> None:
    fact = positive(facts_of([culture("gs1", "664-3", GN_RODS, specimen={"reference": "Specimen/gone"})]))
    assert fact.value is None
    assert fact.missing == "specimen of Observation/gs1 unknown"


def test_another_positive_decides_despite_an_unknown_specimen() -> None:
    labs = [culture("gs1", "664-3", GN_RODS), culture("bc1", "600-7", E_COLI, days=2)]
    assert positive(facts_of(labs)).value is True


def test_any_result_on_a_blood_specimen_with_a_gram_negative_organism_counts() -> None:
    specimen = resource(resourceType="Specimen", id="s1", type={"text": "Blood specimen"})
    local = culture("loc", "600-7", E_COLI, specimen={"reference": "Specimen/s1"})
    local = resource(**{**_raw(local), "code": {"coding": [{"system": "urn:local", "code": "BCX"}]}})
    assert positive(facts_of([local, specimen])).value is True


def _raw(resource_: Resource) -> dict[str, Any]:
    import msgspec

    raw: dict[str, Any] = {k: v for k, v in msgspec.to_builtins(resource_).items() if v is not None}
    return raw


# --- conditions -------------------------------------------------------------------------------------


def condition(ident: str, code: str, system: str = SNOMED, **status: Any) -> Resource:
    return resource(
        resourceType="Condition", id=ident, code={"coding": [{"system": system, "code": code}]}, **status
    )


def status(code: str, kind: str = "clinical") -> dict[str, Any]:
    system = "condition-clinical" if kind == "clinical" else "condition-ver-status"
    return {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system}", "code": code}]}


def test_fixture_conditions() -> None:
    facts = facts_of(fixture("mas-adult-female"))
    assert facts["conditions.splenomegaly.status"].value == "present"
    assert facts["conditions.splenomegaly.status"].evidence == ("Condition/mas-f1-splenomegaly",)
    assert facts["conditions.hepatomegaly.status"].value == "refuted"
    assert facts["conditions.esrd.status"].missing == "no Condition coded as end-stage renal disease"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "present"),
        ({"clinicalStatus": status("relapse")}, "present"),
        ({"verificationStatus": status("unconfirmed", "ver")}, "present"),
        ({"verificationStatus": status("refuted", "ver")}, "refuted"),
        ({"verificationStatus": status("entered-in-error", "ver")}, None),
        ({"clinicalStatus": status("resolved")}, None),
    ],
)
def test_condition_status(fields: dict[str, Any], expected: str | None) -> None:
    facts = facts_of([condition("c1", "46177005", **fields)])
    assert facts["conditions.esrd.status"].value == expected


def test_a_resolved_condition_says_so() -> None:
    facts = facts_of([condition("c1", "46177005", clinicalStatus=status("resolved"))])
    assert (
        facts["conditions.esrd.status"].missing
        == "end-stage renal disease is recorded only as resolved (Condition/c1)"
    )


def test_icd10_codes_and_prefixes() -> None:
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    facts = facts_of([condition("c1", "N18.6", icd), condition("c2", "M08.21", icd)])
    assert facts["conditions.esrd.status"].value == "present"
    assert facts["conditions.sjia.status"].value == "present"


def test_unreadable_conditions_are_named() -> None:
    facts = facts_of(unavailable={"conditions": "HTTP 500"})
    assert facts["conditions.splenomegaly.status"].missing == "conditions could not be read: HTTP 500"


def dialysis(
    ident: str = "hd", code: str = "302497006", status: str = "completed", **timing: Any
) -> Resource:
    return resource(
        resourceType="Procedure",
        id=ident,
        status=status,
        code={"coding": [{"system": SNOMED, "code": code}], "text": "Hemodialysis"},
        **timing,
    )


def test_recent_dialysis_procedure() -> None:
    assert (
        facts_of([dialysis(performedDateTime=when(2))])["conditions.hemodialysis.status"].value == "present"
    )
    old = facts_of([dialysis(performedDateTime=when(8))])["conditions.hemodialysis.status"]
    assert old.missing == "no Procedure coded as intermittent hemodialysis in progress or in the last 7 days"


def test_a_session_that_ended_within_the_window_counts_from_its_end() -> None:
    session = dialysis(performedPeriod={"start": when(7.2), "end": when(6.9)})
    fact = facts_of([session])["conditions.hemodialysis.status"]
    assert fact.value == "present"
    assert fact.detail is not None and fact.detail.startswith("Hemodialysis (")


def test_crrt_in_progress_counts_however_long_ago_it_started() -> None:
    crrt = dialysis("crrt", "714749008", "in-progress", performedPeriod={"start": when(20)})
    fact = facts_of([crrt])["conditions.crrt.status"]
    assert fact.value == "present"
    assert "in progress since" in (fact.detail or "")
    # Completed with a start only, it took place then: 20 days ago is outside the window.
    done = dialysis("crrt", "714749008", "completed", performedPeriod={"start": when(20)})
    assert facts_of([done])["conditions.crrt.status"].value is None
    # Due to end later, it is going on now.
    running = dialysis("crrt", "714749008", "completed", performedPeriod={"start": when(9), "end": when(-1)})
    assert facts_of([running])["conditions.crrt.status"].value == "present"


@pytest.mark.parametrize("status", ["not-done", "entered-in-error", "preparation", "stopped", None])
def test_a_procedure_that_did_not_take_place_does_not_count(status: str | None) -> None:
    fact = facts_of([dialysis(status=status, performedDateTime=when(1))])["conditions.hemodialysis.status"]
    assert fact.value is None


def test_a_future_procedure_does_not_count() -> None:
    planned = dialysis(performedDateTime=when(-1))
    assert facts_of([planned])["conditions.hemodialysis.status"].value is None


@pytest.mark.parametrize(
    ("code", "system", "name"),
    [
        ("714749008", SNOMED, "crrt"),
        ("5A1D90Z", "http://www.cms.gov/Medicare/Coding/ICD10", "crrt"),
        ("71192002", SNOMED, "peritoneal_dialysis"),
        ("5A1D70Z", "http://www.cms.gov/Medicare/Coding/ICD10", "hemodialysis"),
        ("90945", "http://www.ama-assn.org/go/cpt", "dialysis_unspecified"),
    ],
)
def test_each_dialysis_modality_has_its_codes(code: str, system: str, name: str) -> None:
    procedure = resource(
        resourceType="Procedure",
        id="p",
        status="completed",
        code={"coding": [{"system": system, "code": code}]},
        performedDateTime=when(1),
    )
    assert facts_of([procedure])[f"conditions.{name}.status"].value == "present"


def encounter(status: str = "finished", **fields: Any) -> Resource:
    return resource(
        resourceType="Encounter",
        id="e1",
        status=status,
        period={"start": when(2.2), "end": when(2)},
        **fields,
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z49.31"}]}]},
        {"type": [{"coding": [{"system": SNOMED, "code": "302497006"}], "text": "Dialysis session"}]},
        {"serviceType": {"coding": [{"system": SNOMED, "code": "714749008"}]}},
    ],
)
def test_a_dialysis_encounter_by_type_service_or_reason(fields: dict[str, Any]) -> None:
    fact = facts_of([encounter(**fields)])["conditions.dialysis_encounter.status"]
    assert fact.value == "present"
    assert fact.evidence == ("Encounter/e1",)


@pytest.mark.parametrize("status", ["planned", "cancelled", "entered-in-error"])
def test_an_encounter_that_did_not_take_place_does_not_count(status: str) -> None:
    reason = {"reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z49.31"}]}]}
    assert facts_of([encounter(status, **reason)])["conditions.dialysis_encounter.status"].value is None


def test_unreadable_procedures_are_named() -> None:
    facts = facts_of(unavailable={"procedures": "HTTP 500"})
    assert facts["conditions.crrt.status"].missing == "procedures could not be read: HTTP 500"
    # Conditions come from their own key.
    assert facts["conditions.esrd.status"].missing == "no Condition coded as end-stage renal disease"


def test_dependence_on_dialysis_is_a_condition_set() -> None:
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    facts = facts_of([condition("c1", "Z99.2", icd)])
    assert facts["conditions.dialysis_dependence.status"].value == "present"
