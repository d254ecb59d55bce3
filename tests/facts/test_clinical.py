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


def antibacterial(concept: dict[str, Any], route: dict[str, Any] | None) -> Resource:
    dosage: dict[str, Any] = {"route": route} if route is not None else {}
    return medication_request("abx", medicationCodeableConcept=concept, dosageInstruction=[dosage])


ORAL = {"coding": [{"system": SNOMED, "code": "26643006"}]}


@pytest.mark.parametrize(
    ("concept", "route", "expected"),
    [
        ({"coding": [{"system": RXNORM, "code": "11124"}]}, ORAL, False),  # vancomycin by mouth
        ({"text": "vancomycin 125 MG Oral Capsule"}, None, False),  # the route named by the drug's text
        ({"coding": [{"system": RXNORM, "code": "11124"}]}, {"text": "IV"}, True),
        ({"text": "vancomycin enema"}, {"text": "PR"}, False),
        ({"coding": [{"system": RXNORM, "code": "82122"}]}, ORAL, True),  # levofloxacin by mouth
        ({"text": "levofloxacin 5 MG/ML Ophthalmic Solution"}, {"text": "both eyes"}, False),
        ({"text": "Bactrim DS"}, {"text": "PO"}, True),
        (
            {"text": "sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet"},
            {"text": "per NG tube"},
            True,
        ),
        (
            {"coding": [{"system": "http://www.whocc.no/atc", "code": "J01XE01"}]},
            ORAL,
            False,
        ),  # nitrofurantoin
        ({"text": "gentamicin 0.1 % cream"}, {"text": "topical"}, False),
        ({"text": "tobramycin"}, {"text": "nebulized"}, False),
        ({"coding": [{"system": RXNORM, "code": "29561"}]}, None, True),  # meropenem: no route, no exception
    ],
)
def test_systemic_antibacterials_by_drug_and_route(
    concept: dict[str, Any], route: dict[str, Any] | None, expected: bool
) -> None:
    fact = facts_of([antibacterial(concept, route)])["medications.antibacterial.active"]
    assert fact.value is expected, fact


def test_an_antibacterial_that_is_not_systemic_by_some_route_needs_its_route() -> None:
    fact = facts_of([antibacterial({"text": "vancomycin"}, None)])["medications.antibacterial.active"]
    assert fact.value is None
    assert fact.missing is not None
    assert "MedicationRequest/abx (vancomycin) gives no route" in fact.missing


def test_a_systemic_order_decides_beside_one_that_cannot_be_placed() -> None:
    unplaced = antibacterial({"text": "vancomycin"}, None)
    systemic = medication_request(
        "cro",
        medicationCodeableConcept={"text": "ceftriaxone"},
        dosageInstruction=[{"route": {"text": "IV"}}],
    )
    fact = facts_of([unplaced, systemic])["medications.antibacterial.active"]
    assert fact.value is True
    assert fact.evidence == ("MedicationRequest/cro",)


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
    assert fact.missing == (
        "specimen of Observation/gs1 (Gram-negative bacillus) unknown: "
        "Specimen/gone is not among the specimens sent or fetched"
    )


def test_another_positive_decides_despite_an_unknown_specimen() -> None:
    labs = [culture("gs1", "664-3", GN_RODS), culture("bc1", "600-7", E_COLI, days=2)]
    assert positive(facts_of(labs)).value is True


def test_any_result_on_a_blood_specimen_with_a_gram_negative_organism_counts() -> None:
    specimen = resource(resourceType="Specimen", id="s1", type={"text": "Blood specimen"})
    local = culture("loc", "600-7", E_COLI, specimen={"reference": "Specimen/s1"})
    local = resource(**{**_raw(local), "code": {"coding": [{"system": "urn:local", "code": "BCX"}]}})
    assert positive(facts_of([local, specimen])).value is True


@pytest.mark.parametrize(
    "value",
    [
        {"coding": [{"system": SNOMED, "code": "33522002", "display": "Serratia marcescens"}]},
        {"coding": [{"system": SNOMED, "code": "40886007"}]},  # Klebsiella oxytoca, code only
        {"text": "Escherichia coli"},  # text only
        {"coding": [{"system": "urn:local:organisms", "code": "KOXY", "display": "Klebsiella oxytoca"}]},
        {"text": "ESBL-producing E. coli"},
        {"text": "Stenotrophomonas maltophilia"},
        {"text": "Gram-negative rods, identification to follow"},
        {"text": "Staphylococcus epidermidis and Enterobacter cloacae complex"},  # mixed growth
    ],
)
def test_gram_negative_organisms_are_recognised_by_code_or_name(value: dict[str, Any]) -> None:
    assert positive(facts_of([culture("bc1", "600-7", value)])).value is True


