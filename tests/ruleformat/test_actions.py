"""The order-lab-test suggestion builder: what lint accepts, the FHIR it writes, and its description, worded
by rules/ruleset.yaml (`response.actions`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.config import Settings
from cds_service.pipeline import Runtime, call_service
from cds_service.ruleformat.actions import ACTIONS, DESCRIPTIONS, OrderLabTest, SuggestionContext
from tests.charts.requests import FIXTURE_NOW, draft_order, patient, request
from tests.engine.rulesdir import copy_rules, edit
from tests.engine.test_ruleset import errors, line_of

FERRITIN = {"code": "http://loinc.org|2276-4", "display": "Ferritin [Mass/volume] in Serum or Plasma"}


WORDED = {"order-lab-test": "Order {display}"}


def context(patient_id: str | None = "pat-1") -> SuggestionContext:
    return SuggestionContext(patient_id=patient_id, facts={}, draft_orders={}, descriptions=WORDED)


def test_the_builder_is_registered_under_its_rule_file_name() -> None:
    assert isinstance(ACTIONS["order-lab-test"], OrderLabTest)


@pytest.mark.parametrize(
    "arguments",
    [
        FERRITIN,
        {**FERRITIN, "note": "repeat in 24 h"},
        {"code": "http://snomed.info/sct|26604007", "display": "Complete blood count"},
    ],
)
def test_good_arguments_have_no_problems(arguments: dict[str, Any]) -> None:
    assert OrderLabTest().argument_problems(arguments, {}, {}) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"display": "Ferritin"}, "needs code: system|code"),
        ({"code": "2276-4", "display": "Ferritin"}, "needs code: system|code"),
        ({"code": 2276, "display": "Ferritin"}, "needs code: system|code"),
        ({"code": "http://loinc.org|2276-4"}, "needs display"),
        ({"code": "http://loinc.org|2276-4", "display": 5}, "needs display"),
        ({**FERRITIN, "priority": "stat"}, "does not take ['priority']"),
    ],
)
def test_bad_arguments_are_named(arguments: dict[str, Any], message: str) -> None:
    problems = OrderLabTest().argument_problems(arguments, {}, {})
    assert len(problems) == 1, problems
    assert message in problems[0]


def test_every_bad_argument_is_reported() -> None:
    problems = OrderLabTest().argument_problems({"code": "x", "when": "now"}, {}, {})
    assert len(problems) == 3, problems


@pytest.mark.parametrize(
    "arguments",
    [
        {"code": "http://loinc.org|", "display": "Ferritin"},  # no code
        {"code": "|2276-4", "display": "Ferritin"},  # no system (FHIR forbids empty strings)
        {"code": "http://loinc.org|2276-4", "display": ""},  # no display
    ],
    ids=["empty-code", "empty-system", "empty-display"],
)
def test_arguments_lint_accepts_build_a_valid_resource(arguments: dict[str, Any]) -> None:
    # Lint refuses what build() cannot make valid FHIR from: an empty code or display would raise while
    # the card is rendered, and an empty system would make a Coding with system "" (FHIR values are
    # never empty strings).
    action = OrderLabTest()
    if action.argument_problems(arguments, {}, {}):
        return
    built = action.build(arguments, context())
    assert built is not None
    coding = built[0]["resource"]["code"]["coding"][0]
    assert coding["system"] and coding["code"] and coding["display"]


def test_build_returns_one_create_action_with_a_valid_service_request() -> None:
    actions = OrderLabTest().build(FERRITIN, context("pat-1"))
    assert actions is not None and len(actions) == 1
    action = actions[0]
    assert action["type"] == "create"
    assert action["description"] == f"Order {FERRITIN['display']}"
    resource = action["resource"]
    request = ServiceRequest.model_validate(resource)
    assert request.status == "draft"
    assert request.intent == "proposal"
    assert request.subject.reference == "Patient/pat-1"
    assert resource["code"] == {
        "coding": [{"system": "http://loinc.org", "code": "2276-4", "display": FERRITIN["display"]}],
        "text": FERRITIN["display"],
    }
    assert "note" not in resource


def test_build_adds_the_note_and_a_fresh_id_each_time() -> None:
    arguments = {**FERRITIN, "note": "repeat in 24 h"}
    first = OrderLabTest().build(arguments, context())
    second = OrderLabTest().build(arguments, context())
    assert first is not None and second is not None
    assert first[0]["resource"]["note"] == [{"text": "repeat in 24 h"}]
    note = ServiceRequest.model_validate(first[0]["resource"]).note
    assert note is not None and note[0].text == "repeat in 24 h"
    assert first[0]["resource"]["id"] != second[0]["resource"]["id"]


@pytest.mark.parametrize("patient_id", [None, ""])
def test_no_patient_means_no_suggestion(patient_id: str | None) -> None:
    assert OrderLabTest().build(FERRITIN, context(patient_id)) is None


def test_without_wording_the_description_is_the_test_name() -> None:
    bare = SuggestionContext(patient_id="pat-1", facts={}, draft_orders={})
    actions = OrderLabTest().build(FERRITIN, bare)
    assert actions is not None and actions[0]["description"] == FERRITIN["display"]


def test_the_description_is_the_rule_files_template_filled() -> None:
    worded = SuggestionContext("pat-1", {}, {}, {"order-lab-test": "Draw {display} today"})
    actions = OrderLabTest().build(FERRITIN, worded)
    assert actions is not None and actions[0]["description"] == f"Draw {FERRITIN['display']} today"


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    return copy_rules(tmp_path)


async def test_the_ruleset_words_the_cards_lab_orders(rules_copy: Path) -> None:
    edit(rules_copy / "ruleset.yaml", 'order-lab-test: "Order {display}"', 'order-lab-test: "Draw {display}"')
    assert errors(rules_copy) == []
    runtime = Runtime.create(Settings(rules_dir=rules_copy))
    try:
        body = request("anakinra-order-sign", patient("hlh-no-data"), draft_order(400))
        answer = await call_service(runtime, "anakinra-order-sign", orjson.dumps(body), now=FIXTURE_NOW)
    finally:
        await runtime.aclose()
    cards = orjson.loads(answer.body)["cards"]
    creates = [
        a["description"]
        for c in cards
        for s in c.get("suggestions", [])
        for a in s["actions"]
        if a["type"] == "create"
    ]
    assert "Draw Ferritin" in creates
    assert creates and all(d.startswith("Draw ") for d in creates), creates


def test_an_unknown_placeholder_in_an_action_description_is_a_lint_error_at_its_line(
    rules_copy: Path,
) -> None:
    path = rules_copy / "ruleset.yaml"
    edit(path, 'order-lab-test: "Order {display}"', 'order-lab-test: "Order {test}"')
    found = errors(rules_copy)
    assert any(
        p.startswith(f"{path}:{line_of(path, 'Order {test}')}:") and "unknown placeholder(s) ['test']" in p
        for p in found
    ), found


def test_a_description_for_a_builder_that_takes_none_is_a_lint_error_at_its_line(rules_copy: Path) -> None:
    path = rules_copy / "ruleset.yaml"
    edit(
        path,
        '    order-lab-test: "Order {display}"',
        '    order-lab-test: "Order {display}"\n    order-it: "x"',
    )
    found = errors(rules_copy)
    assert set(DESCRIPTIONS) == {"order-lab-test"}
    assert any(
        p.startswith(f"{path}:{line_of(path, 'order-it:')}:") and "'order-it' (known: order-lab-test)" in p
        for p in found
    ), found


def test_a_rule_ordering_a_test_the_ruleset_does_not_word_is_a_lint_error_at_the_suggestion(
    rules_copy: Path,
) -> None:
    edit(rules_copy / "ruleset.yaml", '    order-lab-test: "Order {display}"\n', "    {}\n")
    found = errors(rules_copy)
    path = rules_copy / "ferritin-rise.yaml"
    assert any(
        p.startswith(f"{path}:{line_of(path, 'action: order-lab-test')}:")
        and "order-lab-test takes its description from ruleset.yaml" in p
        for p in found
    ), found
