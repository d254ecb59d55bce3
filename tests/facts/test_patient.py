"""patient.age, patient.age_days, patient.sex and patient.weight."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cds_service.data.resources import Resource
from cds_service.facts.patient import completed_years
from tests.facts.support import facts_of, fixture, observation, resource


def patient(**fields: str) -> Resource:
    return resource(resourceType="Patient", id="p1", **fields)


def test_fixture_patient() -> None:
    facts = facts_of(fixture("mas-adult-female"))
    assert (facts["patient.age"].value, facts["patient.age"].unit) == (58, "a")
    assert (facts["patient.age_days"].value, facts["patient.age_days"].unit) == (21409, "d")
    assert facts["patient.sex"].value == "female"
    weight = facts["patient.weight"]
    assert (weight.value, weight.unit, weight.evidence) == (67.9, "kg", ("Observation/mas-f1-weight-02",))
    assert weight.time == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("birth", "today", "years"),
    [
        (date(2000, 11, 23), date(2026, 11, 23), 26),
        (date(2000, 11, 24), date(2026, 11, 23), 25),
        (date(2000, 2, 29), date(2026, 2, 28), 25),
        (date(2000, 2, 29), date(2026, 3, 1), 26),
        (date(2026, 11, 1), date(2026, 11, 23), 0),
    ],
)
def test_completed_years(birth: date, today: date, years: int) -> None:
    assert completed_years(birth, today) == years


def test_infant_age_in_days() -> None:
    facts = facts_of([patient(birthDate="2026-11-01", gender="male")])
    assert (facts["patient.age"].value, facts["patient.age_days"].value) == (0, 22)
    assert facts["patient.sex"].value == "male"


def test_no_birth_date_or_gender() -> None:
    facts = facts_of([patient()])
    assert facts["patient.age"].missing == "no birth date"
    assert facts["patient.sex"].missing == "no sex (Patient.gender) recorded"


def test_an_unreadable_patient_is_named() -> None:
    facts = facts_of(unavailable={"patient": "HTTP 503"})
    assert facts["patient.age"].missing == "patient demographics could not be read: HTTP 503"
    assert facts["patient.sex"].missing == "patient demographics could not be read: HTTP 503"


def test_weight_in_pounds_is_kilograms() -> None:
    facts = facts_of([observation("w", "29463-7", 154, "[lb_av]")])
    weight = facts["patient.weight"]
    assert weight.value == pytest.approx(69.85322498)
    assert (weight.native_value, weight.native_unit) == (154, "[lb_av]")
