"""The CDS Hooks 2.0 response invariants, checked independently of the service's own models.

Written against the spec's text, not by importing cds_service.protocol.response, so that a bug in the
response model cannot hide itself.
"""

from __future__ import annotations

import uuid
from typing import Any

INDICATORS = {"info", "warning", "critical"}
ACTION_TYPES = {"create", "update", "delete"}
SELECTION = {"at-most-one", "any"}


def response_problems(body: Any) -> list[str]:
    """Every way `body` breaks the invariants; empty when it is a valid CDS Hooks response."""
    problems: list[str] = []
    if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
        return ["the body must be an object with a 'cards' array"]
    problems += _no_empty("$", body)
    for extra in set(body) - {"cards", "systemActions"}:
        problems.append(f"unexpected top-level field {extra!r}")
    uuids: set[str] = set()
    for i, card in enumerate(body["cards"]):
        problems += [f"cards[{i}]: {p}" for p in _card_problems(card, uuids)]
    return problems


def _card_problems(card: Any, uuids: set[str]) -> list[str]:
    if not isinstance(card, dict):
        return ["a card must be an object"]
    out = []
    out += _uuid("uuid", card.get("uuid"), uuids)
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary:
        out.append("summary is required")
    elif len(summary) >= 140:
        out.append(f"summary has {len(summary)} characters; the limit is 139")
    if card.get("indicator") not in INDICATORS:
        out.append(f"indicator {card.get('indicator')!r} is not info|warning|critical")
    source = card.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("label"), str) or not source["label"]:
        out.append("source.label is required")
    suggestions = card.get("suggestions")
    if suggestions is not None:
        if card.get("selectionBehavior") not in SELECTION:
            out.append("selectionBehavior is required with suggestions")
        for j, suggestion in enumerate(suggestions):
            out += [f"suggestions[{j}]: {p}" for p in _suggestion_problems(suggestion, uuids)]
    elif "selectionBehavior" in card:
        out.append("selectionBehavior without suggestions")
    for j, reason in enumerate(card.get("overrideReasons") or ()):
        if not isinstance(reason, dict) or not reason.get("code") or not reason.get("display"):
            out.append(f"overrideReasons[{j}] needs code and display")
    for j, link in enumerate(card.get("links") or ()):
        if not isinstance(link, dict) or not link.get("label") or not link.get("url"):
            out.append(f"links[{j}] needs label and url")
        elif link.get("type") not in ("absolute", "smart"):
            out.append(f"links[{j}].type must be absolute or smart")
        elif "appContext" in link and link["type"] != "smart":
            out.append(f"links[{j}]: appContext only on smart links")
    return out


def _suggestion_problems(suggestion: Any, uuids: set[str]) -> list[str]:
    if not isinstance(suggestion, dict):
        return ["a suggestion must be an object"]
    out = []
    if not suggestion.get("label"):
        out.append("label is required")
    out += _uuid("uuid", suggestion.get("uuid"), uuids)
    for k, action in enumerate(suggestion.get("actions") or ()):
        if action.get("type") not in ACTION_TYPES:
            out.append(f"actions[{k}].type must be create|update|delete")
        if not action.get("description"):
            out.append(f"actions[{k}].description is required")
        if action.get("type") in ("create", "update") and not isinstance(action.get("resource"), dict):
            out.append(f"actions[{k}] needs a resource")
    return out


def _uuid(name: str, value: Any, seen: set[str]) -> list[str]:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return [f"{name} must be a UUID, got {value!r}"]
    if value in seen:
        return [f"{name} {value} is not unique in the response"]
    seen.add(value)
    return []


def _no_empty(path: str, value: Any) -> list[str]:
    if value is None:
        return [f"{path} is null"]
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            required_list = path == "$" and key == "cards"
            if not required_list and (item is None or item == "" or item == [] or item == {}):
                out.append(f"{path}.{key} is null or empty")
                continue
            out += _no_empty(f"{path}.{key}", item)
        return out
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _no_empty(f"{path}[{i}]", item)]
    return []
