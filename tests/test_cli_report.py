"""cds-service report: exact figures from cards and feedback sent over the real HTTP API or stored
directly, the period's defaults and edges, clear errors and exit codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from cds_service.cli import main
from cds_service.store.database import AuditRow, FeedbackRow, IssuedCard, Store
from tests.conftest import RULES
from tests.test_app import ORDER_SIGN, sandbox_anakinra_order_sign

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PERIOD = ["--since", "2026-11-01T00:00:00Z", "--until", "2026-12-01T00:00:00Z"]


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("CDS_RULES_DIR", str(RULES))
    monkeypatch.setenv("CDS_DATABASE_URL", database_url)


def _seed(database_url: str, cards: list[tuple[str, str, str, datetime]], answers: list[FeedbackRow]) -> None:
    store = Store(database_url)
    issued = [
        IssuedCard(
            card_uuid=uuid,
            service_id=service,
            rule_id=rule,
            rule_version=version,
            indicator="info",
            patient_id="p1",
            hook_instance=f"h{uuid}",  # each card from its own call
            issued_at=at,
        )
        for uuid, (rule, version, service, at) in ((f"c{n}", card) for n, card in enumerate(cards))
    ]
    store.record_call(AuditRow(at=T0, endpoint="service", latency_ms=1, status=200), issued)
    store.record_feedback(answers)
    store.close()


def _feedback(card: str, outcome: str, code: str | None = None, display: str | None = None) -> FeedbackRow:
    return FeedbackRow(
        service_id="anakinra-order-sign",
        card_uuid=card,
        outcome=outcome,
        outcome_timestamp="2026-11-05T10:00:00Z",
        accepted_suggestions=["s"] if outcome == "accepted" else None,
        override_code=code,
        override_system="http://example.org/override" if code else None,
        override_display=display,
        user_comment=None,
        received_at=T0 + timedelta(days=5),
    )


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["report", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_text_report(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    day = T0 + timedelta(days=1)
    _seed(
        database_url,
        [
            ("max-dose", "1.1.0", "anakinra-order-sign", day),  # c0
            ("max-dose", "1.1.0", "anakinra-order-sign", day),  # c1
            ("max-dose", "1.1.0", "anakinra-order-select", day),  # c2
            ("max-dose", "1.0.0", "anakinra-order-sign", day),  # c3
            ("neutropenia", "1.1.0", "mas-patient-view", day),  # c4
            ("neutropenia", "1.1.0", "mas-patient-view", T0 - timedelta(seconds=1)),  # c5: before the period
        ],
        [
            _feedback("c0", "accepted"),
            _feedback("c1", "overridden", "not-relevant", "Not relevant"),
            _feedback("c2", "overridden"),
            _feedback("c3", "overridden", "not-relevant"),
            _feedback("c5", "overridden", "not-relevant"),
            _feedback("elsewhere", "accepted"),
        ],
    )
    status, out, _ = _run(capsys, *PERIOD)
    assert status == 0
    assert out == (
        "Cards issued from 2026-11-01T00:00:00Z to 2026-12-01T00:00:00Z (excluded), all rules\n"
        "\n"
        "rule         version  issued  with feedback  accepted  overridden  override rate\n"
        "max-dose     1.0.0         1              1         0           1         100.0%\n"
        "max-dose     1.1.0         3              3         1           2          66.7%\n"
        "neutropenia  1.1.0         1              0         0           0              -\n"
        "total                      5              4         1           3          75.0%\n"
        "\n"
        "Override reasons, max-dose: 3 card(s) overridden\n"
        "  cards  with a comment  code          display          system\n"
        "      2               0  not-relevant  Not relevant     http://example.org/override\n"
        "      1               0  -             no reason given  -\n"
        "\n"
        "Feedback for unknown cards (received in the period): 1 entry on 1 card(s)\n"
    )
    status, out, _ = _run(capsys, *PERIOD, "--rule", "max-dose", "--by-service", "--top", "1")
    assert status == 0
    assert out.splitlines()[:7] == [
        "Cards issued from 2026-11-01T00:00:00Z to 2026-12-01T00:00:00Z (excluded), rule max-dose",
        "",
        "rule      version  service                issued  with feedback  accepted  overridden  override rate",
        "max-dose  1.0.0    anakinra-order-sign         1              1         0           1         100.0%",
        "max-dose  1.1.0    anakinra-order-select       1              1         0           1         100.0%",
        "max-dose  1.1.0    anakinra-order-sign         2              2         1           1          50.0%",
        "total                                          4              4         1           3          75.0%",
    ]
    assert "  and 1 more reason(s), 1 card(s)" in out


def test_an_empty_period_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, *PERIOD)
    assert status == 0
    assert "No cards were issued in this period.\n" in out
    assert "0 entries on 0 card(s)" in out


def test_cards_and_feedback_sent_over_http(
    http: httpx.Client, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cards = []

    def data_card(body: dict[str, Any]) -> dict[str, Any]:
        answer = http.post(ORDER_SIGN, json=body).json()["cards"]
        (card,) = [
            c for c in answer if c["extension"]["cds-service-provenance"]["ruleId"] == "incomplete-data"
        ]
        return card

    for call in range(4):
        body = sandbox_anakinra_order_sign() | {"hookInstance": f"0b1c2d3e-0000-4000-8000-00000000000{call}"}
        cards.append(data_card(body)["uuid"])
    # The EHR calls again for the first hookInstance (order-select does as the selection changes): a
    # fresh copy of the same advice, which does not count again.
    again = sandbox_anakinra_order_sign() | {"hookInstance": "0b1c2d3e-0000-4000-8000-000000000000"}
    assert data_card(again)["uuid"] not in cards
    feedback: list[dict[str, Any]] = [
        {"card": cards[0], "outcome": "accepted", "outcomeTimestamp": "2026-11-23T10:00:00Z",
         "acceptedSuggestions": [{"id": "s1"}]},
        # Overridden, then accepted: the card counts as accepted.
        {"card": cards[1], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:20:00Z",
         "overrideReason": {"reason": {"code": "not-relevant", "system": "http://example.org/override"}}},
        {"card": cards[1], "outcome": "accepted", "outcomeTimestamp": "2026-11-23T10:25:00Z",
         "acceptedSuggestions": [{"id": "s1"}]},
        {"card": cards[2], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:30:00Z",
         "overrideReason": {"reason": {"code": "dup", "system": "http://example.org/override",
                                       "display": "Duplicate"}, "userComment": "Mrs Smith's PHI"}},
        {"card": "never-issued", "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:30:00Z"},
    ]  # fmt: skip
    response = http.post(ORDER_SIGN + "/feedback", json={"feedback": feedback})
    assert response.status_code == 200
    # The same feedback sent again changes nothing.
    assert http.post(ORDER_SIGN + "/feedback", json={"feedback": feedback}).status_code == 200

    # The call's other cards (the build, the checks waiting for data) have rows of their own: one rule here.
    status, out, _ = _run(capsys, "--json", "--rule", "incomplete-data")
    assert status == 0
    report = orjson.loads(out)
    assert report["rows"] == [
        {
            "rule_id": "incomplete-data",
            "rule_version": "1.0.0",
            "issued": 4,
            "with_feedback": 3,
            "accepted": 2,
            "overridden": 1,
            "override_rate": pytest.approx(1 / 3),
        }
    ]
    (reasons,) = report["override_reasons"]
    # The incomplete-data card offers no override reason: "dup" is kept, flagged as not offered.
    assert reasons["top"] == [
        {"system": "http://example.org/override", "code": "dup", "display": "Duplicate",
         "offered_display": None, "label": "Duplicate (not a reason the card offered)", "cards": 1,
         "with_comment": 1, "offered": False}
    ]  # fmt: skip
    assert report["feedback_for_unknown_cards"] == {"entries": 1, "cards": 1}
    assert "PHI" not in out
    # The default period is the last 30 days, up to now.
    until = datetime.fromisoformat(report["until"])
    assert abs(until - datetime.now(UTC)) < timedelta(minutes=5)
    assert until - datetime.fromisoformat(report["since"]) == timedelta(days=30)
    # Cards issued now are before an --until in the past: none then.
    status, out, _ = _run(capsys, "--json", "--until", (datetime.now(UTC) - timedelta(hours=1)).isoformat())
    assert orjson.loads(out)["rows"] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "last week"], "error: --since 'last week' is not an ISO 8601 time"),
        (["--until", "2026-02-30"], "error: --until '2026-02-30' is not an ISO 8601 time"),
        (
            ["--since", "2026-11-02", "--until", "2026-11-02T00:59:59+01:00"],
            "error: --since (2026-11-02T00:00:00Z) must be before --until (2026-11-01T23:59:59Z)",
        ),
        (["--since", "2026-11-01", "--until", "2026-11-01"], "must be before --until"),
        (["--rule", "bad\x00rule"], "error: rule 'bad\\x00rule' is not a rule id"),
        (["--top", "-1"], "error: --top -1 must be 0 or more"),
    ],
)
def test_bad_options_exit_2_with_the_reason(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = _run(capsys, *argv)
    assert (status, out) == (2, "")
    assert message in err


def test_an_unusable_database_exits_1_with_the_url_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "CDS_DATABASE_URL", "postgresql+psycopg://clinic:s3cret@127.0.0.1:9/cds?connect_timeout=1"
    )
    status, out, err = _run(capsys)
    assert (status, out) == (1, "")
    assert "error: database postgresql+psycopg://clinic:***@127.0.0.1:9/cds" in err
    assert "s3cret" not in err


def test_the_help_states_what_is_counted(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for fragment in (
        "[--since, --until) on each card's issue time",
        "count once, and so does their feedback, by the latest outcome",
        "never issued here is counted apart",
        "only counted, never shown",
    ):
        assert fragment in text


def test_a_bare_override_code_is_shown_with_the_rule_files_display(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CDS Hooks sandbox sends reason.code alone: no system, no display.
    bare = _feedback("c0", "overridden", code="dose-reviewed")
    bare = FeedbackRow(**{**bare.__dict__, "override_system": None})
    _seed(database_url, [("max-dose", "1.2.0", "anakinra-order-sign", T0 + timedelta(days=1))], [bare])
    status, out, _ = _run(capsys, *PERIOD)
    assert status == 0
    assert "Dose reviewed with rheumatology" in out
    status, out, _ = _run(capsys, *PERIOD, "--json")
    (reason,) = orjson.loads(out)["override_reasons"][0]["top"]
    assert (reason["code"], reason["display"], reason["label"]) == (
        "dose-reviewed",
        None,
        "Dose reviewed with rheumatology",
    )


def test_ehr_text_reaches_the_terminal_without_its_control_characters(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # An override display that would clear the screen, recolour it and reverse the line's reading order.
    hostile = "\x1b[2J\x1b[31mall fine\x07\u202eenod\r\n"
    _seed(
        database_url,
        [("max-dose", "1.1.0", "anakinra-order-sign", T0 + timedelta(days=1))],
        [_feedback("c0", "overridden", "code\x1b[0m", hostile)],
    )
    status, out, _ = _run(capsys, *PERIOD)
    assert status == 0
    assert "all fine" in out
    assert not any(ch in out for ch in "\x1b\x07\r\u202e"), repr(out)
    assert out.count("\n") == len(out.splitlines())  # no line was split or rewound


def test_a_reason_the_card_did_not_offer_is_shown_apart(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses

    _seed(
        database_url,
        [("max-dose", "1.1.0", "anakinra-order-sign", T0 + timedelta(days=1))] * 2,
        [
            _feedback("c0", "overridden", "dose-reviewed", "Dose reviewed"),
            dataclasses.replace(
                _feedback("c1", "overridden", "dose-reviewed", "Dose reviewed"), reason_offered=False
            ),
        ],
    )
    status, out, _ = _run(capsys, *PERIOD)
    assert status == 0
    lines = [line for line in out.splitlines() if "Dose reviewed" in line]
    assert len(lines) == 2
    assert sum("(not a reason the card offered)" in line for line in lines) == 1
