"""Feedback analytics: per rule and rule version, the cards issued over a period, how many were accepted
or overridden, and why they were overridden.

What is counted, exactly:

- The period is [since, until) on the card's issue time (`cards_issued.issued_at`): a card issued at
  `since` is in, one issued at `until` is out. Times are compared in UTC whatever offset they were
  given in, since SQLite keeps naive UTC. Feedback counts for its card whenever it arrived.
- "Issued" counts advice, not card copies: the cards of one rule (and version) from one service for one
  hookInstance are one piece of advice, counted once. An EHR calls order-select again for the same
  hookInstance as the selection changes, and each call answers with fresh card uuids; counting every copy
  would inflate "issued" and shrink the share with feedback. Cards for another hookInstance count apart.
- Each piece of advice is counted once, by its latest feedback on any of its cards: the latest
  outcomeTimestamp, then the latest reception, then the last row stored. Advice accepted and later
  overridden counts as overridden. outcomeTimestamp is kept as the EHR sent it, with any offset, so it is
  compared after parsing (in Python), not as text in SQL.
- A card that merged several rules' cards into one (docs/cards.md) counts for each rule it speaks for, as
  issued and in its feedback: its first rule is in cards_issued, the others in merged_card_rules.
- Feedback naming a card uuid that was never issued here is not dropped: it is counted apart (entries
  and distinct cards), by when it was received, in the same period, whatever rule is asked for.
- A new rule version is a new row; rows can also be split per service.
- override rate = overridden / (accepted + overridden); None when no card of the row has feedback.
- Override reasons are counted per rule (all versions), one per overridden piece of advice (its latest
  override), grouped by (system, code) and shown with the most recent display any feedback gave that
  coding, else the display the rule file offers for that code (EHRs such as the CDS Hooks sandbox send
  the code alone); "no reason given" when the override carried none. Comments may hold PHI: the query
  asks only whether there is one, so they are counted, never read.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Subquery, and_, distinct, func, select, union_all

from cds_service.store.schema import cards_issued, feedback, merged_card_rules

DEFAULT_DAYS = 30
NO_REASON = "no reason given"
NOT_OFFERED = "(not a reason the card offered)"
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_RULE_ID_LENGTH = 128  # cards_issued.rule_id

# What the service offers as override reasons: (rule id, code) -> (system, display), from the rule files.
Offered = Mapping[tuple[str, str], tuple[str | None, str]]


class PeriodError(ValueError):
    """A period or filter that cannot be reported on; the message says why, for a person."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Counts:
    issued: int
    accepted: int
    overridden: int

    @property
    def with_feedback(self) -> int:
        return self.accepted + self.overridden

    @property
    def override_rate(self) -> float | None:
        answered = self.accepted + self.overridden
        return self.overridden / answered if answered else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "issued": self.issued,
            "with_feedback": self.with_feedback,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "override_rate": self.override_rate,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class RuleRow(Counts):
    rule_id: str
    rule_version: str
    service_id: str | None  # None unless the report is split per service

    def as_dict(self) -> dict[str, Any]:
        key = {"rule_id": self.rule_id, "rule_version": self.rule_version}
        if self.service_id is not None:
            key["service_id"] = self.service_id
        return key | super().as_dict()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reason:
    system: str | None
    code: str | None  # None: the override carried no reason
    display: str | None  # the most recent display sent for this coding, if any ever was
    cards: int
    with_comment: int
    offered_display: str | None = (
        None  # the display the rule file gives this code, for codes sent without one
    )
    # False: the EHR sent a reason the card did not offer (kept, and shown apart).
    offered: bool = True

    @property
    def label(self) -> str:
        if self.code is None:
            return NO_REASON
        shown = self.display or self.offered_display or self.code
        return shown if self.offered else f"{shown} {NOT_OFFERED}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "code": self.code,
            "display": self.display,
            "offered_display": self.offered_display,
            "label": self.label,
            "cards": self.cards,
            "with_comment": self.with_comment,
            "offered": self.offered,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class RuleReasons:
    rule_id: str
    overridden: int
    top: tuple[Reason, ...]
    more_reasons: int  # reasons beyond the top ones
    more_cards: int  # overridden cards they account for

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "overridden": self.overridden,
            "top": [reason.as_dict() for reason in self.top],
            "more_reasons": self.more_reasons,
            "more_cards": self.more_cards,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class UnknownCards:
    """Feedback received in the period about card uuids this service never issued."""

    entries: int
    cards: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class FeedbackReport:
    since: datetime
    until: datetime
    rule_id: str | None
    by_service: bool
    rows: tuple[RuleRow, ...]
    totals: Counts
    reasons: tuple[RuleReasons, ...]
    unknown_cards: UnknownCards

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "rule_id": self.rule_id,
            "by_service": self.by_service,
            "rows": [row.as_dict() for row in self.rows],
            "totals": self.totals.as_dict(),
            "override_reasons": [reasons.as_dict() for reasons in self.reasons],
            "feedback_for_unknown_cards": dataclasses.asdict(self.unknown_cards),
        }


