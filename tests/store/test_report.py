"""Feedback analytics over the real tables: exact counts, the period's edges, latest outcome wins,
feedback for unknown cards, override reasons; on SQLite and (CDS_TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine

from cds_service.store.database import AuditRow, FeedbackRow, IssuedCard, Store, StoreError
from cds_service.store.report import NO_REASON, PeriodError, check_rule_id, parse_time, period

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SINCE = T0
UNTIL = T0 + timedelta(days=30)
OVERRIDE = "http://example.org/override-reason"
_uuids = itertools.count()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url)
    yield opened
    opened.close()


def issue(
    store: Store,
    rule: str,
    version: str = "1.0.0",
    at: datetime = T0 + timedelta(days=1),
    service: str = "svc-sign",
    n: int = 1,
    hook: str | None = None,
) -> list[str]:
    """n cards of `rule`, each from its own call (hookInstance) unless `hook` names one for all."""
    cards = []
    for _ in range(n):
        number = next(_uuids)
        cards.append(
            IssuedCard(
                card_uuid=f"card-{number}",
                service_id=service,
                rule_id=rule,
                rule_version=version,
                indicator="warning",
                patient_id="p1",
                hook_instance=hook or f"hook-{number}",
                issued_at=at,
            )
        )
    audit = AuditRow(at=at, endpoint="service", latency_ms=1.0, status=200, service_id=service)
    store.record_call(audit, cards)
    return [card.card_uuid for card in cards]


def answer(
    store: Store,
    card: str,
    outcome: str,
    at: str = "2026-11-05T10:00:00Z",
    code: str | None = None,
    display: str | None = None,
    system: str | None = OVERRIDE,
    comment: str | None = None,
    received: datetime = T0 + timedelta(days=5),
) -> None:
    stored = store.record_feedback(
        [
            FeedbackRow(
                service_id="svc-sign",
                card_uuid=card,
                outcome=outcome,
                outcome_timestamp=at,
                accepted_suggestions=["s1"] if outcome == "accepted" else None,
                override_code=code,
                override_system=system if code else None,
                override_display=display,
                user_comment=comment,
                received_at=received,
            )
        ]
    )
    assert stored == 1


def rows(store: Store, **options: object) -> list[tuple[object, ...]]:
    report = store.feedback_report(SINCE, UNTIL, **options)  # type: ignore[arg-type]
    return [
        (r.rule_id, r.rule_version, r.service_id, r.issued, r.with_feedback, r.accepted, r.overridden)
        for r in report.rows
    ]


def test_counts_and_rates_per_rule_and_version(store: Store) -> None:
    dose = issue(store, "max-dose", "1.0.0", n=4)
    new_dose = issue(store, "max-dose", "1.10.0", n=2)
    old_dose = issue(store, "max-dose", "1.9.0", n=1)
    renal = issue(store, "renal-dose", n=3)
    for card in dose[:2]:
        answer(store, card, "accepted")
    answer(store, dose[2], "overridden", code="not-relevant")
    answer(store, new_dose[0], "overridden")
    answer(store, renal[0], "accepted")
    del old_dose

    report = store.feedback_report(SINCE, UNTIL)
    assert rows(store) == [
        ("max-dose", "1.0.0", None, 4, 3, 2, 1),
        ("max-dose", "1.9.0", None, 1, 0, 0, 0),  # 1.9.0 before 1.10.0: versions compare as numbers
        ("max-dose", "1.10.0", None, 2, 1, 0, 1),
        ("renal-dose", "1.0.0", None, 3, 1, 1, 0),
    ]
    assert [r.override_rate for r in report.rows] == [pytest.approx(1 / 3), None, 1.0, 0.0]
    totals = report.totals
    assert (totals.issued, totals.with_feedback, totals.accepted, totals.overridden) == (10, 5, 3, 2)
    assert totals.override_rate == pytest.approx(0.4)
    assert (report.unknown_cards.entries, report.unknown_cards.cards) == (0, 0)


def test_the_period_includes_since_and_excludes_until_in_utc(store: Store) -> None:
    issue(store, "r", at=SINCE - timedelta(microseconds=1))
    issue(store, "r", at=SINCE)
    issue(store, "r", at=UNTIL - timedelta(microseconds=1))
    issue(store, "r", at=UNTIL)
    assert rows(store) == [("r", "1.0.0", None, 2, 0, 0, 0)]
    # The same instants given with another offset select the same cards.
    plus_two = timezone(timedelta(hours=2))
    report = store.feedback_report(SINCE.astimezone(plus_two), UNTIL.astimezone(plus_two))
    assert report.totals.issued == 2
    assert report.since == SINCE and report.until == UNTIL
    # One microsecond more on either side takes in one more card.
    wider = store.feedback_report(SINCE - timedelta(microseconds=1), UNTIL + timedelta(microseconds=1))
    assert wider.totals.issued == 4


def test_feedback_counts_for_its_card_whenever_it_arrived(store: Store) -> None:
    (inside,) = issue(store, "r", at=UNTIL - timedelta(hours=1))
    (outside,) = issue(store, "r", at=UNTIL)
    answer(store, inside, "overridden", at="2026-12-20T10:00:00Z", received=UNTIL + timedelta(days=20))
    answer(store, outside, "overridden", received=UNTIL - timedelta(hours=1))
    assert rows(store) == [("r", "1.0.0", None, 1, 1, 0, 1)]


def test_each_card_counts_once_by_its_latest_outcome(store: Store) -> None:
    a, b, c, d, e = issue(store, "r", n=5)
    # Accepted, then overridden: overridden.
    answer(store, a, "accepted", at="2026-11-05T10:00:00Z")
    answer(store, a, "overridden", at="2026-11-05T10:05:00Z", code="later")
    # Overridden, then accepted, sent in the other order: accepted.
    answer(store, b, "accepted", at="2026-11-05T11:00:00Z")
    answer(store, b, "overridden", at="2026-11-05T10:00:00Z")
    # Offsets: 12:00+02:00 is 10:00Z, before 11:00Z although its text sorts after it.
    answer(store, c, "overridden", at="2026-11-05T12:00:00+02:00")
    answer(store, c, "accepted", at="2026-11-05T11:00:00Z")
    # The same outcome time twice: the later reception decides.
    answer(store, d, "accepted", at="2026-11-05T10:00:00Z", received=T0 + timedelta(days=6))
    answer(store, d, "overridden", at="2026-11-05T10:00:00Z", received=T0 + timedelta(days=5))
    # An EHR resending the same override at another time still makes one card.
    answer(store, e, "overridden", at="2026-11-05T10:00:00Z")
    answer(store, e, "overridden", at="2026-11-05T10:01:00Z")

    report = store.feedback_report(SINCE, UNTIL)
    assert rows(store) == [("r", "1.0.0", None, 5, 5, 3, 2)]
    ((reasons),) = report.reasons
    assert [(reason.code, reason.cards) for reason in reasons.top] == [("later", 1), (None, 1)]


def test_feedback_for_unknown_cards_is_counted_apart(store: Store) -> None:
    (known,) = issue(store, "r")
    answer(store, known, "accepted")
    answer(store, "never-issued-1", "overridden", at="2026-11-05T10:00:00Z")
    answer(store, "never-issued-1", "accepted", at="2026-11-05T10:01:00Z")
    answer(store, "never-issued-2", "overridden")
    answer(store, "never-issued-3", "overridden", received=UNTIL)  # received outside the period
    report = store.feedback_report(SINCE, UNTIL)
    assert (report.unknown_cards.entries, report.unknown_cards.cards) == (3, 2)
    assert rows(store) == [("r", "1.0.0", None, 1, 1, 1, 0)]
    # Not attributable to a rule, it is still reported when one rule is asked for.
    assert store.feedback_report(SINCE, UNTIL, rule_id="r").unknown_cards.entries == 3


def test_override_reasons_grouped_ranked_and_displayed(store: Store) -> None:
    cards = issue(store, "r", n=9)
    other = issue(store, "r", version="2.0.0", n=2)
    # not-relevant: 4 cards (one in version 2.0.0); the newest display wins, a later row without one
    # does not blank it.
    answer(store, cards[0], "overridden", at="2026-11-05T10:00:00Z", code="not-relevant", display="Old")
    answer(store, cards[1], "overridden", at="2026-11-06T10:00:00Z", code="not-relevant", display="New")
    answer(store, cards[2], "overridden", at="2026-11-07T10:00:00Z", code="not-relevant", comment="PHI!")
    answer(store, other[0], "overridden", code="not-relevant", comment="  ")
    # The same code in another system is another reason.
    answer(store, cards[3], "overridden", code="not-relevant", system="http://other.example", comment="x")
    answer(store, cards[4], "overridden", code="patient-declined", comment="y")
    answer(store, cards[5], "overridden", code="patient-declined")
    answer(store, cards[6], "overridden", comment="why")
    answer(store, cards[7], "overridden")
    # A superseded override's reason is not counted, but its display may still name the coding.
    answer(store, cards[8], "overridden", at="2026-11-08T10:00:00Z", code="not-relevant", display="Newest")
    answer(store, cards[8], "accepted", at="2026-11-09T10:00:00Z")
    answer(store, other[1], "overridden", code="aaa")

    report = store.feedback_report(SINCE, UNTIL, top=3)
    (reasons,) = report.reasons
    assert reasons.rule_id == "r" and reasons.overridden == 10
    assert [(r.system, r.code, r.display, r.cards, r.with_comment) for r in reasons.top] == [
        (OVERRIDE, "not-relevant", "Newest", 4, 1),
        (OVERRIDE, "patient-declined", None, 2, 1),
        (None, None, None, 2, 1),
    ]
    assert [r.label for r in reasons.top] == ["Newest", "patient-declined", NO_REASON]
    assert (reasons.more_reasons, reasons.more_cards) == (2, 2)
    everything = store.feedback_report(SINCE, UNTIL, top=10).reasons[0].top
    assert [(r.system, r.code) for r in everything[3:]] == [
        (OVERRIDE, "aaa"),
        ("http://other.example", "not-relevant"),
    ]
    # Comments are counted, never carried.
    assert b"PHI!" not in orjson.dumps(report.as_dict())


def test_repeated_calls_for_one_hook_instance_issue_one_piece_of_advice(store: Store) -> None:
    # order-select called three times for one hookInstance: three copies of each card, one piece of advice.
    copies = issue(store, "r", n=3, hook="select-1")
    issue(store, "s", n=3, hook="select-1")
    issue(store, "r", n=1, hook="select-2")
    issue(store, "r", n=2, hook="select-1", service="svc-select")  # the same hookInstance, another service
    assert rows(store) == [("r", "1.0.0", None, 3, 0, 0, 0), ("s", "1.0.0", None, 1, 0, 0, 0)]
    assert rows(store, by_service=True)[:2] == [
        ("r", "1.0.0", "svc-select", 1, 0, 0, 0),
        ("r", "1.0.0", "svc-sign", 2, 0, 0, 0),
    ]
    # Feedback on two copies is one answer, the latest: never more answered than issued.
    answer(store, copies[0], "accepted", at="2026-11-05T10:00:00Z")
    answer(store, copies[2], "overridden", at="2026-11-05T11:00:00Z", code="seen")
    assert rows(store)[0] == ("r", "1.0.0", None, 3, 1, 0, 1)
    (reasons,) = store.feedback_report(SINCE, UNTIL).reasons
    assert (reasons.overridden, [r.code for r in reasons.top]) == (1, ["seen"])


def test_a_bare_override_code_is_shown_with_the_display_the_rule_offers(store: Store) -> None:
    cards = issue(store, "max-dose", n=4)
    offered = {("max-dose", "dose-reviewed"): (OVERRIDE, "Dose reviewed with rheumatology")}
    # The sandbox sends the code alone, without a system; another EHR sends our system; a third its own.
    answer(store, cards[0], "overridden", code="dose-reviewed", system=None)
    answer(store, cards[1], "overridden", code="dose-reviewed")
    answer(store, cards[2], "overridden", code="dose-reviewed", system="http://ehr.example/reasons")
    answer(store, cards[3], "overridden", code="weight-incorrect", display="Weight is wrong (EHR text)")
    (reasons,) = store.feedback_report(SINCE, UNTIL, offered=offered).reasons
    shown = {(r.system, r.code): (r.display, r.offered_display, r.label) for r in reasons.top}
    assert shown == {
        (None, "dose-reviewed"): (None, "Dose reviewed with rheumatology", "Dose reviewed with rheumatology"),
        (OVERRIDE, "dose-reviewed"): (
            None,
            "Dose reviewed with rheumatology",
            "Dose reviewed with rheumatology",
        ),
        # Another system's code is another reason: its code is all there is to show.
        ("http://ehr.example/reasons", "dose-reviewed"): (None, None, "dose-reviewed"),
        # What the EHR said wins over what the rule offered.
        (OVERRIDE, "weight-incorrect"): ("Weight is wrong (EHR text)", None, "Weight is wrong (EHR text)"),
    }
    # Without the rule files' reasons, the bare code is the label.
    (plain,) = store.feedback_report(SINCE, UNTIL).reasons
    assert {r.label for r in plain.top} >= {"dose-reviewed"}


def test_the_rule_files_offer_their_cards_override_reasons() -> None:
    from cds_service.engine.reasons import offered_reasons_in
    from tests.conftest import RULES

    offered = offered_reasons_in(RULES)
    system = "https://cds-service.example.org/override-reasons"
    assert offered[("max-dose", "dose-reviewed")] == (system, "Dose reviewed with rheumatology")
    assert offered[("infusion-build", "dose-intended")] == (system, "Dose intended; pharmacy to build")
    assert offered[("renal-dose", "clearance-not-representative")][1] == (
        "Kidney function record not representative"
    )


def test_a_rule_filter_and_a_split_per_service(store: Store) -> None:
    issue(store, "r", service="svc-sign", n=2)
    (selected,) = issue(store, "r", service="svc-select")
    issue(store, "s", service="svc-sign")
    answer(store, selected, "overridden")
    assert rows(store, rule_id="r") == [("r", "1.0.0", None, 3, 1, 0, 1)]
    assert rows(store, by_service=True) == [
        ("r", "1.0.0", "svc-select", 1, 1, 0, 1),
        ("r", "1.0.0", "svc-sign", 2, 0, 0, 0),
        ("s", "1.0.0", "svc-sign", 1, 0, 0, 0),
    ]
    assert rows(store, rule_id="nothing") == []
    assert store.feedback_report(SINCE, UNTIL, rule_id="nothing").totals.override_rate is None


def test_the_json_form_names_the_period_and_every_figure(store: Store) -> None:
    (card,) = issue(store, "r")
    answer(store, card, "overridden", code="c", display="Because")
    document = store.feedback_report(SINCE, UNTIL).as_dict()
    assert document == {
        "since": "2026-11-01T00:00:00Z",
        "until": "2026-12-01T00:00:00Z",
        "rule_id": None,
        "by_service": False,
        "rows": [
            {
                "rule_id": "r",
                "rule_version": "1.0.0",
                "issued": 1,
                "with_feedback": 1,
                "accepted": 0,
                "overridden": 1,
                "override_rate": 1.0,
            }
        ],
        "totals": {"issued": 1, "with_feedback": 1, "accepted": 0, "overridden": 1, "override_rate": 1.0},
        "override_reasons": [
            {
                "rule_id": "r",
                "overridden": 1,
                "top": [
                    {
                        "system": OVERRIDE,
                        "code": "c",
                        "display": "Because",
                        "offered_display": None,
                        "label": "Because",
                        "cards": 1,
                        "with_comment": 0,
                        "offered": True,
                    }
                ],
                "more_reasons": 0,
                "more_cards": 0,
            }
        ],
        "feedback_for_unknown_cards": {"entries": 0, "cards": 0},
    }


def test_an_unusable_database_is_a_store_error_without_the_password(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    store.url = "postgresql+psycopg://clinic:s3cret@127.0.0.1:9/gone"
    store.engine = create_engine(store.url, connect_args={"connect_timeout": 1})
    with pytest.raises(StoreError) as error:
        store.feedback_report(SINCE, UNTIL)
    assert "clinic:***@127.0.0.1:9/gone" in str(error.value)
    assert "s3cret" not in str(error.value)


def test_period_defaults_to_the_last_30_days_and_reads_iso_8601() -> None:
    now = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    assert period(None, None, now) == (now - timedelta(days=30), now)
    assert period("2026-11-01", None, now) == (datetime(2026, 11, 1, tzinfo=UTC), now)
    assert period(None, "2026-11-10T12:00+02:00", now) == (
        datetime(2026, 10, 11, 10, tzinfo=UTC),
        datetime(2026, 11, 10, 10, tzinfo=UTC),
    )
    assert parse_time("2026-11-23T08:00Z", "since") == datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert parse_time("2026-11-23T08:00", "since") == datetime(2026, 11, 23, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("yesterday", None, "since 'yesterday' is not an ISO 8601 time"),
        (None, "2026-13-01", "until '2026-13-01' is not an ISO 8601 time"),
        (
            "2026-11-02",
            "2026-11-01",
            "since (2026-11-02T00:00:00Z) must be before until (2026-11-01T00:00:00Z)",
        ),
        ("2026-11-01T01:00+01:00", "2026-11-01T00:00Z", "must be before until"),  # the same instant
        (None, "0001-01-02", "leaves no room for a 30-day period"),
    ],
)
def test_bad_periods_are_explained(since: str | None, until: str | None, message: str) -> None:
    with pytest.raises(PeriodError, match=message.replace("(", r"\(").replace(")", r"\)")):
        period(since, until, datetime(2026, 11, 23, tzinfo=UTC))


def test_rule_ids_are_checked_before_they_reach_the_database() -> None:
    assert check_rule_id(None) is None
    assert check_rule_id("  ") is None
    assert check_rule_id(" max-dose ") == "max-dose"
    for bad in ("a\x00b", "x" * 129, "line\nbreak"):
        with pytest.raises(PeriodError, match="is not a rule id"):
            check_rule_id(bad)
