"""Names in free text: whole words, any case, abbreviated genus, denied mentions."""

from __future__ import annotations

import pytest

from cds_service.facts.names import Names, Negations, normalise

NEGATIONS = Negations.of(["no", "negative for"], ["not isolated", "not detected"])
ORGANISMS = Names.of(["Escherichia coli", "Klebsiella", "gram-negative rods", "Enterobacterales"], NEGATIONS)


def test_normalise() -> None:
    assert normalise("  Gram-negative\t RODS / few ") == "gram negative rods few"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Escherichia coli", "escherichia coli"),
        ("ESCHERICHIA COLI (ESBL)", "escherichia coli"),
        ("E. coli", "e. coli"),
        ("E.coli", "e.coli"),
        ("E coli", "e coli"),
        ("Klebsiella oxytoca", "klebsiella"),
        ("Klebsiella sp.", "klebsiella"),
        ("Gram-negative rods", "gram negative rods"),
        ("Enterobacterales, identification to follow", "enterobacterales"),
        ("growth of E. coli and Staphylococcus epidermidis", "e. coli"),
    ],
)
def test_found(text: str, found: str) -> None:
    assert ORGANISMS.find(text) == found


@pytest.mark.parametrize(
    "text",
    [
        "Campylobacter coli",  # another genus with the same species word
        "Enterobacter cloacae",  # not listed here; "Enterobacterales" is not a prefix match
        "Klebsiellae",  # whole words only
        "Staphylococcus aureus",
        "",
    ],
)
def test_not_found(text: str) -> None:
    assert ORGANISMS.find(text) is None


@pytest.mark.parametrize(
    ("text", "denied", "found"),
    [
        ("No Escherichia coli", True, None),
        ("negative for gram-negative rods", True, None),
        ("E. coli not isolated", True, None),
        ("E. coli", False, "e. coli"),
        ("No growth", False, None),  # no mention at all is not a denial
        ("no E. coli; Klebsiella pneumoniae isolated", False, "klebsiella"),
        ("no growth of E. coli", True, None),
        ("E. coli DNA not detected", True, None),
        ("E. coli isolated; Klebsiella not detected", False, "e. coli"),
    ],
)
def test_denied(text: str, denied: bool, found: str | None) -> None:
    assert ORGANISMS.denied(text) is denied
    assert ORGANISMS.find(text) == found


def test_a_lower_case_phrase_has_no_abbreviation() -> None:
    assert Names.of(["gram-negative rods"]).find("g. negative rods") is None


def test_starts() -> None:
    names = Names.of(["no growth", "negative"])
    assert names.starts("No growth at 5 days")
    assert names.starts("Negative")
    assert not names.starts("Gram-negative")
