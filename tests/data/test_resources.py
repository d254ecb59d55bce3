"""decode(): Bundles and single resources; a resource with a badly shaped element read as far as it can be,
the element reported; entries that hold no resource reported and skipped; OperationOutcomes as problems."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cds_service.data.resources import Decoded, decode

WHERE = "prefetch.labs"


def observation(ident: str, value: Any = 1.5, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2276-4", "display": "Ferritin"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-20T06:00:00Z",
        "valueQuantity": {
            "value": value,
            "unit": "ng/mL",
            "system": "http://unitsofmeasure.org",
            "code": "ng/mL",
        },
    }
    resource.update(extra)
    return resource


def bundle(*resources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"urn:x:{i}", "resource": r, "search": {"mode": "match"}}
            for i, r in enumerate(resources)
        ],
    }
    out.update(extra)
    return out


def outcome(
    diagnostics: str = "too many results, page truncated", severity: str = "warning"
) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": "too-costly", "diagnostics": diagnostics}],
    }


def run(value: dict[str, Any] | list[Any] | bytes, where: str = WHERE) -> Decoded:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return decode(raw, where)


def test_searchset_of_observations_decodes() -> None:
    decoded = run(bundle(observation("o1", 2000), observation("o2", 9000.5)))
    assert decoded.problems == []
    assert decoded.next_url is None
    assert [r.id for r in decoded.resources] == ["o1", "o2"]
    first = decoded.resources[0]
    assert first.resourceType == "Observation"
    assert first.status == "final"
    assert first.effectiveDateTime == "2026-11-20T06:00:00Z"
    assert first.valueQuantity is not None
    assert first.valueQuantity.value == 2000
    assert first.valueQuantity.code == "ng/mL"
    assert first.code is not None and first.code.coding is not None
    assert first.code.coding[0].code == "2276-4"
    # Elements the facts never read are not decoded at all, whatever their shape.
    assert not hasattr(first, "subject")
    assert decoded.resources[1].valueQuantity is not None
    assert decoded.resources[1].valueQuantity.value == 9000.5


def test_unknown_fields_are_ignored() -> None:
    obs = observation("o1", note=[{"text": "haemolysed"}], meta={"versionId": "3"})
    decoded = run(bundle(obs))
    assert [r.id for r in decoded.resources] == ["o1"]
    assert decoded.problems == []


def test_empty_bundle_and_bundle_without_entries() -> None:
    assert run(bundle()).resources == []
    decoded = run({"resourceType": "Bundle"})
    assert decoded.resources == []
    assert decoded.problems == []


def test_single_resource_decodes() -> None:
    decoded = run(
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1970"}, "prefetch.patient"
    )
    assert decoded.problems == []
    (patient,) = decoded.resources
    assert (patient.resourceType, patient.id, patient.gender, patient.birthDate) == (
        "Patient",
        "p1",
        "female",
        "1970",
    )


def test_an_unreadable_element_is_left_out_and_named_and_the_rest_is_read() -> None:
    decoded = run(bundle(observation("o1"), observation("o2", "high"), observation("o3")))
    assert [r.id for r in decoded.resources] == ["o1", "o2", "o3"]
    second = decoded.resources[1]
    assert second.valueQuantity is not None and second.valueQuantity.value is None
    assert second.valueQuantity.code == "ng/mL"
    assert second.code is not None and second.code.coding is not None
    assert decoded.problems == [
        f"{WHERE}: Observation/o2: valueQuantity.value could not be read and was left out"
    ]


def test_several_bad_resources_are_each_reported() -> None:
    decoded = run(bundle(observation("o0", "high"), observation("o1"), observation("o2", status=["final"])))
    assert [r.id for r in decoded.resources] == ["o0", "o1", "o2"]
    assert decoded.resources[2].status is None
    assert len(decoded.problems) == 2
    assert "Observation/o0: valueQuantity.value" in decoded.problems[0]
    assert "Observation/o2: status" in decoded.problems[1]


def test_an_object_where_fhir_has_an_array_is_read_as_one_item_and_is_no_problem() -> None:
    # The CDS Hooks sandbox sends MedicationRequest.category so; here in an element the facts read.
    single = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}
        ]
    }
    coding = {"system": "http://loinc.org", "code": "2276-4"}
    decoded = run(bundle(observation("o1", interpretation=single, code={"coding": coding})))
    assert decoded.problems == []
    (read,) = decoded.resources
    assert read.interpretation is not None and read.interpretation[0].coding is not None
    assert read.interpretation[0].coding[0].code == "H"
    assert read.code is not None and read.code.coding is not None and read.code.coding[0].code == "2276-4"


def test_a_bad_item_of_an_array_is_left_out_and_the_other_items_kept() -> None:
    decoded = run(bundle(observation("o1", interpretation=[{"text": 5}, "H", {"text": "high"}])))
    (read,) = decoded.resources
    assert read.interpretation is not None
    assert [i.text for i in read.interpretation] == [None, "high"]
    (problem,) = decoded.problems
    assert "interpretation[0].text, interpretation[1] could not be read and were left out" in problem


def test_elements_the_facts_do_not_read_never_make_a_problem() -> None:
    odd = observation("o1", category={"coding": "laboratory"}, subject="Patient/p1", component=7)
    decoded = run(bundle(odd))
    assert decoded.problems == []
    assert [r.id for r in decoded.resources] == ["o1"]


def test_bad_entry_does_not_lose_the_next_link() -> None:
    value = bundle(
        observation("o1", "high"),
        observation("o2"),
        link=[{"relation": "next", "url": "https://fhir.example/Observation?page=2"}],
    )
    decoded = run(value)
    assert [r.id for r in decoded.resources] == ["o1", "o2"]
    assert decoded.next_url == "https://fhir.example/Observation?page=2"


def test_entry_that_is_not_an_object_is_reported_and_the_others_are_kept() -> None:
    value = bundle(observation("o1"), observation("o2"))
    value["entry"].insert(1, "Observation/o9")
    decoded = run(value)
    assert [r.id for r in decoded.resources] == ["o1", "o2"]
    assert len(decoded.problems) == 1
    assert "entry 1" in decoded.problems[0]


def test_entry_with_malformed_search_keeps_its_resource() -> None:
    value = bundle(observation("o1"), observation("o2"), observation("o3"))
    value["entry"][1]["search"] = "match"
    decoded = run(value)
    # The search element is the server's bookkeeping; the result itself is whole.
    assert [r.id for r in decoded.resources] == ["o1", "o2", "o3"]
    assert decoded.problems == []


def test_entry_whose_resource_is_not_a_resource_is_reported_by_index() -> None:
    value = bundle(observation("o1"), observation("o2"), observation("o3"))
    value["entry"][1]["resource"] = {"id": "o2", "status": "final"}
    decoded = run(value)
    assert [r.id for r in decoded.resources] == ["o1", "o3"]
    (problem,) = decoded.problems
    assert WHERE in problem
    assert "entry 1" in problem


def test_malformed_bundle_links_raise_value_error_naming_where() -> None:
    value = bundle(observation("o1"), link="https://fhir.example/next")
    with pytest.raises(ValueError) as caught:
        run(value)
    assert WHERE in str(caught.value)


def test_entries_without_resource_are_skipped() -> None:
    value = bundle(observation("o1"))
    value["entry"].append({"fullUrl": "urn:x:empty"})
    value["entry"].append({"resource": None})
    decoded = run(value)
    assert [r.id for r in decoded.resources] == ["o1"]
    assert decoded.problems == []


def test_operation_outcome_entry_is_a_problem_not_a_resource() -> None:
    value = bundle(observation("o1"), outcome("Search was truncated to 500 results"))
    value["entry"][1]["search"] = {"mode": "outcome"}
    decoded = run(value)
    assert [r.resourceType for r in decoded.resources] == ["Observation"]
    (problem,) = decoded.problems
    assert "Search was truncated to 500 results" in problem
    assert "warning" in problem
    assert WHERE in problem


def test_operation_outcome_entry_without_search_mode_is_still_a_problem() -> None:
    decoded = run(bundle(outcome("server busy")))
    assert decoded.resources == []
    assert any("server busy" in p for p in decoded.problems)


def test_bare_operation_outcome_is_a_problem_not_a_resource() -> None:
    decoded = run(outcome("Patient/p1 not found", severity="error"))
    assert decoded.resources == []
    (problem,) = decoded.problems
    assert "Patient/p1 not found" in problem
    assert "error" in problem


def test_operation_outcome_text_falls_back_to_details_then_code() -> None:
    value = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "processing", "details": {"text": "details text"}},
            {"severity": "error", "code": "not-found"},
        ],
    }
    problems = run(value).problems
    assert len(problems) == 2
    assert "details text" in problems[0]
    assert "not-found" in problems[1]


def test_empty_operation_outcome_is_a_problem() -> None:
    decoded = run({"resourceType": "OperationOutcome"})
    assert decoded.resources == []
    assert len(decoded.problems) == 1
    assert "empty OperationOutcome" in decoded.problems[0]


def test_next_link_is_returned() -> None:
    value = bundle(
        observation("o1"),
        link=[
            {"relation": "self", "url": "https://fhir.example/Observation?page=1"},
            {"relation": "next", "url": "https://fhir.example/Observation?page=2"},
        ],
    )
    assert run(value).next_url == "https://fhir.example/Observation?page=2"


def test_no_next_link_without_relation_next() -> None:
    value = bundle(observation("o1"), link=[{"relation": "self", "url": "https://fhir.example/Observation"}])
    assert run(value).next_url is None


@pytest.mark.parametrize("raw", [b"", b"{not json", b"<Bundle/>", b'{"resourceType": "Bundle"'])
def test_non_json_raises_value_error_naming_where(raw: bytes) -> None:
    with pytest.raises(ValueError) as caught:
        decode(raw, "prefetch.medications")
    assert "prefetch.medications" in str(caught.value)


@pytest.mark.parametrize(
    "value", [{}, {"id": "p1"}, {"resourceType": None}, [], "Patient", {"resourceType": 3}]
)
def test_json_without_resource_type_raises_value_error_naming_where(value: Any) -> None:
    with pytest.raises(ValueError) as caught:
        run(value, "prefetch.patient")
    assert "prefetch.patient" in str(caught.value)


def test_single_resource_with_wrong_field_type_is_read_without_it() -> None:
    decoded = run(
        {"resourceType": "Patient", "id": "p1", "gender": 1, "birthDate": "1950-01-01"}, "prefetch.patient"
    )
    (patient,) = decoded.resources
    assert (patient.gender, patient.birthDate) == (None, "1950-01-01")
    assert decoded.problems == ["prefetch.patient: Patient/p1: gender could not be read and was left out"]


def test_single_resource_with_a_bad_resource_type_raises_value_error_naming_where() -> None:
    with pytest.raises(ValueError) as caught:
        run({"resourceType": 7, "id": "p1"}, "prefetch.patient")
    assert "prefetch.patient" in str(caught.value)


def test_entry_marked_outcome_that_is_not_an_operation_outcome_is_reported() -> None:
    value = bundle(observation("o1"), observation("o2"))
    value["entry"][1]["search"] = {"mode": "outcome"}
    decoded = run(value)
    assert [r.id for r in decoded.resources] == ["o1"]
    (problem,) = decoded.problems
    assert WHERE in problem
    assert "outcome" in problem and "Observation" in problem


def test_entry_marked_outcome_is_reported_on_the_slow_path_too() -> None:
    value = bundle(observation("o1"), observation("o2"), observation("o3", "high"))
    value["entry"][1]["search"] = {"mode": "outcome"}
    decoded = run(value)
    assert [r.id for r in decoded.resources] == ["o1", "o3"]
    assert len(decoded.problems) == 2
    assert "Observation/o3: valueQuantity.value" in decoded.problems[0]
    assert "search outcome" in decoded.problems[1]


def test_include_mode_entries_are_kept() -> None:
    value = bundle(observation("o1"), {"resourceType": "Patient", "id": "p1"})
    value["entry"][1]["search"] = {"mode": "include"}
    assert [r.resourceType for r in run(value).resources] == ["Observation", "Patient"]
