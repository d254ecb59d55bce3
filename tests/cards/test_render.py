"""Card rendering details that the rule cases do not show: what a cut summary says and logs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

import pytest

from cds_service.cards import render
from cds_service.engine import Finding
from cds_service.protocol.response import SUMMARY_MAX

_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _finding(rule_id: str) -> Finding:
    return cast(Finding, SimpleNamespace(rule_id=rule_id))


def test_a_long_summary_is_cut_and_warned_once_per_rule(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "_CUT_WARNED", set())
    long = "x" * (SUMMARY_MAX + 29)
    with caplog.at_level(logging.DEBUG, logger=render.log.name):
        cut = [render._summary(long, _finding("renal-dose")) for _ in range(3)]
        render._summary(long, _finding("max-dose"))
    assert cut == ["x" * (SUMMARY_MAX - 1) + "…"] * 3
    levels = [(record.levelno, record.getMessage().split(":")[0]) for record in caplog.records]
    assert levels == [
        (logging.WARNING, "rule renal-dose"),
        (logging.DEBUG, "rule renal-dose"),
        (logging.DEBUG, "rule renal-dose"),
        (logging.WARNING, "rule max-dose"),
    ]
    assert f"summary of {SUMMARY_MAX + 29} characters cut to {SUMMARY_MAX}" in caplog.records[0].getMessage()


def test_a_summary_that_fits_is_kept_and_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger=render.log.name):
        assert render._summary("y" * SUMMARY_MAX, _finding("renal-dose")) == "y" * SUMMARY_MAX
    assert caplog.records == []


@pytest.mark.parametrize(
    ("fixture", "first"),
    [
        # The rule pack orders these an info card (data not read, HLH-2004) before the build warning...
        ("order-sign-500mg-day.json", "500 mg/day cannot be built"),
        # ...and the merged data-needed card before the dialysis warning.
        ("order-sign-crrt-procedure-with-conditions.json", "On dialysis"),
    ],
)
async def test_cards_come_most_severe_first(fixture: str, first: str) -> None:
    import orjson

    from cds_service.config import Settings
    from cds_service.pipeline import Runtime, call_service
    from tests.conftest import RULES

    runtime = Runtime.create(Settings(rules_dir=RULES))
    try:
        body = (RULES.parent / "fhir_fixtures" / "requests" / fixture).read_bytes()
        answer = await call_service(runtime, "anakinra-order-sign", body, now=_NOW)
    finally:
        await runtime.aclose()
    cards = orjson.loads(answer.body)["cards"]
    order = {"critical": 0, "warning": 1, "info": 2}
    assert len(cards) > 1
    assert [order[c["indicator"]] for c in cards] == sorted(order[c["indicator"]] for c in cards)
    assert cards[0]["summary"].startswith(first)
    # What the store records follows the answer's order.
    assert [issued.card_uuid for issued in answer.issued] == [c["uuid"] for c in cards]
