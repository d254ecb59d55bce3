"""Every text column, where its values come from, and how they are kept storable: one table.

PostgreSQL refuses text longer than a VARCHAR's width or holding a NUL, and both databases refuse text
that is not Unicode (a lone surrogate, which JSON can escape); one such value fails its whole
transaction, the audit row and the cards issued with it. So each value is checked where it enters,
against the width the schema gives its column (never a number typed twice):

- `request`: a field of the caller's request; refused with a 400 naming the field.
- `token`: a JWT claim the service relies on; the token is refused (401).
- `clipped`: kept for the record only (a token's `sub`, a path, a reason that quotes the caller): stored
  with anything unstorable replaced and cut to the width with a marker, so the row is never lost.
- `ours`: made by the service (uuids, link tokens) or read from its own files, whose loaders bound it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from sqlalchemy import Column, String

from cds_service.store.schema import (
    audit_log,
    cards_issued,
    chart_snapshots,
    feedback,
    jwt_seen,
    merged_card_rules,
    refused_calls,
)

Edge = Literal["request", "token", "clipped", "ours"]


@dataclasses.dataclass(frozen=True)
class Limit:
    column: Column[Any]
    edge: Edge
    source: str  # the field as an error names it, or where an `ours` value is made and bounded


LIMITS: tuple[Limit, ...] = (
    Limit(cards_issued.c.card_uuid, "ours", "uuid4 per card (cards/render.py)"),
    Limit(cards_issued.c.service_id, "ours", "service id (protocol/discovery.py ServiceId)"),
    Limit(cards_issued.c.rule_id, "ours", "rule id (ruleformat/rulefile.py RuleId)"),
    Limit(cards_issued.c.rule_version, "ours", "rule version (ruleformat/rulefile.py RuleVersion)"),
    Limit(cards_issued.c.indicator, "ours", "card indicator (info, warning, critical)"),
    Limit(cards_issued.c.patient_id, "request", "context.patientId"),
    Limit(cards_issued.c.hook_instance, "request", "hookInstance"),
    Limit(cards_issued.c.issuer, "ours", "trusted issuer (security/trust.py)"),
    Limit(merged_card_rules.c.card_uuid, "ours", "uuid4 per card (cards/merge.py)"),
    Limit(merged_card_rules.c.rule_id, "ours", "rule id (ruleformat/rulefile.py RuleId)"),
    Limit(merged_card_rules.c.rule_version, "ours", "rule version (ruleformat/rulefile.py RuleVersion)"),
    Limit(feedback.c.service_id, "ours", "service id (the route answers only known services)"),
    Limit(feedback.c.card_uuid, "request", "feedback.card"),
    Limit(feedback.c.outcome, "request", "feedback.outcome"),
    Limit(feedback.c.outcome_timestamp, "request", "feedback.outcomeTimestamp"),
    Limit(feedback.c.override_code, "request", "feedback.overrideReason.reason.code"),
    Limit(feedback.c.override_system, "request", "feedback.overrideReason.reason.system"),
    Limit(feedback.c.override_display, "request", "feedback.overrideReason.reason.display"),
    Limit(feedback.c.user_comment, "request", "feedback.overrideReason.userComment"),
    Limit(feedback.c.issuer, "ours", "trusted issuer (security/trust.py)"),
    Limit(chart_snapshots.c.token, "ours", "secrets.token_urlsafe (charts/links.py)"),
    Limit(chart_snapshots.c.chart_id, "ours", "chart id (ruleformat/rulefile.py ChartId)"),
    Limit(jwt_seen.c.issuer, "ours", "trusted issuer (security/trust.py)"),
    Limit(jwt_seen.c.jti, "token", "jti"),
    Limit(audit_log.c.endpoint, "ours", "discovery, service or feedback (app.py)"),
    Limit(audit_log.c.service_id, "clipped", "the service id in the path, which may name no service"),
    Limit(audit_log.c.hook_instance, "request", "hookInstance"),
    Limit(audit_log.c.issuer, "ours", "trusted issuer (security/trust.py)"),
    Limit(audit_log.c.tenant, "ours", "tenant of a trusted issuer (security/trust.py)"),
    Limit(audit_log.c.subject, "clipped", "the token's sub, recorded and never relied on"),
    Limit(audit_log.c.patient_id, "request", "context.patientId"),
    Limit(audit_log.c.reason, "clipped", "why a call was refused, which may quote the caller"),
    Limit(refused_calls.c.source, "clipped", "the caller's address (security/refusals.py)"),
    Limit(refused_calls.c.reason, "clipped", "a refusal's reason code (security/refusals.py)"),
    Limit(refused_calls.c.endpoint, "ours", "discovery, service or feedback (app.py)"),
)

# The marker a clipped value ends with; the number is the length of the value before clipping.
_CLIPPED = "…[{length} chars]"
_REPLACEMENT = "\ufffd"


def width(column: Column[Any]) -> int | None:
    """The most characters `column` holds; None for unbounded text."""
    length = column.type.length if isinstance(column.type, String) else None
    return int(length) if length is not None else None


def varchar(column: Column[Any]) -> int:
    """The width of a VARCHAR column, for a loader to bound what it accepts."""
    limit = width(column)
    if limit is None:
        raise TypeError(f"{column} is unbounded text")
    return limit


def clip_row(table: Any, values: dict[str, Any]) -> dict[str, Any]:
    """`values` for a row of `table` with every text column clipped (see `clip`)."""
    out = dict(values)
    for column in table.columns:
        if isinstance(column.type, String) and isinstance(out.get(column.name), str):
            out[column.name] = clip(column, out[column.name])
    return out


def _columns(field: str) -> list[Column[Any]]:
    columns = [
        limit.column for limit in LIMITS if limit.source == field and limit.edge in ("request", "token")
    ]
    if not columns:
        raise KeyError(f"no request or token field {field!r} in store/limits.py")
    return columns


def field_width(field: str) -> int | None:
    """The most characters `field` may have: the narrowest column it is stored in."""
    widths = [w for w in map(width, _columns(field)) if w is not None]
    return min(widths) if widths else None


def problem(field: str, value: str) -> str | None:
    """Why `value` cannot be stored where `field` goes ("is longer than 64 characters"), or None."""
    limit = field_width(field)
    if limit is not None and len(value) > limit:
        return f"is longer than {limit} characters"
    return _charset_problem(value)


def _charset_problem(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character"
    if not _is_unicode(value):
        return "is not Unicode text (a lone surrogate)"
    return None


def _is_unicode(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clip(column: Column[Any], value: str | None) -> str | None:
    """`value` made storable in `column`: NULs and lone surrogates replaced by U+FFFD, and cut to the
    column's width with a marker saying how long it was."""
    if value is None:
        return None
    if _charset_problem(value):
        value = "".join(_REPLACEMENT if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in value)
    limit = width(column)
    if limit is None or len(value) <= limit:
        return value
    marker = _CLIPPED.format(length=len(value))
    return value[: max(limit - len(marker), 0)] + marker[:limit]
