"""The HLH-2004 summary lists: within their width, "+N more" before any word is cut."""

from __future__ import annotations

import pytest

from cds_service.clinical.hlh2004.lists import open_text, short_list
from cds_service.clinical.wording import clip


def test_short_list_fits_its_width() -> None:
    labels = ["fever", "splenomegaly", "cytopenias", "TG/fibrinogen", "hemophagocytosis", "NK activity"]
    assert short_list([], 43) == "none"
    assert short_list(labels[:2], 43) == "fever, splenomegaly"
    assert short_list(labels, 43) == "fever, splenomegaly, cytopenias +3 more"
    assert all(len(short_list(labels[:n], 43)) <= 43 for n in range(len(labels) + 1))
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
    assert open_text(unmeasured, undecided, 75) == text


def test_open_text_fits_its_width() -> None:
    labels = ["splenomegaly", "TG/fibrinogen", "hemophagocytosis", "NK activity", "fever", "cytopenias"]
    assert len(open_text(labels, ["sCD25", "ferritin"], 75)) <= 75
