"""cultures.* facts: positive cultures, their organisms and specimens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cds_service.data.resources import Resource
from tests.facts.support import LOINC, NOW, SNOMED, facts_of, fixture, resource

E_COLI = {"coding": [{"system": SNOMED, "code": "112283007", "display": "Escherichia coli"}]}
GN_RODS = {"coding": [{"system": SNOMED, "code": "87172008", "display": "Gram-negative bacillus"}]}
S_AUREUS = {"coding": [{"system": SNOMED, "code": "3092008", "display": "Staphylococcus aureus"}]}


def when(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


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
