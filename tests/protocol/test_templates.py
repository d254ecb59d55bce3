"""Prefetch templates: the CDS Hooks 2.0 query restrictions and safe token filling."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from cds_service.protocol.templates import fill_template, template_problems, token_value
from tests.conftest import RULES

CONTEXT: dict[str, Any] = {"patientId": "p1", "userId": "Practitioner/abc", "encounterId": "e1"}


# --- template_problems: rejected ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        ("Observation?patient={{context.patientId}}&sort:desc=date", ":desc"),
        ("MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication", "_include"),
        ("Patient?_id={{context.patientId}}&_revinclude=Observation:subject", "_revinclude"),
        ("Observation?_has:Patient:link:name=x", "_has"),
        ("Observation?subject.name=x", "chained"),
        ("Observation?patient={{context.patientId}}&code:text=ferritin", ":text"),
        ("Observation?patient={{context.patientId}}&code:not=1234-5", ":not"),
        ("Observation?patient={{context.patientId}}&date=2026-01-01", "ge, le, gt or lt"),
        ("MedicationRequest?patient={{context.patientId}}&authoredon=2026-01", "ge, le, gt or lt"),
        ("Observation?patient={{context.patientId}}&date=eq2026-01-01", "ge, le, gt or lt"),
        ("Observation?patient={{context.patientId}}&_count=many", "_count"),
        ("Observation?patient={{context.patientId}}&_count=", "_count"),
        ("Observation?patient={{context.patientId}}&_count=-5", "_count"),
        ("Observation?patient={{context.patientId}}&_sort=date desc", "_sort"),
        ("Patient", "read"),
        ("patient/{{context.patientId}}", "read"),
        ("Patient/{{context.patientId}}/_history/1", "read"),
        ("observation?patient={{context.patientId}}", "resource type"),
        ("{{context.patientId}}?x=1", "resource type"),
    ],
)
def test_rejected_templates(template: str, needle: str) -> None:
    problems = template_problems(template, "order-sign")
    assert problems, template
    assert any(needle in p for p in problems), problems


@pytest.mark.parametrize(
    ("template", "hook", "token"),
    [
        ("Bundle?x={{context.draftOrders}}", "order-sign", "context.draftOrders"),
        ("MedicationRequest?_id={{context.selections}}", "order-select", "context.selections"),
        (
            "Observation?patient={{context.patientId}}&x={{context.medications}}",
            "patient-view",
            "context.medications",
        ),
        ("Practitioner/{{user}}", "order-sign", "user"),
        ("Patient/{{context.patientId}}", "encounter-start", "context.patientId"),
    ],
)
def test_tokens_not_available_on_the_hook_are_rejected(template: str, hook: str, token: str) -> None:
    problems = template_problems(template, hook)
    assert any(token in p and "not available" in p for p in problems), problems


def test_problems_are_all_reported() -> None:
    template = (
        "Observation?subject.name=x&_include=Observation:subject&date=2026-01-01&_count=x&q={{context.y}}"
    )
    assert len(template_problems(template, "order-sign")) == 5


# --- template_problems: accepted ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "hook"),
    [
        ("Observation?patient={{context.patientId}}&_sort=-date", "order-sign"),
        ("Observation?patient={{context.patientId}}&_sort=-date,code&_count=5", "order-sign"),
        ("Observation?patient={{context.patientId}}&code:in=http://example.org/ValueSet/labs", "order-sign"),
        (
            "Observation?patient={{context.patientId}}&code=http://loinc.org|2276-4,http://loinc.org|718-7",
            "order-sign",
        ),
        ("Observation?patient={{context.patientId}}&date=ge2026-01-01", "order-sign"),
        ("Observation?patient={{context.patientId}}&date=lt2026-01-01T00:00:00Z", "patient-view"),
        ("MedicationRequest?patient={{context.patientId}}&authoredon=gt2025-06", "order-select"),
        ("Patient/{{context.patientId}}", "patient-view"),
        ("Patient/{{ context.patientId }}", "patient-view"),
        ("Patient/example", "patient-view"),
        ("Encounter/{{context.encounterId}}", "order-sign"),
        ("Practitioner/{{userPractitionerId}}", "order-sign"),
        ("PractitionerRole/{{userPractitionerRoleId}}", "order-select"),
        ("MedicationRequest?requester={{userPractitionerId}}&status=active", "patient-view"),
        ("Observation?patient={{context.patientId}}&_count=100", "patient-view"),
    ],
)
def test_accepted_templates(template: str, hook: str) -> None:
    assert template_problems(template, hook) == []


def test_context_encounter_id_is_a_token_on_every_supported_hook() -> None:
    for hook in ("patient-view", "order-select", "order-sign"):
        assert template_problems("Encounter/{{context.encounterId}}", hook) == []


def shipped_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted((RULES / "services").glob("*.yaml")):
        service = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key, item in service.get("prefetch", {}).items():
            out.append((f"{path.name}:{key}", service["hook"], item["query"]))
    return out


def test_there_are_shipped_queries() -> None:
    assert len(shipped_queries()) >= 3


@pytest.mark.parametrize(("where", "hook", "query"), shipped_queries(), ids=[q[0] for q in shipped_queries()])
def test_every_shipped_query_follows_the_restrictions(where: str, hook: str, query: str) -> None:
    assert template_problems(query, hook) == []
    assert fill_template(query, CONTEXT) is not None


# --- template_problems: edge cases ----------------------------------------------------------------


def test_read_without_an_id_is_rejected() -> None:
    assert template_problems("Patient/", "patient-view") != []


def test_count_with_non_ascii_digits_is_rejected() -> None:
    # "²" (superscript two) passes str.isdigit() but is no whole number a FHIR server understands.
    assert template_problems("Observation?patient={{context.patientId}}&_count=%C2%B2", "patient-view") != []


# --- fill_template --------------------------------------------------------------------------------


def test_fill_replaces_context_tokens() -> None:
    assert fill_template("Patient/{{context.patientId}}", CONTEXT) == "Patient/p1"
    assert fill_template("Patient/{{ context.patientId }}", CONTEXT) == "Patient/p1"
    assert (
        fill_template("Observation?patient={{context.patientId}}&encounter={{context.encounterId}}", CONTEXT)
        == "Observation?patient=p1&encounter=e1"
    )


def test_fill_leaves_a_template_without_tokens_alone() -> None:
    assert (
        fill_template("Observation?code=http://loinc.org|2276-4", CONTEXT)
        == "Observation?code=http://loinc.org|2276-4"
    )


@pytest.mark.parametrize(
    "patient", ["p1&_include=Observation:subject", "p 1", "p1#frag", "p1?x=y", "../Practitioner/1"]
)
def test_fill_url_encodes_values_so_they_cannot_inject(patient: str) -> None:
    filled = fill_template(
        "Observation?patient={{context.patientId}}&_count=5", {**CONTEXT, "patientId": patient}
    )
    assert filled is not None
    parts = urlsplit(filled)
    assert parts.path == "Observation"
    assert parts.fragment == ""
    assert parse_qs(parts.query) == {"patient": [patient], "_count": ["5"]}
    assert " " not in filled


def test_fill_url_encodes_a_read_so_it_stays_one_path_segment() -> None:
    filled = fill_template("Patient/{{context.patientId}}", {"patientId": "a/b c"})
    assert filled == "Patient/a%2Fb%20c"


@pytest.mark.parametrize(
    "context",
    [
        {"userId": "Practitioner/abc"},
        {"patientId": "", "userId": "Practitioner/abc"},
        {"patientId": None},
        {"patientId": 12},
    ],
)
def test_fill_returns_none_when_a_token_has_no_value(context: dict[str, Any]) -> None:
    assert fill_template("Observation?patient={{context.patientId}}", context) is None


def test_fill_returns_none_when_only_one_of_several_tokens_is_missing() -> None:
    assert (
        fill_template(
            "Observation?patient={{context.patientId}}&encounter={{context.encounterId}}", {"patientId": "p1"}
        )
        is None
    )


def test_user_practitioner_id_comes_from_user_id() -> None:
    assert (
        fill_template("Practitioner/{{userPractitionerId}}", {"userId": "Practitioner/abc"})
        == "Practitioner/abc"
    )
    assert token_value("userPractitionerId", {"userId": "Practitioner/abc"}) == "abc"


def test_user_practitioner_id_is_none_for_a_practitioner_role() -> None:
    context = {"userId": "PractitionerRole/abc"}
    assert fill_template("Practitioner/{{userPractitionerId}}", context) is None
    assert fill_template("PractitionerRole/{{userPractitionerRoleId}}", context) == "PractitionerRole/abc"


@pytest.mark.parametrize(
    ("user", "token", "expected"),
    [
        ("Patient/p9", "userPatientId", "p9"),
        ("RelatedPerson/r2", "userRelatedPersonId", "r2"),
        ("Patient/p9", "userPractitionerId", None),
        ("Practitioner/", "userPractitionerId", None),
        ("abc", "userPractitionerId", None),
    ],
)
def test_user_tokens(user: str, token: str, expected: str | None) -> None:
    assert token_value(token, {"userId": user}) == expected


def test_unknown_token_has_no_value() -> None:
    assert token_value("somethingElse", CONTEXT) is None
    assert fill_template("Patient/{{somethingElse}}", CONTEXT) is None


def test_rules_dir_fixture_points_at_the_shipped_rules() -> None:
    assert isinstance(RULES, Path)
    assert (RULES / "services").is_dir()