def parse_time(text: str, name: str) -> datetime:
    """An ISO 8601 time or date as an aware UTC datetime; without an offset it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise PeriodError(f"{name} {text!r} is not an ISO 8601 time (e.g. 2026-11-23T08:00Z)") from None


def period(
    since: str | None,
    until: str | None,
    now: datetime,
    days: int = DEFAULT_DAYS,
    names: tuple[str, str] = ("since", "until"),
) -> tuple[datetime, datetime]:
    """[since, until) from optional ISO 8601 texts; until defaults to now, since to `days` before until.
    `names` are what the person typed them as (query parameters, command-line options)."""
    since_name, until_name = names
    end = parse_time(until, until_name) if until else now.astimezone(UTC)
    try:
        start = parse_time(since, since_name) if since else end - timedelta(days=days)
    except OverflowError:
        raise PeriodError(
            f"{until_name} {iso(end)} leaves no room for a {days}-day period before it"
        ) from None
    if start >= end:
        raise PeriodError(f"{since_name} ({iso(start)}) must be before {until_name} ({iso(end)})")
    return start, end


def check_rule_id(rule_id: str | None) -> str | None:
    """The rule filter, stripped; None for none. Refuses what no rule id can be (and what PostgreSQL
    would refuse to compare, such as NUL), so that bad input is a clear error, not a database error."""
    if rule_id is None or not rule_id.strip():
        return None
    rule_id = rule_id.strip()
    if len(rule_id) > _RULE_ID_LENGTH or not rule_id.isprintable():
        raise PeriodError(f"rule {rule_id[:40]!r} is not a rule id")
    return rule_id


def feedback_report(
    engine: Engine,
    since: datetime,
    until: datetime,
    rule_id: str | None = None,
    by_service: bool = False,
    top: int = 5,
    offered: Offered | None = None,
) -> FeedbackReport:
    """The report for cards issued in [since, until), as the module docstring defines it; `top` override
    reasons are listed per rule, with the display `offered` by the rule files when the EHR sent none."""
    if top < 0:
        raise ValueError(f"top must be 0 or more, not {top}")
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    with engine.connect() as conn:
        # Feedback first, cards second: cards are only ever added, so the second read sees every card
        # the first one did, and no row can show more cards with feedback than cards issued.
        answered = _latest_feedback(conn, since, until, rule_id)
        issued = _issued(conn, since, until, rule_id, by_service)
        unknown = _unknown_cards(conn, since, until)

    outcomes: dict[tuple[str, str, str | None], Counter[str]] = defaultdict(Counter)
    for row in answered.latest:
        outcomes[_key(row, by_service)][row.outcome] += 1
    rows = tuple(
        RuleRow(
            rule_id=key[0],
            rule_version=key[1],
            service_id=key[2],
            issued=count,
            accepted=outcomes[key]["accepted"],
            overridden=outcomes[key]["overridden"],
        )
        for key, count in sorted(issued.items(), key=lambda item: _row_order(item[0]))
    )
    totals = Counts(
        issued=sum(row.issued for row in rows),
        accepted=sum(row.accepted for row in rows),
        overridden=sum(row.overridden for row in rows),
    )
    return FeedbackReport(
        since=since,
        until=until,
        rule_id=rule_id,
        by_service=by_service,
        rows=rows,
        totals=totals,
        reasons=_reasons(answered, top, offered or {}),
        unknown_cards=unknown,
    )


@dataclasses.dataclass(frozen=True)
class _Answered:
    latest: list[
        Any
    ]  # one row per piece of advice (hookInstance, service, rule, version): its latest feedback
    displays: dict[tuple[str | None, str], str]  # (system, code) -> most recent display


def _latest_feedback(conn: Connection, since: datetime, until: datetime, rule_id: str | None) -> _Answered:
    rows = _card_rules()
    comment = func.length(func.trim(func.coalesce(feedback.c.user_comment, ""))) > 0
    query = (
        select(
            feedback.c.id,
            feedback.c.card_uuid,
            feedback.c.outcome,
            feedback.c.outcome_timestamp,
            feedback.c.received_at,
            feedback.c.override_system,
            feedback.c.override_code,
            feedback.c.override_display,
            comment.label("has_comment"),
            feedback.c.reason_offered,
            rows.c.rule_id,
            rows.c.rule_version,
            rows.c.service_id,
            rows.c.hook_instance,
        )
        .select_from(feedback.join(rows, rows.c.card_uuid == feedback.c.card_uuid))
        .where(_in_period(rows, since, until, rule_id))
    )
    latest: dict[tuple[str, str, str, str], tuple[tuple[datetime, datetime, int], Any]] = {}
    displays: dict[tuple[str | None, str], tuple[tuple[datetime, datetime, int], str]] = {}
    for row in conn.execute(query):
        order = (_instant(row.outcome_timestamp), _utc(row.received_at), row.id)
        advice = (row.hook_instance, row.service_id, row.rule_id, row.rule_version)
        held = latest.get(advice)
        if held is None or order > held[0]:
            latest[advice] = (order, row)
        if row.override_code and row.override_display:
            coding = (row.override_system, row.override_code)
            shown = displays.get(coding)
            if shown is None or order > shown[0]:
                displays[coding] = (order, row.override_display)
    return _Answered(
        latest=[row for _, row in latest.values()],
        displays={coding: display for coding, (_, display) in displays.items()},
    )


def _issued(
    conn: Connection, since: datetime, until: datetime, rule_id: str | None, by_service: bool
) -> dict[tuple[str, str, str | None], int]:
    # One row per piece of advice: the copies of a card on repeated calls for one hookInstance count once.
    rows = _card_rules()
    advice = (
        select(rows.c.rule_id, rows.c.rule_version, rows.c.service_id, rows.c.hook_instance)
        .where(_in_period(rows, since, until, rule_id))
        .distinct()
        .subquery()
    )
    columns = [advice.c.rule_id, advice.c.rule_version]
    if by_service:
        columns.append(advice.c.service_id)
    query = select(*columns, func.count()).group_by(*columns)
    counts = {}
    for row in conn.execute(query):
        counts[(row[0], row[1], row[2] if by_service else None)] = row[-1]
    return counts


def _unknown_cards(conn: Connection, since: datetime, until: datetime) -> UnknownCards:
    query = (
        select(func.count(), func.count(distinct(feedback.c.card_uuid)))
        .select_from(feedback.outerjoin(cards_issued, cards_issued.c.card_uuid == feedback.c.card_uuid))
        .where(
            cards_issued.c.card_uuid.is_(None),
            feedback.c.received_at >= since,
            feedback.c.received_at < until,
        )
    )
    entries, cards = conn.execute(query).one()
    return UnknownCards(entries=entries, cards=cards)


def _card_rules() -> Subquery:
    """One row per card and rule it speaks for: cards_issued, plus the other rules of merged cards."""
    columns = (cards_issued.c.service_id, cards_issued.c.hook_instance, cards_issued.c.issued_at)
    first = select(cards_issued.c.card_uuid, cards_issued.c.rule_id, cards_issued.c.rule_version, *columns)
    others = select(
        cards_issued.c.card_uuid, merged_card_rules.c.rule_id, merged_card_rules.c.rule_version, *columns
    ).select_from(
        merged_card_rules.join(cards_issued, cards_issued.c.card_uuid == merged_card_rules.c.card_uuid)
    )
    return union_all(first, others).subquery("card_rules")


def _in_period(rows: Subquery, since: datetime, until: datetime, rule_id: str | None) -> Any:
    condition = and_(rows.c.issued_at >= since, rows.c.issued_at < until)
    return condition if rule_id is None else and_(condition, rows.c.rule_id == rule_id)


def _reasons(answered: _Answered, top: int, displays: Offered) -> tuple[RuleReasons, ...]:
    Key = tuple[str | None, str | None, bool]
    cards: dict[str, Counter[Key]] = defaultdict(Counter)
    comments: dict[str, Counter[Key]] = defaultdict(Counter)
    for row in answered.latest:
        if row.outcome != "overridden":
            continue
        # A reason without a code cannot be stored (the feedback is refused), so no code means no reason.
        # A reason the card did not offer is counted apart from the same coding offered.
        offered = row.reason_offered is not False
        key = (row.override_system, row.override_code, offered) if row.override_code else (None, None, True)
        cards[row.rule_id][key] += 1
        comments[row.rule_id][key] += bool(row.has_comment)
    result = []
    for rule_id in sorted(cards):
        ranked = sorted(cards[rule_id].items(), key=_reason_order)
        shown = [
            Reason(
                system=system,
                code=code,
                display=answered.displays.get((system, code)) if code else None,
                cards=count,
                with_comment=comments[rule_id][(system, code, offered)],
                offered=offered,
                offered_display=_offered(displays, rule_id, system, code),
            )
            for (system, code, offered), count in ranked[:top]
        ]
        result.append(
            RuleReasons(
                rule_id=rule_id,
                overridden=sum(cards[rule_id].values()),
                top=tuple(shown),
                more_reasons=len(ranked[top:]),
                more_cards=sum(count for _, count in ranked[top:]),
            )
        )
    return tuple(result)


def _offered(offered: Offered, rule_id: str, system: str | None, code: str | None) -> str | None:
    """The rule file's display for a code the EHR sent; a code sent without a system is taken to be
    the one the card offered (the sandbox sends the code alone)."""
    if code is None:
        return None
    found = offered.get((rule_id, code))
    if found is None or (system is not None and system != found[0]):
        return None
    return found[1]


def _reason_order(item: tuple[tuple[str | None, str | None, bool], int]) -> tuple[Any, ...]:
    (system, code, offered), count = item
    # Most frequent first; among equals, coded reasons before "no reason given", then by code.
    return (-count, code is None, code or "", system or "", not offered)


def _key(row: Any, by_service: bool) -> tuple[str, str, str | None]:
    return (row.rule_id, row.rule_version, row.service_id if by_service else None)


def _row_order(key: tuple[str, str, str | None]) -> tuple[Any, ...]:
    rule_id, version, service_id = key
    return (rule_id, _version_order(version), service_id or "")


def _version_order(version: str) -> tuple[tuple[int, int, str], ...]:
    # 1.10.0 after 1.9.0: numeric parts compare as numbers.
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"[.+-]", version)
    )


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        # Stored feedback is checked on the way in; a row that still cannot be read never wins.
        return _EARLIEST


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """A time as people and JSON read it, in UTC: 2026-11-23T08:00:00Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
