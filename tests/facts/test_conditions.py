"""conditions.* facts: conditions, procedures and encounters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cds_service.data.resources import Resource
from tests.facts.support import NOW, SNOMED, facts_of, fixture, resource


def when(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


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
