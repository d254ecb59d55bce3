"""The feedback request (CDS Hooks 2.0.1, "Feedback"): what happened to the cards we issued."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import msgspec

from cds_service.protocol.outcome import Issue, ProblemError
from cds_service.store import limits


class _Coding(msgspec.Struct):
    code: str | None = None
    system: str | None = None
    display: str | None = None


class _OverrideReason(msgspec.Struct):
    reason: _Coding | None = None
    userComment: str | None = None


class _Accepted(msgspec.Struct):
    id: str


class _Item(msgspec.Struct):
    card: str
    outcome: str
    outcomeTimestamp: str
    acceptedSuggestions: list[_Accepted] | None = None
    overrideReason: _OverrideReason | None = None


class _Wire(msgspec.Struct):
    feedback: list[_Item]


_DECODER = msgspec.json.Decoder(_Wire)


@dataclasses.dataclass(frozen=True)
class FeedbackItem:
    """One item of a feedback request, checked."""

    card_uuid: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: list[str] | None
    override_code: str | None
    override_system: str | None
    override_display: str | None
    user_comment: str | None
    # Whether the card offered the override reason given (bound_feedback); None: no reason given, or a
    # card this service has no record of.
    reason_offered: bool | None = None


def parse_feedback(body: bytes) -> list[FeedbackItem]:
    """Decode and check a feedback request; raise ProblemError(400) naming every bad item."""
    try:
        wire = _DECODER.decode(body)
    except msgspec.ValidationError as exc:
        raise ProblemError.single(400, f"Feedback does not follow CDS Hooks 2.0: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ProblemError.single(400, f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProblemError.single(400, "Request body is not usable JSON: nested too deeply") from None
    if not wire.feedback:
        raise ProblemError.single(400, "feedback must hold at least one item", expression="feedback")

    issues: list[Issue] = []
    items: list[FeedbackItem] = []
    for index, item in enumerate(wire.feedback):
        where = f"feedback[{index}]"
        item_issues = _item_issues(item, where)
        if item_issues:
            issues.extend(item_issues)
            continue
        reason = item.overrideReason.reason if item.overrideReason else None
        items.append(
            FeedbackItem(
                card_uuid=item.card,
                outcome=item.outcome,
                outcome_timestamp=item.outcomeTimestamp,
                accepted_suggestions=[s.id for s in item.acceptedSuggestions]
                if item.acceptedSuggestions
                else None,
                override_code=reason.code if reason else None,
                override_system=reason.system if reason else None,
                override_display=reason.display if reason else None,
                user_comment=item.overrideReason.userComment if item.overrideReason else None,
            )
        )
    if issues:
        raise ProblemError(400, issues)
    return items


def _item_issues(item: _Item, where: str) -> list[Issue]:
    issues = []
    if not item.card.strip():
        issues.append(Issue(f"{where}.card must name the card's uuid", expression=f"{where}.card"))
    if item.outcome not in ("accepted", "overridden"):
        issues.append(
            Issue(f"{where}.outcome must be 'accepted' or 'overridden'", expression=f"{where}.outcome")
        )
    if item.outcome == "accepted" and not item.acceptedSuggestions:
        issues.append(
            Issue(f"{where}.acceptedSuggestions is required when the outcome is accepted", expression=where)
        )
    if item.outcome == "overridden" and item.acceptedSuggestions:
        issues.append(
            Issue(f"{where}: an overridden card cannot have accepted suggestions", expression=where)
        )
    if not _is_instant(item.outcomeTimestamp):
        issues.append(
            Issue(
                f"{where}.outcomeTimestamp must be an ISO 8601 date-time",
                expression=f"{where}.outcomeTimestamp",
            )
        )
    reason = item.overrideReason.reason if item.overrideReason else None
    if reason is not None and not reason.code:
        issues.append(
            Issue(f"{where}.overrideReason.reason needs a code", expression=f"{where}.overrideReason")
        )
    return issues + _unstorable(item, where)


def _unstorable(item: _Item, where: str) -> list[Issue]:
    """Values the feedback table could not hold (store/limits.py): refused here, for the caller to fix,
    rather than failing the insert and asking for a retry that would fail again."""
    override = item.overrideReason
    reason = override.reason if override else None
    stored = {
        "card": item.card,
        "outcome": item.outcome,
        "outcomeTimestamp": item.outcomeTimestamp,
        "overrideReason.reason.code": reason.code if reason else None,
        "overrideReason.reason.system": reason.system if reason else None,
        "overrideReason.reason.display": reason.display if reason else None,
        "overrideReason.userComment": override.userComment if override else None,
    }
    issues = []
    for field, value in stored.items():
        why = limits.problem(f"feedback.{field}", value) if value is not None else None
        if why:
            issues.append(Issue(f"{where}.{field} {why}", expression=f"{where}.{field}"))
    return issues


def _is_instant(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return "T" in value


class CardRecord(Protocol):
    """What feedback on a card is checked against, as the face read it from its record of the card (the
    store's row fits): the service and issuer it went to, and the override reasons it offered."""

    @property
    def service_id(self) -> str: ...

    @property
    def issuer(self) -> str | None: ...

    @property
    def override_reasons(self) -> frozenset[tuple[str, str]]: ...  # (system, code)


def bound_feedback(
    items: list[FeedbackItem], owners: Mapping[str, CardRecord], service_id: str, issuer: str | None
) -> list[FeedbackItem]:
    """The items, checked against the cards they name and who sent them: feedback on a card
    issued to another issuer or by another service is refused (400, nothing stored); an override reason
    the card did not offer is kept, flagged. A card this service has no record of (issued while its
    database was down, or never) is kept as it is, and the report counts it apart."""
    issues = []
    bound = []
    for index, row in enumerate(items):
        owner = owners.get(row.card_uuid)
        offered: bool | None = None
        if owner is not None:
            if owner.service_id != service_id or owner.issuer != issuer:
                issues.append(
                    Issue(
                        f"feedback[{index}].card: card {row.card_uuid!r} was not issued to this caller by "
                        f"{service_id!r}",
                        code="forbidden",
                        expression=f"feedback[{index}].card",
                    )
                )
                continue
            if row.override_code is not None:
                # An EHR may echo the code without its system.
                offered = any(
                    code == row.override_code and row.override_system in (None, system)
                    for system, code in owner.override_reasons
                )
        bound.append(dataclasses.replace(row, reason_offered=offered))
    if issues:
        raise ProblemError(400, issues)
    return bound
