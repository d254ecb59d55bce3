"""The update-draft-order suggestion builder: the draft rewritten as a bag build, valid FHIR R4."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.facts.named import Fact, FactSpec
from cds_service.ruleformat.actions import ACTIONS, SuggestionContext, UpdateDraftOrder, updated_order, valid
from tests.conftest import ROOT

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LIGHT = "Protect the bag and the tubing from light."
# The order's wording and units, as a calculation writes them into a build from its rule file.
BAG_ORDER = {
    "units": {"dose": "mg", "volume": "mL", "rate": "mL/h", "interval": "h"},
    "unit_text": "mg",
    "wording": {
        "medication": "{name} {dose_per_bag} {dose_unit} in {diluent} {volume} mL",
        "dosage": "{name} {daily_dose} {dose_unit}/day continuous IV infusion: {dose_per_bag} {dose_unit} in "
        "{volume} mL {diluent} every {interval} h at {rate} mL/h",
        "change": "Change the order to {build}",
    },
}
DOSE_ORDER = {
    "units": {"dose": "mg", "interval": "h"},
    "unit_text": "mg",
    "wording": {
        "dosage": "{name} {dose} {dose_unit} {route} every {interval} h",
        "change": "Change to {build}",
    },
}
BUILD = {
    "daily_dose": 2400.0,
    "interval": 8.0,
    "dose_per_bag": 800.0,
    "volume": 250.0,
    "rate": 31.25,
    "concentration": 3.2,
    "diluent": "sodium chloride 0.9%",
    "instruction": LIGHT,
    "description": "2400 mg/day as 800 mg in 250 mL NS q8h at 31.25 mL/h (3.2 mg/mL)",
    "order": "MedicationRequest/draft-1",
    **BAG_ORDER,
}
SHAPE_A = {
    "resourceType": "MedicationRequest",
    "id": "draft-1",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": "Patient/p1"},
    "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "12345", "display": "drug"}]},
    "dosageInstruction": [
        {
            "text": "drug 2400 mg/day continuous IV infusion",
            "route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]},
            "doseAndRate": [{"rateQuantity": {"value": 2400, "unit": "mg/d", "code": "mg/d"}}],
        }
    ],
}
SPECS = {
    "x.build": FactSpec("x.build", "build", None, "a build"),
    "x.text": FactSpec("x.text", "text", None, "a text"),
}


def context(data: dict[str, Any] | None = BUILD, draft: dict[str, Any] = SHAPE_A) -> SuggestionContext:
    fact = Fact("x.build", "a build", data=data)
    return SuggestionContext("p1", {"x.build": fact}, {"MedicationRequest/draft-1": draft})


def test_registered_under_its_rule_file_name() -> None:
    assert isinstance(ACTIONS["update-draft-order"], UpdateDraftOrder)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "needs build"),
        ({"build": "x.nothing"}, "needs build"),
        ({"build": "x.text"}, "not a build fact"),
        ({"build": "x.build", "dose": 5}, "does not take ['dose']"),
    ],
)
def test_lint_names_bad_arguments(arguments: dict[str, Any], message: str) -> None:
    problems = UpdateDraftOrder().argument_problems(arguments, {}, SPECS)
    assert len(problems) == 1 and message in problems[0], problems


def test_a_build_fact_passes_lint() -> None:
    assert UpdateDraftOrder().argument_problems({"build": "x.build"}, {}, SPECS) == []


def test_the_update_keeps_the_draft_id_and_is_valid_r4() -> None:
    actions = UpdateDraftOrder().build({"build": "x.build"}, context())
    assert actions is not None and len(actions) == 1
    action = actions[0]
    assert action["type"] == "update"
    resource = action["resource"]
    MedicationRequest.model_validate(resource)
    assert resource["id"] == "draft-1"
    assert resource["subject"] == {"reference": "Patient/p1"}
    assert "medicationCodeableConcept" not in resource
    assert resource["medicationReference"]["reference"] == "#bag"


def test_the_bag_is_a_contained_medication_with_the_drug_strength_and_the_diluent() -> None:
    resource = updated_order(SHAPE_A, BUILD)
    (bag,) = resource["contained"]
    drug, diluent = bag["ingredient"]
    assert drug["itemCodeableConcept"]["coding"][0]["code"] == "12345"
    assert drug["strength"]["numerator"] == {
        "value": 800.0,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }
    assert drug["strength"]["denominator"]["value"] == 250.0
    assert diluent == {"itemCodeableConcept": {"text": "sodium chloride 0.9%"}, "isActive": False}


def test_dose_rate_interval_and_light_protection_are_in_the_dosage() -> None:
    (dosage,) = updated_order(SHAPE_A, BUILD)["dosageInstruction"]
    assert dosage["timing"] == {"repeat": {"frequency": 1, "period": 8.0, "periodUnit": "h"}}
    (dose_and_rate,) = dosage["doseAndRate"]
    assert dose_and_rate["doseQuantity"]["value"] == 800.0
    assert dose_and_rate["rateQuantity"]["value"] == 31.25
    assert dose_and_rate["rateQuantity"]["code"] == "mL/h"
    assert dosage["additionalInstruction"] == [{"text": LIGHT}]
    assert "2400 mg/day" in dosage["text"]
    assert dosage["route"]["coding"][0]["code"] == "47625008"


def test_a_rate_is_written_to_two_decimals() -> None:
    (dosage,) = updated_order(SHAPE_A, {**BUILD, "interval": 6.0, "volume": 100.0, "rate": 100 / 6})[
        "dosageInstruction"
    ]
    assert dosage["doseAndRate"][0]["rateQuantity"]["value"] == 16.67


def test_a_bag_order_keeps_its_drug_coding_from_the_contained_medication() -> None:
    shape_b = {
        "resourceType": "MedicationRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "contained": [
            {
                "resourceType": "Medication",
                "id": "old",
                "ingredient": [{"itemCodeableConcept": {"text": "drug"}, "isActive": True}],
            }
        ],
        "medicationReference": {"reference": "#old"},
    }
    resource = updated_order(shape_b, BUILD)
    MedicationRequest.model_validate(resource)
    bag = next(c for c in resource["contained"] if c["id"] == "bag")
    assert bag["ingredient"][0]["itemCodeableConcept"] == {"text": "drug"}


def test_the_draft_itself_is_not_changed() -> None:
    before = repr(SHAPE_A)
    updated_order(SHAPE_A, BUILD)
    assert repr(SHAPE_A) == before


@pytest.mark.parametrize(
    "ctx",
    [
        context(data=None),
        context(data={k: v for k, v in BUILD.items() if k != "rate"}),
        context(data={**BUILD, "order": "MedicationRequest/other"}),
        context(data={k: v for k, v in BUILD.items() if k != "wording"}),
        context(data={**BUILD, "wording": {"medication": "{name}", "change": "{build}"}}),
        context(data={**BUILD, "units": {"dose": "mg", "volume": "mL", "interval": "h"}}),
    ],
    ids=["no-build", "incomplete-build", "unknown-draft", "no-wording", "no-dosage-text", "no-rate-unit"],
)
def test_no_suggestion_without_a_complete_build_for_a_known_draft(ctx: SuggestionContext) -> None:
    assert UpdateDraftOrder().build({"build": "x.build"}, ctx) is None


def test_an_invalid_resource_is_refused_not_sent() -> None:
    bad = updated_order(SHAPE_A, BUILD)
    bad["dosageInstruction"][0]["timing"] = {"repeat": {"period": "eight"}}
    with pytest.raises(ValueError):
        valid(MedicationRequest, bad)


def test_a_shape_already_proven_valid_is_not_validated_again() -> None:
    calls = []

    class Counting:
        @staticmethod
        def model_validate(resource: dict[str, Any]) -> None:
            calls.append(resource["id"])

    first = {**updated_order(SHAPE_A, BUILD), "id": "a"}
    assert valid(Counting, first) is first
    valid(Counting, {**first, "id": "b"})  # only the id differs
    valid(Counting, {**first, "status": "active"})
    assert calls == ["a", "a"]


# --- the rewritten order keeps every element it does not deliberately change -------------------------------

ORDERS = sorted((ROOT / "fhir_fixtures" / "orders").glob("*.json"))
UNIT_DOSE = {
    "form": "dose",
    "route": "sc",
    "route_coding": {"system": "http://snomed.info/sct", "code": "34206005", "display": "subcutaneous"},
    "route_label": "subcutaneous",
    "dose": 100.0,
    "interval": 24.0,
    "daily_dose": 100.0,
    "description": "100 mg subcutaneous every 24 h",
    "order": "MedicationRequest/draft-1",
    **DOSE_ORDER,
}
# What a rewrite deliberately changes: the medication, and the first dosage line's text, dose and rate,
# and schedule (a unit dose also its route). The count of doses is rescaled, instructions only appended.
_SCHEDULE_KEYS = {"frequency", "frequencyMax", "period", "periodMax", "periodUnit", "duration"}
_SCHEDULE_KEYS |= {
    "durationMax",
    "durationUnit",
    "dayOfWeek",
    "timeOfDay",
    "when",
    "offset",
    "count",
    "countMax",
}


def _deliberate(path: tuple[Any, ...], unit_dose: bool) -> bool:
    if path[:1] in (("medicationCodeableConcept",), ("medicationReference",), ("contained",)):
        return True
    if path[:2] != ("dosageInstruction", 0):
        return False
    rest = path[2:]
    if rest[:1] in (("text",), ("doseAndRate",), ("additionalInstruction",)):
        return True
    if unit_dose and rest[:1] == ("route",):
        return True
    if rest[:2] in (("timing", "code"), ("timing", "event")):
        return True
    return rest[:2] == ("timing", "repeat") and len(rest) > 2 and rest[2] in _SCHEDULE_KEYS


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _leaves(item, (*path, key)).items()}
    if isinstance(value, list) and value:
        return {k: v for index, item in enumerate(value) for k, v in _leaves(item, (*path, index)).items()}
    return {path: value}


def _lookup(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _kept_everything_else(draft: dict[str, Any], rewritten: dict[str, Any], unit_dose: bool) -> None:
    for path, leaf in _leaves(draft).items():
        if _deliberate(path, unit_dose) or leaf in ({}, []):  # an empty element holds nothing to keep
            continue
        assert _lookup(rewritten, path) == leaf, path
    # Contained resources other than the medication the order named are kept; instructions are kept.
    named = (draft.get("medicationReference") or {}).get("reference", "")
    others = [c for c in draft.get("contained", []) if f"#{c.get('id')}" != named and c.get("id") != "bag"]
    assert all(c in rewritten.get("contained", []) for c in others)
    for instruction in (draft.get("dosageInstruction") or [{}])[0].get("additionalInstruction", []):
        assert instruction in rewritten["dosageInstruction"][0]["additionalInstruction"]


extras = st.fixed_dictionaries(
    {},
    optional={
        "note": st.just([{"text": "Planned 7-day course"}]),
        "identifier": st.just([{"system": "https://ehr.example/orders", "value": "A-1"}]),
        "encounter": st.just({"reference": "Encounter/e1"}),
        "authoredOn": st.just("2026-11-23T10:00:00Z"),
        "requester": st.just({"reference": "Practitioner/pr1"}),
        "priority": st.sampled_from(["routine", "urgent", "stat"]),
        "reasonCode": st.just([{"text": "macrophage activation syndrome"}]),
        "dispenseRequest": st.just({"expectedSupplyDuration": {"value": 7, "unit": "d", "code": "d"}}),
        "extension": st.just([{"url": "https://ehr.example/ext/approved-by", "valueString": "rheumatology"}]),
        "priorPrescription": st.just({"reference": "MedicationRequest/old"}),
    },
)
dosage_extras = st.fixed_dictionaries(
    {},
    optional={
        "sequence": st.just(1),
        "patientInstruction": st.just("Report fever"),
        "site": st.just({"text": "left forearm"}),
        "method": st.just({"text": "infusion pump"}),
        "additionalInstruction": st.just([{"text": "Do not interrupt"}]),
        "maxDosePerPeriod": st.just(
            {"numerator": {"value": 2400, "unit": "mg"}, "denominator": {"value": 1, "unit": "d"}}
        ),
    },
)
bounds = st.sampled_from(
    [
        {},
        {"boundsPeriod": {"start": "2026-11-23T12:00:00Z", "end": "2026-11-30T12:00:00Z"}},
        {"boundsDuration": {"value": 7, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}},
    ]
)  # bounds[x] is a choice: at most one of them
repeat_extras = st.builds(
    lambda bound, times: {**bound, **times},
    bounds,
    st.fixed_dictionaries({}, optional={"timeOfDay": st.just(["08:00:00"])}),
)


def _with_extras(
    order: dict[str, Any],
    top: dict[str, Any],
    dosage: dict[str, Any],
    repeat: dict[str, Any],
    second_line: bool,
) -> dict[str, Any]:
    # The fixture orders leave `subject` to the playground, which names the chosen patient.
    draft = {**copy.deepcopy(order), **top, "id": "draft-1", "subject": {"reference": "Patient/p1"}}
    lines = draft.setdefault("dosageInstruction", [{}])
    first = {**lines[0], **dosage}
    timing = first.setdefault("timing", {})
    timing["repeat"] = {**(timing.get("repeat") or {}), **repeat}
    lines[0] = first
    if second_line:
        lines.append({"sequence": 2, "text": "then reassess"})
    return draft


@pytest.mark.parametrize("path", ORDERS, ids=[p.stem for p in ORDERS])
@pytest.mark.parametrize("build", [BUILD, UNIT_DOSE], ids=["bag", "unit-dose"])
@settings(max_examples=25, deadline=None)
@given(top=extras, dosage=dosage_extras, repeat=repeat_extras, second_line=st.booleans())
def test_a_rewrite_keeps_every_element_it_does_not_change(
    path: Path,
    build: dict[str, Any],
    top: dict[str, Any],
    dosage: dict[str, Any],
    repeat: dict[str, Any],
    second_line: bool,
) -> None:
    draft = _with_extras(orjson.loads(path.read_bytes()), top, dosage, repeat, second_line)
    rewritten = updated_order(draft, build, old_interval=8)
    MedicationRequest.model_validate(rewritten)
    _kept_everything_else(draft, rewritten, unit_dose=build is UNIT_DOSE)


def test_the_planned_stop_is_kept() -> None:
    bounded = copy.deepcopy(SHAPE_A)
    bounds = {"start": "2026-11-23T12:00:00Z", "end": "2026-11-30T12:00:00Z"}
    bounded["dosageInstruction"][0]["timing"] = {"repeat": {"boundsPeriod": bounds}}
    (dosage,) = updated_order(bounded, BUILD)["dosageInstruction"]
    assert dosage["timing"]["repeat"] == {
        "boundsPeriod": bounds,
        "frequency": 1,
        "period": 8.0,
        "periodUnit": "h",
    }


def test_a_count_of_doses_is_rescaled_to_the_same_duration_and_the_old_timing_code_goes() -> None:
    counted = copy.deepcopy(SHAPE_A)
    counted["dosageInstruction"][0]["timing"] = {"code": {"text": "Q6H"}, "repeat": {"count": 12}}
    timing = updated_order(counted, BUILD, old_interval=6)["dosageInstruction"][0]["timing"]
    assert timing == {"repeat": {"count": 9, "frequency": 1, "period": 8.0, "periodUnit": "h"}}
    # Without the old interval the count cannot be rescaled, and is not kept as a wrong one.
    assert "count" not in updated_order(counted, BUILD)["dosageInstruction"][0]["timing"]["repeat"]


def test_the_light_protection_is_added_once() -> None:
    protected = copy.deepcopy(SHAPE_A)
    protected["dosageInstruction"][0]["additionalInstruction"] = [
        {"text": LIGHT},
        {"text": "Do not interrupt"},
    ]
    (dosage,) = updated_order(protected, BUILD)["dosageInstruction"]
    assert dosage["additionalInstruction"] == [{"text": LIGHT}, {"text": "Do not interrupt"}]


def test_a_unit_dose_writes_the_drug_dose_interval_and_route() -> None:
    bag = orjson.loads((ROOT / "fhir_fixtures" / "orders" / "iv-bag-800-mg-250-ml-q8h.json").read_bytes())
    resource = updated_order({**bag, "id": "draft-1", "subject": {"reference": "Patient/p1"}}, UNIT_DOSE)
    MedicationRequest.model_validate(resource)
    assert "contained" not in resource and "medicationReference" not in resource
    assert resource["medicationCodeableConcept"]["coding"][0]["code"] == "72435"
    (dosage,) = resource["dosageInstruction"]
    assert dosage["route"] == {"text": "subcutaneous", "coding": [UNIT_DOSE["route_coding"]]}
    assert dosage["doseAndRate"] == [
        {"doseQuantity": {"value": 100.0, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}
    ]
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 24.0, "periodUnit": "h"}
    assert dosage["text"] == "anakinra 100 mg subcutaneous every 24 h"


def order_facts(**values: Any) -> dict[str, Fact]:
    facts = {"order.present": Fact("order.present", True, evidence=("MedicationRequest/draft-1",))}
    facts.update({f"order.{name}": Fact(f"order.{name}", value) for name, value in values.items()})
    return facts


@pytest.mark.parametrize(
    ("build", "order", "offered"),
    [
        # The draft already is this bag: no suggestion equal to it.
        (
            BUILD,
            {
                "bag_described": True,
                "daily_dose": 2400,
                "dose_per_bag": 800,
                "bag_volume": 250,
                "interval": 8,
            },
            False,
        ),
        # The same dose in another bag is a change.
        (
            BUILD,
            {
                "bag_described": True,
                "daily_dose": 2400,
                "dose_per_bag": 800,
                "bag_volume": 100,
                "interval": 8,
            },
            True,
        ),
        # A total daily dose without a bag gets its build written in.
        (BUILD, {"bag_described": False, "daily_dose": 2400}, True),
        (UNIT_DOSE, {"route": "sc", "dose_per_bag": 100, "interval": 24}, False),
        (UNIT_DOSE, {"route": "sc", "dose_per_bag": 100, "interval": 48}, True),
        (UNIT_DOSE, {"route": "iv", "daily_dose": 100}, True),
    ],
)
def test_a_suggestion_never_equals_the_order_it_replaces(
    build: dict[str, Any], order: dict[str, Any], offered: bool
) -> None:
    fact = Fact("x.build", "a build", data=build)
    ctx = SuggestionContext(
        "p1", {"x.build": fact, **order_facts(**order)}, {"MedicationRequest/draft-1": SHAPE_A}
    )
    assert (UpdateDraftOrder().build({"build": "x.build"}, ctx) is not None) is offered


def test_the_order_is_worded_and_measured_as_the_build_says_not_in_a_unit_of_the_engine() -> None:
    """The wording templates and units come with the build (from the rule files): a drug dosed in
    international units is written in them, with the rule file's words."""
    build = {
        **BUILD,
        "units": {"dose": "[iU]", "volume": "mL", "rate": "mL/h", "interval": "h"},
        "unit_text": "IU",
        "wording": {
            "medication": "{name}: {dose_per_bag} {dose_unit} / {volume} mL {diluent}",
            "dosage": "{name} {daily_dose} {dose_unit} daily; {dose_per_bag} {dose_unit} q{interval}h, {rate} mL/h",
            "change": "Rewrite as {build}",
        },
    }
    actions = UpdateDraftOrder().build({"build": "x.build"}, context(data=build))
    assert actions is not None
    (action,) = actions
    assert action["description"] == f"Rewrite as {BUILD['description']}"
    resource = action["resource"]
    (bag,) = resource["contained"]
    assert bag["code"]["text"] == "drug: 800 IU / 250 mL sodium chloride 0.9%"
    assert resource["medicationReference"]["display"] == bag["code"]["text"]
    assert bag["ingredient"][0]["strength"]["numerator"]["code"] == "[iU]"
    (dosage,) = resource["dosageInstruction"]
    assert dosage["text"] == "drug 2400 IU daily; 800 IU q8h, 31.25 mL/h"
    assert dosage["doseAndRate"][0]["doseQuantity"]["code"] == "[iU]"


def test_a_bag_without_a_diluent_leaves_no_double_space() -> None:
    resource = updated_order(SHAPE_A, {**BUILD, "diluent": ""})
    assert resource["contained"][0]["code"]["text"] == "drug 800 mg in 250 mL"
    assert resource["dosageInstruction"][0]["text"] == (
        "drug 2400 mg/day continuous IV infusion: 800 mg in 250 mL every 8 h at 31.25 mL/h"
    )