def test_an_organism_sent_as_value_string_is_read() -> None:
    bc = resource(**{**_raw(culture("bc1", "600-7", E_COLI)), "valueString": "E. coli"})
    bc = resource(**{k: v for k, v in _raw(bc).items() if k != "valueCodeableConcept"})
    fact = positive(facts_of([bc]))
    assert fact.value is True
    assert fact.detail is not None and fact.detail.startswith("E. coli (blood culture")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({"text": "Staphylococcus epidermidis"}, "not gram-negative"),
        ({"text": "Coagulase-negative staphylococci, probable contaminant"}, "not gram-negative"),
        ({"coding": [{"system": SNOMED, "code": "264868006", "display": "No growth"}]}, "no organism"),
        ({"text": "No growth at 5 days"}, "no organism"),
        ({"text": "No Escherichia coli isolated"}, "no organism"),
    ],
)
def test_gram_positive_contaminant_and_negative_cultures_are_false(value: dict[str, Any], why: str) -> None:
    fact = positive(facts_of([culture("bc1", "600-7", value)]))
    assert fact.value is False
    assert fact.detail is not None and why in fact.detail


@pytest.mark.parametrize(
    "value",
    [
        {"text": "Candida auris"},
        {"coding": [{"system": "urn:local:organisms", "code": "ORG9", "display": "Organism 9"}]},
        {"text": "Positive, identification to follow"},
    ],
)
def test_an_unrecognised_organism_in_a_blood_culture_is_unknown_never_false(value: dict[str, Any]) -> None:
    fact = positive(facts_of([culture("bc1", "600-7", value)]))
    assert fact.value is None
    assert fact.missing is not None
    assert "Observation/bc1 (blood culture) reports" in fact.missing
    assert "recognised neither as gram-negative organism" in fact.missing
    assert fact.evidence == ("Observation/bc1",)


def test_a_culture_without_any_value_is_not_read() -> None:
    bc = resource(
        **{k: v for k, v in _raw(culture("bc1", "600-7", E_COLI)).items() if k != "valueCodeableConcept"}
    )
    assert positive(facts_of([bc])).value is False


def specimen_of(ident: str, type_: dict[str, Any]) -> Resource:
    return resource(resourceType="Specimen", id=ident, type=type_)


@pytest.mark.parametrize(
    "type_",
    [
        {"coding": [{"system": SNOMED, "code": "122555007", "display": "Venous blood specimen"}]},
        {"coding": [{"system": SNOMED, "code": "446131002"}]},
        {"text": "Peripheral blood"},
        {"text": "Blood, arterial"},
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0487",
                    "code": "BLD",
                    "display": "Whole blood",
                }
            ]
        },
    ],
)
def test_blood_specimen_types(type_: dict[str, Any]) -> None:
    stain = culture("gs1", "664-3", GN_RODS, specimen={"reference": "Specimen/s1"})
    assert positive(facts_of([stain, specimen_of("s1", type_)])).value is True


@pytest.mark.parametrize(
    "type_",
    [
        {"coding": [{"system": SNOMED, "code": "122575003", "display": "Urine specimen"}]},
        {"text": "Urine, clean catch"},
        {"text": "Sputum"},
    ],
)
def test_a_gram_stain_on_a_non_blood_specimen_is_false(type_: dict[str, Any]) -> None:
    stain = culture("gs1", "664-3", GN_RODS, specimen={"reference": "Specimen/s1"})
    fact = positive(facts_of([stain, specimen_of("s1", type_)]))
    assert fact.value is False
    assert fact.detail is not None and "not blood" in fact.detail


def test_the_reference_display_decides_when_the_specimen_is_not_here() -> None:
    for display, expected in (("Peripheral blood", True), ("Urine", False), ("Specimen 12", None)):
        stain = culture("gs1", "664-3", GN_RODS, specimen={"reference": "Specimen/gone", "display": display})
        assert positive(facts_of([stain])).value is expected, display


def test_an_unrecognised_specimen_type_is_unknown() -> None:
    stain = culture("gs1", "664-3", GN_RODS, specimen={"reference": "Specimen/s1"})
    fact = positive(facts_of([stain, specimen_of("s1", {"text": "Specimen 12"})]))
    assert fact.value is None
    assert fact.missing is not None and "type 'Specimen 12' of Specimen/s1 is not recognised" in fact.missing


def test_a_contained_specimen_is_read() -> None:
    stain = culture(
        "gs1",
        "664-3",
        GN_RODS,
        specimen={"reference": "#sp"},
        contained=[{"resourceType": "Specimen", "id": "sp", "type": {"text": "Urine"}}],
    )
    assert positive(facts_of([stain])).value is False


def test_unreadable_specimens_make_the_specimen_unknown_and_say_why() -> None:
    stain = culture("gs1", "664-3", GN_RODS, specimen={"reference": "Specimen/s1"})
    fact = positive(facts_of([stain], unavailable={"specimens": "the FHIR server answered HTTP 500"}))
    assert fact.value is None
    assert fact.missing is not None and "specimens could not be read" in fact.missing


def test_a_gram_positive_stain_on_blood_is_false_and_yeast_is_unknown() -> None:
    gpc = {"coding": [{"system": SNOMED, "code": "70003006", "display": "Gram-positive cocci in clusters"}]}
    blood = specimen_of("s1", {"text": "Blood"})
    stain = culture("gs1", "664-3", gpc, specimen={"reference": "Specimen/s1"})
    assert positive(facts_of([stain, blood])).value is False
    yeast = culture("gs2", "664-3", {"text": "Yeast"}, specimen={"reference": "Specimen/s1"})
    assert positive(facts_of([yeast, blood])).value is None


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
