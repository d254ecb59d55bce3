"""Card rendering details that the rule cases do not show: what a cut summary says and logs."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import cast

import pytest

from cds_service.cards import render
from cds_service.engine import Finding
from cds_service.protocol.response import SUMMARY_MAX


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
