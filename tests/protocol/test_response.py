"""Response models: invalid cards cannot be built, and what is built serialises to a valid body."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from cds_service.protocol.response import (
    SUMMARY_MAX,
    Action,
    Card,
    CardsResponse,
    Coding,
    Link,
    OverrideReason,
    Source,
    Suggestion,
)
from tests.invariants import response_problems

SOURCE = Source(label="Anakinra order check")


def card(**changes: Any) -> Card:
    fields: dict[str, Any] = {"summary": "Ferritin is rising", "indicator": "warning", "source": SOURCE}
    fields.update(changes)
    return Card(**fields)


def body_of(*cards: Card) -> dict[str, Any]:
    raw = CardsResponse(cards=list(cards)).body()
    assert b"null" not in raw
    parsed: dict[str, Any] = orjson.loads(raw)
    assert response_problems(parsed) == []
    return parsed


def is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def full_card() -> Card:
    return card(
        detail="Ferritin rose from 2,000 to 9,000 ng/mL in 48 h.",
        source=Source(
            label="MAS guideline",
            url="https://example.org/mas",
            topic=Coding(code="ferritin", system="http://example.org/topics", display="Ferritin"),
        ),
        suggestions=[
            Suggestion(
                label="Increase the anakinra dose",
                isRecommended=True,
                actions=[
                    Action(
                        type="update",
                        description="Raise to 4 mg/kg/h",
                        resource={
                            "resourceType": "MedicationRequest",
                            "id": "request-123",
                            "status": "draft",
                        },
                    ),
                    Action(
                        type="delete",
                        description="Remove the old order",
                        resourceId=["MedicationRequest/old"],
                    ),
                    Action(
                        type="create",
                        description="Order ferritin",
                        resource={"resourceType": "ServiceRequest"},
                    ),
                ],
            ),
            Suggestion(label="Keep the dose"),
        ],
        selectionBehavior="at-most-one",
        overrideReasons=[
            OverrideReason(code="not-mas", system="http://example.org/override", display="Not MAS")
        ],
        links=[
            Link(label="Guideline", url="https://example.org/guideline", type="absolute"),
            Link(
                label="Dose calculator", url="https://example.org/launch", type="smart", appContext="dose=4"
            ),
        ],
        extension={"example.org/rule": "ferritin-trend"},
    )


# --- construction -------------------------------------------------------------------------------


def test_minimal_card_gets_a_uuid() -> None:
    built = card()
    assert is_uuid(built.uuid)
    assert card().uuid != built.uuid


def test_given_uuid_is_kept() -> None:
    fixed = "0b5e8ad4-7d1c-4a4b-9c1b-4f7b0f5d1d2e"
    assert card(uuid=fixed).uuid == fixed


def test_summary_of_139_characters_is_accepted() -> None:
    assert SUMMARY_MAX == 139
    summary = "x" * 139
    assert card(summary=summary).summary == summary
    body_of(card(summary=summary))


@pytest.mark.parametrize("summary", ["x" * 140, "x" * 500, ""])
def test_summary_out_of_bounds_is_rejected(summary: str) -> None:
    with pytest.raises(ValidationError):
        card(summary=summary)


@pytest.mark.parametrize("indicator", ["hard-stop", "Warning", "success", ""])
def test_unknown_indicator_is_rejected(indicator: str) -> None:
    with pytest.raises(ValidationError):
        card(indicator=indicator)


@pytest.mark.parametrize("indicator", ["info", "warning", "critical"])
def test_known_indicators_are_accepted(indicator: str) -> None:
    assert card(indicator=indicator).indicator == indicator


@pytest.mark.parametrize("source", [{}, {"url": "https://example.org"}, {"label": ""}])
def test_source_needs_a_label(source: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        card(source=source)


def test_missing_source_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Card(summary="s", indicator="info")  # type: ignore[call-arg]


def test_suggestions_without_selection_behavior_are_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        card(suggestions=[Suggestion(label="Do it")])
    assert "selectionBehavior" in str(caught.value)


@pytest.mark.parametrize("suggestions", [None, []])
def test_selection_behavior_without_suggestions_is_rejected(suggestions: list[Suggestion] | None) -> None:
    with pytest.raises(ValidationError) as caught:
        card(selectionBehavior="any", suggestions=suggestions)
    assert "selectionBehavior" in str(caught.value)


def test_unknown_selection_behavior_is_rejected() -> None:
    with pytest.raises(ValidationError):
        card(suggestions=[Suggestion(label="Do it")], selectionBehavior="exactly-one")


def test_suggestion_gets_its_own_uuid() -> None:
    built = card(suggestions=[Suggestion(label="a"), Suggestion(label="b")], selectionBehavior="any")
    assert built.suggestions is not None
    ids = [built.uuid] + [s.uuid for s in built.suggestions]
    assert all(is_uuid(i) for i in ids)
    assert len(set(ids)) == 3


@pytest.mark.parametrize("kind", ["create", "update"])
@pytest.mark.parametrize("resource", [None, {}])
def test_create_or_update_without_resource_is_rejected(kind: str, resource: dict[str, Any] | None) -> None:
    with pytest.raises(ValidationError) as caught:
        Action(type=kind, description="d", resource=resource)  # type: ignore[arg-type]
    assert "resource" in str(caught.value)


@pytest.mark.parametrize("resource_id", [None, []])
def test_delete_without_resource_id_is_rejected(resource_id: list[str] | None) -> None:
    with pytest.raises(ValidationError) as caught:
        Action(type="delete", description="d", resourceId=resource_id)
    assert "resourceId" in str(caught.value)


def test_unknown_action_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Action(type="replace", description="d", resource={"resourceType": "X"})  # type: ignore[arg-type]


def test_override_reason_without_display_is_rejected() -> None:
    with pytest.raises(ValidationError):
        OverrideReason(code="not-relevant", system="http://example.org")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        card(overrideReasons=[{"code": "not-relevant"}])


def test_plain_coding_needs_no_display() -> None:
    assert Coding(code="x").display is None


def test_absolute_link_with_app_context_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        Link(label="l", url="https://example.org", type="absolute", appContext="x")
    assert "appContext" in str(caught.value)


def test_smart_link_with_app_context_is_accepted() -> None:
    link = Link(label="l", url="https://example.org/launch", type="smart", appContext="x")
    assert link.appContext == "x"


def test_unknown_link_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Link(label="l", url="https://example.org", type="relative")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "build",
    [
        lambda: card(priority=1),
        lambda: Source(label="x", name="y"),  # type: ignore[call-arg]
        lambda: Suggestion(label="x", selected=True),  # type: ignore[call-arg]
        lambda: Link(label="l", url="u", type="absolute", target="_blank"),  # type: ignore[call-arg]
        lambda: CardsResponse(cards=[], systemActions=[]),  # type: ignore[call-arg]
    ],
    ids=["card", "source", "suggestion", "link", "response"],
)
def test_extra_unknown_fields_are_rejected(build: Any) -> None:
    with pytest.raises(ValidationError):
        build()


def test_cards_are_frozen() -> None:
    built = card()
    with pytest.raises(ValidationError):
        built.summary = "changed"


# --- serialisation ------------------------------------------------------------------------------


def test_empty_response_body() -> None:
    assert CardsResponse().body() == b'{"cards":[]}'
    assert CardsResponse(cards=[]).body() == b'{"cards":[]}'


def test_minimal_card_body() -> None:
    built = card()
    body = body_of(built)
    assert body == {
        "cards": [
            {
                "uuid": built.uuid,
                "summary": "Ferritin is rising",
                "indicator": "warning",
                "source": {"label": SOURCE.label},
            }
        ]
    }


@pytest.mark.parametrize("field", ["links", "overrideReasons", "suggestions", "extension"])
def test_empty_lists_and_dicts_are_dropped_from_the_body(field: str) -> None:
    empty: Any = {} if field == "extension" else []
    body = body_of(card(**{field: empty}))
    assert field not in body["cards"][0]


def test_empty_nested_lists_are_dropped() -> None:
    built = card(
        source=Source(label="s"),
        suggestions=[Suggestion(label="a", actions=[])],
        selectionBehavior="any",
    )
    suggestion = body_of(built)["cards"][0]["suggestions"][0]
    assert "actions" not in suggestion
    assert "isRecommended" not in suggestion


def test_full_card_body_is_valid_and_has_no_null() -> None:
    built = full_card()
    raw = CardsResponse(cards=[built, card(indicator="critical")]).body()
    assert b"null" not in raw
    body = orjson.loads(raw)
    assert response_problems(body) == []
    (first, second) = body["cards"]
    assert first["selectionBehavior"] == "at-most-one"
    assert [s["label"] for s in first["suggestions"]] == ["Increase the anakinra dose", "Keep the dose"]
    assert "isRecommended" not in first["suggestions"][1]
    assert first["suggestions"][0]["actions"][1] == {
        "type": "delete",
        "description": "Remove the old order",
        "resourceId": ["MedicationRequest/old"],
    }
    assert first["links"][0] == {
        "label": "Guideline",
        "url": "https://example.org/guideline",
        "type": "absolute",
    }
    assert first["links"][1]["appContext"] == "dose=4"
    assert first["overrideReasons"] == [
        {"code": "not-mas", "system": "http://example.org/override", "display": "Not MAS"}
    ]
    assert first["source"]["topic"] == {
        "code": "ferritin",
        "system": "http://example.org/topics",
        "display": "Ferritin",
    }
    assert "icon" not in first["source"]
    assert second["indicator"] == "critical"


def test_body_round_trips_through_the_model() -> None:
    response = CardsResponse(cards=[full_card()])
    again = CardsResponse.model_validate(orjson.loads(response.body()))
    assert again == response
    assert again.body() == response.body()


@pytest.mark.parametrize(
    "build",
    [
        lambda: card(extension={"example.org/note": None}),
        lambda: card(
            suggestions=[
                Suggestion(
                    label="Fix the order",
                    actions=[
                        Action(
                            type="update",
                            description="d",
                            resource={"resourceType": "MedicationRequest", "id": "1", "note": None},
                        )
                    ],
                )
            ],
            selectionBehavior="any",
        ),
    ],
    ids=["extension", "action-resource"],
)
def test_no_null_anywhere_in_the_body(build: Any) -> None:
    # Either the model refuses the null, or the body it produces carries none.
    try:
        built = build()
    except ValidationError:
        return
    raw = CardsResponse(cards=[built]).body()
    assert b"null" not in raw
    assert response_problems(orjson.loads(raw)) == []


def test_card_uuid_must_be_a_uuid() -> None:
    # Either the model refuses a uuid that is not one, or the body it produces still passes the checker.
    try:
        built = card(uuid="card-1")
    except ValidationError:
        return
    assert response_problems(orjson.loads(CardsResponse(cards=[built]).body())) == []


def test_card_uuids_are_unique_in_a_response() -> None:
    # The same Card object sent twice (e.g. a cached card) must not yield a body with a repeated uuid.
    built = card()
    try:
        response = CardsResponse(cards=[built, built])
    except ValidationError:
        return
    assert response_problems(orjson.loads(response.body())) == []


# --- the independent checker catches bad bodies -------------------------------------------------


def good_card_json() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(CardsResponse(cards=[card()]).body())["cards"][0]
    return data


def test_checker_catches_long_summary() -> None:
    bad = good_card_json()
    bad["summary"] = "x" * 200
    problems = response_problems({"cards": [bad]})
    assert any("summary" in p and "200" in p for p in problems)


def test_checker_catches_duplicate_uuid() -> None:
    first = good_card_json()
    second = good_card_json()
    second["uuid"] = first["uuid"]
    problems = response_problems({"cards": [first, second]})
    assert any("not unique" in p for p in problems)


def test_checker_catches_null_field() -> None:
    bad = good_card_json()
    bad["detail"] = None
    problems = response_problems({"cards": [bad]})
    assert any("detail" in p and "null" in p for p in problems)


def test_checker_catches_more() -> None:
    bad = good_card_json()
    bad["indicator"] = "hard-stop"
    bad["selectionBehavior"] = "any"
    bad["links"] = []
    problems = response_problems({"cards": [bad]})
    assert len(problems) == 3
    assert response_problems({"card": []}) != []


def test_checker_accepts_the_good_card() -> None:
    assert response_problems({"cards": [good_card_json()]}) == []
