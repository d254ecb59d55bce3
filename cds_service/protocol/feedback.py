"""The feedback request (CDS Hooks 2.0.1, "Feedback"): what happened to the cards we issued."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from cds_service.protocol.outcome import Issue, ProblemError
from cds_service.store import limits
from cds_service.store.database import CardOwner, FeedbackRow


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


def parse_feedback(body: bytes, service_id: str, now: datetime | None = None) -> list[FeedbackRow]:
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

    received = now or datetime.now(UTC)
    issues: list[Issue] = []
    rows: list[FeedbackRow] = []
    for index, item in enumerate(wire.feedback):
        where = f"feedback[{index}]"
        item_issues = _item_issues(item, where)
        if item_issues:
            issues.extend(item_issues)
            continue
        reason = item.overrideReason.reason if item.overrideReason else None
        rows.append(
            FeedbackRow(
                service_id=service_id,
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
                received_at=received,
            )
        )
    if issues:
        raise ProblemError(400, issues)
    return rows


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


def bound_feedback(
    rows: list[FeedbackRow], owners: Mapping[str, CardOwner], issuer: str | None
) -> list[FeedbackRow]:
    """The rows, bound to who sent them and checked against the cards they name: feedback on a card
    issued to another issuer or by another service is refused (400, nothing stored); an override reason
    the card did not offer is kept, flagged. A card this service has no record of (issued while its
    database was down, or never) is kept as it is, and the report counts it apart."""
    issues = []
    bound = []
    for index, row in enumerate(rows):
        owner = owners.get(row.card_uuid)
        offered: bool | None = None
        if owner is not None:
            if owner.service_id != row.service_id or owner.issuer != issuer:
                issues.append(
                    Issue(
                        f"feedback[{index}].card: card {row.card_uuid!r} was not issued to this caller by "
                        f"{row.service_id!r}",
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
        bound.append(dataclasses.replace(row, issuer=issuer, reason_offered=offered))
    if issues:
        raise ProblemError(400, issues)
    return bound
