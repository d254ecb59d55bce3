"""The HLH-2004 summary lists: within their width, "+N more" before any word is cut."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cds_service.clinical.hlh2004.lists import open_text, short_list
from cds_service.clinical.wording import clip
from tests.clinical.hlh2004.support import settings

WORDING = settings().list_wording  # rules/hlh-2004.yaml


def test_short_list_fits_its_width() -> None:
    labels = ["fever", "splenomegaly", "cytopenias", "TG/fibrinogen", "hemophagocytosis", "NK activity"]
    assert short_list(WORDING, [], 43) == "none"
    assert short_list(WORDING, labels[:2], 43) == "fever, splenomegaly"
    assert short_list(WORDING, labels, 43) == "fever, splenomegaly, cytopenias +3 more"
    assert all(len(short_list(WORDING, labels[:n], 43)) <= 43 for n in range(len(labels) + 1))
    assert clip("abcdef", 4) == "abc…"


@pytest.mark.parametrize(
    ("unmeasured", "undecided", "text"),
    [
        (["NK activity", "sCD25"], [], "2 not yet measured (NK activity, sCD25)"),
        ([], ["sCD25"], "1 not comparable (sCD25)"),
        (["NK activity"], ["ferritin"], "1 not yet measured (NK activity), 1 not comparable (ferritin)"),
        ([], [], "0 not yet measured"),
    ],
)
def test_open_text_names_both_kinds_of_unknown(
    unmeasured: list[str], undecided: list[str], text: str
) -> None:
    assert open_text(WORDING, unmeasured, undecided, 75) == text


def test_open_text_fits_its_width() -> None:
    labels = ["splenomegaly", "TG/fibrinogen", "hemophagocytosis", "NK activity", "fever", "cytopenias"]
    assert len(open_text(WORDING, labels, ["sCD25", "ferritin"], 75)) <= 75


def test_the_lists_are_worded_by_the_rule_file() -> None:
    wording = settings(
        list_more_text="{list} and {more} others",
        list_none_text="-",
        list_count_text="{count} items",
        open_unmeasured_text="{count} untested",
        open_undecided_text="{count} unreadable",
        open_list_text="{head}: {list}",
        open_stale_text="{count} stale over {window}",
        open_stale_list_text="{head} [{list} @ {date}]",
    ).list_wording
    labels = ["fever", "splenomegaly", "cytopenias", "TG/fibrinogen"]
    assert short_list(wording, [], 43) == "-"
    assert short_list(wording, labels, 40) == "fever, splenomegaly and 2 others"
    assert short_list(wording, ["x" * 50], 12) == "1 items"
    assert (
        open_text(wording, ["NK activity"], ["sCD25"], 75) == "1 untested: NK activity, 1 unreadable: sCD25"
    )
    stale = [("ferritin", datetime(2026, 10, 1, tzinfo=UTC))]
    assert open_text(wording, [], [], 75, stale, "14 days") == "1 stale over 14 days [ferritin @ 2026-10-01]"
