"""The CDS Hooks 2.0 response, as models that cannot hold an invalid card.

Invariants enforced here, so no code path can emit them wrong: every card and suggestion has a uuid;
summary is at most 139 characters; indicator is info, warning or critical; source has a label;
selectionBehavior is present whenever suggestions are; override reasons carry a display; links are
absolute or smart and only smart links carry appContext; no optional field is null or empty.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

Text = Annotated[str, StringConstraints(min_length=1)]
Uuid = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ),
]
SUMMARY_MAX = 139


def new_uuid() -> str:
    return str(uuid.uuid4())


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        # An empty list or object is sent as "absent": the spec's optional fields are never empty.
        if isinstance(value, list | dict) and not value:
            return None
        return value


def pruned(value: Any) -> Any:
    """JSON without null or empty members: FHIR and CDS Hooks both forbid them."""
    if isinstance(value, dict):
        out = {k: pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != "" and v != [] and v != {}}
    if isinstance(value, list):
        items = [pruned(v) for v in value]
        return [v for v in items if v is not None and v != "" and v != [] and v != {}]
    return value


class Coding(_Model):
    code: Text
    system: Text | None = None
    display: Text | None = None


class OverrideReason(Coding):
    display: Text  # the spec requires a display for override reasons shown to the clinician


class Source(_Model):
    label: Text
    url: Text | None = None
    icon: Text | None = None
    topic: Coding | None = None


class Action(_Model):
    type: Literal["create", "update", "delete"]
    description: Text
    resource: dict[str, Any] | None = None
    resourceId: list[Text] | None = None

    @field_validator("resource", mode="after")
    @classmethod
    def _prune_resource(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return pruned(value) or None

    @model_validator(mode="after")
    def _target(self) -> Action:
        if self.type in ("create", "update") and not self.resource:
            raise ValueError(f"a {self.type} action needs a resource")
        if self.type == "delete" and not self.resourceId:
            raise ValueError("a delete action needs resourceId")
        return self


class Suggestion(_Model):
    label: Text
    uuid: Uuid = Field(default_factory=new_uuid)
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(_Model):
    label: Text
    url: Text
    type: Literal["absolute", "smart"]
    appContext: Text | None = None

    @model_validator(mode="after")
    def _app_context_only_for_smart(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only allowed on smart links")
        return self


class Card(_Model):
    uuid: Uuid = Field(default_factory=new_uuid)
    summary: Annotated[str, StringConstraints(min_length=1, max_length=SUMMARY_MAX)]
    detail: Text | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[OverrideReason] | None = None
    links: list[Link] | None = None
    extension: dict[str, Any] | None = None

    @field_validator("extension", mode="after")
    @classmethod
    def _prune_extension(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return pruned(value) or None

    @model_validator(mode="after")
    def _selection_behavior(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when a card has suggestions")
        if not self.suggestions and self.selectionBehavior is not None:
            raise ValueError("selectionBehavior without suggestions")
        return self


class CardsResponse(_Model):
    cards: list[Card] = Field(default_factory=list)

    @field_validator("cards", mode="after")
    @classmethod
    def _keep_empty(cls, value: list[Card] | None) -> list[Card]:
        # `cards` is required: an empty list is the answer "nothing applies", never omitted.
        cards = value or []
        uuids = [card.uuid for card in cards] + [s.uuid for card in cards for s in card.suggestions or ()]
        if len(set(uuids)) != len(uuids):
            raise ValueError("card and suggestion uuids must be unique within a response")
        return cards

    def body(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))
