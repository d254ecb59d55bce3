"""build_facts: observation hygiene, series order, units, patient checks, draft orders; parse_datetime."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import orjson
import pytest

from cds_service.data.prefetch import PatientData
from cds_service.data.resources import Resource
from cds_service.facts.build import build_facts
from cds_service.facts.model import Facts
from cds_service.facts.time import parse_date, parse_datetime
from cds_service.protocol.discovery import ServiceDefinition, load_services
from cds_service.protocol.request import HookRequest, parse_hook_request
from tests.conftest import ROOT, RULES

FERRITIN = "http://loinc.org|2276-4"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sign_service() -> ServiceDefinition:
    service = load_services(RULES).get("anakinra-order-sign")
    assert service is not None
    return service


@pytest.fixture(scope="module")
def select_service() -> ServiceDefinition:
    service = load_services(RULES).get("anakinra-order-select")
    assert service is not None
    return service


REQUESTS = ROOT / "fhir_fixtures" / "requests"


def sandbox_body() -> dict[str, Any]:
    """What the CDS Hooks sandbox sent (tests/fixtures/real-clients, copied into the fixture requests)."""
    body: dict[str, Any] = orjson.loads((REQUESTS / "order-sign-sandbox-capture.json").read_bytes())
    return copy.deepcopy(body)


def request_from(body: dict[str, Any], hook: str = "order-sign") -> HookRequest:
    return parse_hook_request(orjson.dumps(body), hook)


def resource(**fields: Any) -> Resource:
    return msgspec.convert(fields, Resource)


def ferritin(ident: str, value: float = 1000, status: str = "final", **extra: Any) -> Resource:
    fields: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ident,
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "2276-4"}]},
        "valueQuantity": {
            "value": value,
            "unit": "ng/mL",
            "system": "http://unitsofmeasure.org",
            "code": "ng/mL",
        },
    }
    fields.update(extra)
    if "effectiveDateTime" not in fields and "effectivePeriod" not in fields and "issued" not in fields:
        fields["effectiveDateTime"] = "2026-11-20T06:00:00Z"
    return resource(**fields)


def data(**values: list[Resource]) -> PatientData:
    return PatientData(values=dict(values), problems=[], unavailable={}, fetched=[])


def facts_for(
    service: ServiceDefinition, patient_data: PatientData, body: dict[str, Any] | None = None
) -> Facts:
    request = request_from(body or sandbox_body(), service.hook)
    return build_facts(service, request, patient_data, now=NOW)


# --- basics ---------------------------------------------------------------------------------------


def test_facts_carry_the_request(sign_service: ServiceDefinition) -> None:
    facts = facts_for(sign_service, data())
    assert facts.now == NOW
    assert facts.hook == "order-sign"
    assert facts.hook_instance == "a744ab7f-432f-40d1-8bc5-e8adeada788d"
    assert facts.patient_id == "p1"


def test_now_defaults_to_an_aware_current_time(sign_service: ServiceDefinition) -> None:
    facts = build_facts(sign_service, request_from(sandbox_body()), data())
    assert facts.now.tzinfo is not None
    assert abs(datetime.now(UTC) - facts.now) < timedelta(minutes=1)


def test_data_problems_and_unavailable_labels_are_carried(sign_service: ServiceDefinition) -> None:
    patient_data = PatientData(
        values={"labs": []},
        problems=["prefetch.labs: the FHIR server reported warning: truncated"],
        unavailable={"medications": "it was not prefetched and no fhirServer was given"},
        fetched=[],
    )
    facts = facts_for(sign_service, patient_data)
    assert "prefetch.labs: the FHIR server reported warning: truncated" in facts.problems
    assert facts.unavailable == {"medication orders": "it was not prefetched and no fhirServer was given"}
    # The input is not modified.
    assert patient_data.problems == ["prefetch.labs: the FHIR server reported warning: truncated"]


def test_resources_are_sorted_by_type(sign_service: ServiceDefinition) -> None:
    medication = resource(resourceType="MedicationRequest", id="m1", status="active", intent="order")
    condition = resource(resourceType="Condition", id="c1")
    specimen = resource(resourceType="Specimen", id="s1")
    facts = facts_for(sign_service, data(medications=[medication], conditions=[condition, specimen]))
    assert [m.id for m in facts.medication_orders] == ["m1"]
    assert [c.id for c in facts.conditions] == ["c1"]
    assert [s.id for s in facts.other["Specimen"]] == ["s1"]


# --- observation hygiene --------------------------------------------------------------------------


def test_entered_in_error_and_cancelled_are_excluded_and_counted(sign_service: ServiceDefinition) -> None:
    labs = [
        ferritin("ok", 1000),
        ferritin("eie1", 99999, status="entered-in-error"),
        ferritin("eie2", 88888, status="entered-in-error"),
        ferritin("cancel", 77777, status="cancelled"),
    ]
    facts = facts_for(sign_service, data(labs=labs))
    assert [v.id for v in facts.lab(FERRITIN)] == ["ok"]
    assert facts.excluded == {"status entered-in-error": 2, "status cancelled": 1}


def test_registered_and_missing_status_are_excluded(sign_service: ServiceDefinition) -> None:
    no_status = resource(
        resourceType="Observation",
        id="none",
        code={"coding": [{"system": "http://loinc.org", "code": "2276-4"}]},
        valueQuantity={"value": 5},
    )
    facts = facts_for(sign_service, data(labs=[ferritin("reg", status="registered"), no_status]))
    assert facts.lab(FERRITIN) == []
    assert facts.excluded == {"status registered": 1, "status missing": 1}


@pytest.mark.parametrize("status", ["preliminary", "final", "amended", "corrected"])
def test_usable_statuses_are_kept(sign_service: ServiceDefinition, status: str) -> None:
    facts = facts_for(sign_service, data(labs=[ferritin("o1", 1500, status=status)]))
    (value,) = facts.lab(FERRITIN)
    assert value.status == status
    assert value.value == 1500
    assert facts.excluded == {}


def test_series_is_sorted_newest_first_with_untimed_last(sign_service: ServiceDefinition) -> None:
    labs = [
        ferritin("mid", 2000, effectiveDateTime="2026-11-21T06:00:00Z"),
        ferritin("untimed", 1, effectiveDateTime="not a date"),
        ferritin("old", 1000, effectiveDateTime="2026-11-01"),
        ferritin("new", 9000, effectiveDateTime="2026-11-22T08:00:00+01:00"),
    ]
    facts = facts_for(sign_service, data(labs=labs))
    series = facts.lab(FERRITIN)
    assert [v.id for v in series] == ["new", "mid", "old", "untimed"]
    assert series[0].time == datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
    assert series[-1].time is None
    assert all(v.code == FERRITIN for v in series)


def test_series_across_prefetch_keys_are_merged(sign_service: ServiceDefinition) -> None:
    facts = facts_for(
        sign_service,
        data(
            labs=[ferritin("a", effectiveDateTime="2026-11-01T00:00:00Z")],
            extra=[ferritin("b", effectiveDateTime="2026-11-02T00:00:00Z")],
        ),
    )
    assert [v.id for v in facts.lab(FERRITIN)] == ["b", "a"]


def test_time_prefers_effective_date_time(sign_service: ServiceDefinition) -> None:
    obs = ferritin(
        "o1",
        effectiveDateTime="2026-11-20T06:00:00Z",
        effectivePeriod={"start": "2026-11-19T06:00:00Z"},
        issued="2026-11-21T06:00:00Z",
    )
    (value,) = facts_for(sign_service, data(labs=[obs])).lab(FERRITIN)
    assert value.time == datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def test_time_falls_back_to_effective_period_start(sign_service: ServiceDefinition) -> None:
    obs = ferritin(
        "o1",
        effectivePeriod={"start": "2026-11-19T06:00:00Z", "end": "2026-11-19T07:00:00Z"},
        issued="2026-11-21T06:00:00Z",
    )
    (value,) = facts_for(sign_service, data(labs=[obs])).lab(FERRITIN)
    assert value.time == datetime(2026, 11, 19, 6, 0, tzinfo=UTC)


def test_time_falls_back_to_issued(sign_service: ServiceDefinition) -> None:
    obs = ferritin("o1", effectivePeriod={"end": "2026-11-19T07:00:00Z"}, issued="2026-11-21T06:30:00Z")
    (value,) = facts_for(sign_service, data(labs=[obs])).lab(FERRITIN)
    assert value.time == datetime(2026, 11, 21, 6, 30, tzinfo=UTC)


def test_ucum_code_is_preferred_over_unit_text(sign_service: ServiceDefinition) -> None:
    coded = ferritin("coded", valueQuantity={"value": 3, "unit": "micrograms per litre", "code": "ug/L"})
    text_only = ferritin("text", valueQuantity={"value": 4, "unit": "ng/mL"}, effectiveDateTime="2026-11-01")
    series = facts_for(sign_service, data(labs=[coded, text_only])).lab(FERRITIN)
    assert [(v.id, v.unit) for v in series] == [("coded", "ug/L"), ("text", "ng/mL")]


def test_comparator_and_missing_value(sign_service: ServiceDefinition) -> None:
    above = ferritin("above", valueQuantity={"value": 100000, "comparator": ">", "code": "ng/mL"})
    no_value = ferritin("text", valueString="haemolysed", valueQuantity=None, effectiveDateTime="2026-11-01")
    series = facts_for(sign_service, data(labs=[above, no_value])).lab(FERRITIN)
    assert [(v.id, v.value, v.comparator, v.unit) for v in series] == [
        ("above", 100000, ">", "ng/mL"),
        ("text", None, None, None),
    ]


def test_observation_with_several_codings_is_filed_under_each(sign_service: ServiceDefinition) -> None:
    obs = ferritin(
        "o1",
        code={
            "coding": [{"system": "http://loinc.org", "code": "2276-4"}, {"code": "FERR"}, {"system": "x"}]
        },
    )
    facts = facts_for(sign_service, data(labs=[obs]))
    assert set(facts.labs) == {FERRITIN, "|FERR"}
    assert facts.lab("|FERR")[0].code == "|FERR"
    assert facts.lab(FERRITIN)[0].resource is obs


def test_sandbox_prefetch_lab(sign_service: ServiceDefinition) -> None:
    body = sandbox_body()
    obs = msgspec.convert(body["prefetch"]["labs"]["entry"][0]["resource"], Resource)
    facts = facts_for(sign_service, data(labs=[obs]), body)
    (value,) = facts.lab("http://loinc.org|33914-3")
    assert (value.id, value.value, value.unit, value.time) == ("o1", 25, "mL/min/{1.73_m2}", None)


# --- patient --------------------------------------------------------------------------------------


def test_patient_in_context_is_read(sign_service: ServiceDefinition) -> None:
    patient = resource(resourceType="Patient", id="p1", gender="female", birthDate="1950-01-01")
    facts = facts_for(sign_service, data(patient=[patient]))
    assert facts.birth_date == date(1950, 1, 1)
    assert facts.gender == "female"
    assert facts.problems == []


def test_partial_birth_date_is_parsed(sign_service: ServiceDefinition) -> None:
    facts = facts_for(
        sign_service, data(patient=[resource(resourceType="Patient", id="p1", birthDate="1970")])
    )
    assert facts.birth_date == date(1970, 1, 1)
    facts = facts_for(
        sign_service, data(patient=[resource(resourceType="Patient", id="p1", birthDate="1970-06")])
    )
    assert facts.birth_date == date(1970, 6, 1)


def test_unreadable_birth_date_is_a_problem(sign_service: ServiceDefinition) -> None:
    facts = facts_for(
        sign_service, data(patient=[resource(resourceType="Patient", id="p1", birthDate="01/02/1970")])
    )
    assert facts.birth_date is None
    assert any("01/02/1970" in p for p in facts.problems)


def test_patient_with_another_id_is_ignored_with_a_problem(sign_service: ServiceDefinition) -> None:
    other = resource(resourceType="Patient", id="p2", gender="male", birthDate="2001-01-01")
    facts = facts_for(sign_service, data(patient=[other]))
    assert facts.birth_date is None
    assert facts.gender is None
    assert any("Patient/p2" in p and "ignored" in p for p in facts.problems)


# --- draft orders and selections ------------------------------------------------------------------


def test_sandbox_draft_order_is_read_with_validation_notes(sign_service: ServiceDefinition) -> None:
    facts = facts_for(sign_service, data())
    (order,) = facts.draft_orders
    assert order.id == "request-123"
    assert order.resource_type == "MedicationRequest"
    assert order.raw["status"] == "draft"
    assert "intent" not in order.raw
    assert order.raw["authoredOn"] == "2026-11-23"
    assert order.raw["subject"] == {"reference": "Patient/p1"}
    assert any("intent" in note for note in order.validation_notes)
    assert facts.problems == []


def test_strict_validation_waits_until_the_notes_are_read(
    sign_service: ServiceDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr("cds_service.facts.model.strict_notes", lambda raw: calls.append(raw["id"]) or ())
    (order,) = facts_for(sign_service, data()).draft_orders
    assert calls == []  # reading the request did not validate strictly
    assert order.validation_notes == () and order.validation_notes == ()
    assert calls == ["request-123"]  # once, when first read


def test_valid_draft_order_has_no_validation_notes(sign_service: ServiceDefinition) -> None:
    body = sandbox_body()
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["intent"] = "order"
    draft["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "349325"}]
    }
    (order,) = facts_for(sign_service, data(), body).draft_orders
    assert order.validation_notes == ()


def test_draft_order_of_another_type_has_no_notes(sign_service: ServiceDefinition) -> None:
    body = sandbox_body()
    body["context"]["draftOrders"]["entry"].append(
        {"resource": {"resourceType": "NutritionOrder", "id": "n1"}}
    )
    orders = facts_for(sign_service, data(), body).draft_orders
    assert [(o.resource_type, o.id, o.validation_notes) for o in orders][1] == ("NutritionOrder", "n1", ())


def test_draft_orders_entry_without_resource_is_a_problem(sign_service: ServiceDefinition) -> None:
    body = sandbox_body()
    body["context"]["draftOrders"]["entry"].insert(0, {"fullUrl": "urn:uuid:x"})
    body["context"]["draftOrders"]["entry"].append({"resource": {"id": "no-type"}})
    facts = facts_for(sign_service, data(), body)
    assert [o.id for o in facts.draft_orders] == ["request-123"]
    assert any("entry 0" in p for p in facts.problems)
    assert any("entry 2" in p for p in facts.problems)


@pytest.mark.parametrize(
    "element, value",
    [
        # What the sandbox sends for an R4 order once a drug is chosen (its Rx View builds it so).
        (
            "category",
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                        "code": "community",
                    }
                ]
            },
        ),
        ("status", ["draft"]),
        ("dispenseRequest", "one day"),
        ("note", {"text": "a note"}),
    ],
)
def test_a_badly_shaped_draft_element_is_no_data_problem(
    sign_service: ServiceDefinition, element: str, value: Any
) -> None:
    # The order is read from its JSON by what needs each element; a wrong shape is for explain to show.
    body = sandbox_body()
    body["context"]["draftOrders"]["entry"][0]["resource"][element] = value
    facts = facts_for(sign_service, data(), body)
    (order,) = facts.draft_orders
    assert (order.id, order.raw[element]) == ("request-123", value)
    assert facts.problems == []
    assert any(note.startswith(element) for note in order.validation_notes)


def order_select_body(selections: list[str]) -> dict[str, Any]:
    body = sandbox_body()
    body["hook"] = "order-select"
    body["context"]["selections"] = selections
    return body


def test_selection_in_draft_orders_is_fine(select_service: ServiceDefinition) -> None:
    facts = facts_for(select_service, data(), order_select_body(["MedicationRequest/request-123"]))
    assert facts.selections == ["MedicationRequest/request-123"]
    assert facts.problems == []


def test_selection_not_in_draft_orders_is_a_problem(select_service: ServiceDefinition) -> None:
    facts = facts_for(
        select_service,
        data(),
        order_select_body(["MedicationRequest/request-123", "MedicationRequest/other"]),
    )
    assert facts.selections == ["MedicationRequest/request-123", "MedicationRequest/other"]
    assert len(facts.problems) == 1
    assert "MedicationRequest/other" in facts.problems[0]


# --- parse_datetime -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T06:00:00Z", datetime(2026, 11, 20, 6, 0, tzinfo=UTC)),
        ("2026-11-20T06:00:00.123Z", datetime(2026, 11, 20, 6, 0, 0, 123000, tzinfo=UTC)),
        ("2026-11-20T07:00:00+01:00", datetime(2026, 11, 20, 6, 0, tzinfo=UTC)),
        ("2026-11-20T01:00:00-05:00", datetime(2026, 11, 20, 6, 0, tzinfo=UTC)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-11-20T06:00:00", datetime(2026, 11, 20, 6, 0, tzinfo=UTC)),
    ],
)
def test_parse_datetime(value: str, expected: datetime) -> None:
    parsed = parse_datetime(value)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is not None


def test_parse_datetime_keeps_the_offset() -> None:
    parsed = parse_datetime("2026-11-20T07:00:00+01:00")
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(hours=1)


def test_naive_time_gets_utc() -> None:
    parsed = parse_datetime("2026-11-20T06:00:00")
    assert parsed is not None
    assert parsed.tzinfo == UTC
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value", [None, "", "garbage", "2026-13", "2026-02-30", "20xx", "yesterday", "2026-11-20T25:00:00Z"]
)
def test_parse_datetime_garbage_is_none(value: str | None) -> None:
    assert parse_datetime(value) is None


def test_parse_date() -> None:
    assert parse_date("1970") == date(1970, 1, 1)
    assert parse_date("1970-06-15") == date(1970, 6, 15)
    assert parse_date("nonsense") is None
    assert parse_date(None) is None


def test_a_resource_sent_under_two_keys_is_read_once(sign_service: ServiceDefinition) -> None:
    crrt = resource(resourceType="Procedure", id="crrt-1", status="in-progress")
    other = resource(resourceType="Procedure", id="hd-1", status="completed")
    data = PatientData(
        values={"conditions": [crrt], "procedures": [crrt, other]}, problems=[], unavailable={}, fetched=[]
    )
    facts = build_facts(
        sign_service, request_from(sandbox_body()), data, now=datetime(2026, 11, 23, tzinfo=UTC)
    )
    assert [r.id for r in facts.other["Procedure"]] == ["crrt-1", "hd-1"]
