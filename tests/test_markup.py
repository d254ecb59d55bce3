"""EHR text made inert in cards (cds_service/markup.py): rendered, it shows its own characters and nothing
else, whatever Markdown or HTML it holds."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from cds_service.cards.text import visible
from cds_service.markup import markdown_text, plain_text

# An EHR that renders card Markdown with raw HTML allowed: the most a hostile string could get from it.
PERMISSIVE = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

HOSTILE = [
    "[click here](https://evil.example/phish)",
    "![x](https://evil.example/pixel.png)",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<https://evil.example>",
    "&lt;b&gt; &amp; &#x3C;",
    "**bold** _em_ `code` ~~gone~~",
    "# heading",
    "- list item",
    "+ list item",
    "1. ordered",
    "12) ordered",
    "> quoted",
    "=====",
    "| a | b |\n|---|---|\n| c | d |",
    "line\nbreak\r\n- item",
    "[ref]\n\n[ref]: https://evil.example",
    "mg/dL\\",
    "\\*not bold\\*",
    "10*9/L",
    "[U]/mL",
    "{1.73_m2}",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_renders_as_its_own_characters(text: str) -> None:
    escaped = markdown_text(text)
    html = PERMISSIVE.render(f"Unit: {escaped}")
    assert re.search(r"<(?!/?p>)", html) is None, html  # one paragraph, no other element of any kind
    shown = html.removeprefix("<p>").removesuffix("</p>\n")
    expected = plain_text(text)
    assert _unescape_html(shown) == f"Unit: {expected}"
    assert visible(escaped) == expected


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_at_the_start_of_a_line_opens_no_block(text: str) -> None:
    html = PERMISSIVE.render(markdown_text(text))
    assert re.search(r"<(?!/?p>)", html) is None, html


@pytest.mark.parametrize(
    ("text", "trigger"),
    [
        ("see https://evil.example/x", "https\\://"),
        ("see HTTP://evil.example/x", "HTTP\\://"),
        ("go to www.evil.example", "www\\."),
        ("mail bob@evil.example", "bob\\@evil"),
    ],
)
def test_gfm_autolink_triggers_are_broken(text: str, trigger: str) -> None:
    # GFM links bare URLs, www. names and addresses; a backslash before the trigger stops it.
    assert trigger in markdown_text(text)


def test_plain_text_is_one_line_without_control_characters() -> None:
    assert plain_text("a\nb\r\n\tc\x00d\x1b[31me\u2028f") == "a b c d [31me f"


def test_ordinary_values_are_left_readable() -> None:
    assert markdown_text("IV 2400 mg/day (100 mg/h) over 24 h; 12.5 mL/h") == (
        "IV 2400 mg/day (100 mg/h) over 24 h; 12.5 mL/h"
    )
    assert markdown_text("Observation/abc-123, 2026-11-22 06:00") == "Observation/abc-123, 2026-11-22 06:00"


def _unescape_html(html: str) -> str:
    import html as html_module

    return html_module.unescape(html)
