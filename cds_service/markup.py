"""Text that may quote the EHR, made inert in a card.

A card's detail is Markdown (GitHub-flavoured, per CDS Hooks), and EHRs render it: a unit string, a route,
an order's text, a resource id or a FHIR server's message placed there raw could become a link, an image,
raw HTML or a heading on the clinician's screen. Every value filled into a card is therefore escaped,
unless it is `Markdown`: text the service wrote itself, whose EHR parts were escaped with
`markdown_text` when it was put together (a calculation's bold figure with its evidence).
"""

from __future__ import annotations

import functools
import re


class Markdown(str):
    """Markdown the service wrote; any EHR text inside went through `markdown_text`. Formatting or
    joining it gives a plain str again, which is escaped as a whole: safe, if less pretty."""

    __slots__ = ()


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# CommonMark and GFM inline syntax: code, emphasis, links and images, raw HTML and entities, tables,
# strikethrough, headings. Each is literal once backslash-escaped, in every renderer. (">" alone opens
# nothing: "<" is escaped, and a quote needs the start of a line.)
_SYNTAX = re.compile(r"([\\`*_\[\]<&!|~#])")
# GFM makes links of bare URLs, www. names and e-mail addresses: an escape breaks each trigger.
_AUTOLINK = re.compile(r"(?i)(?<=[a-z0-9]):(?=//)|(?<=\bwww)\.|@")
# Block syntax that only counts at the start of a line: a list item, a quote, a setext heading's underline.
_LEADING_BLOCK = re.compile(r"^(\s*)([-+=>]|\d{1,9}(?=[.)]))")


def plain_text(text: str) -> str:
    """Text for a plain-text field (a summary, a label): one line, no control characters."""
    return _CONTROL.sub(" ", text)


def markdown_text(text: str) -> str:
    """Text for a Markdown field that shows exactly its characters: never a link, image, raw HTML,
    emphasis, heading, list or table, whatever it holds."""
    # Cards quote much the same short values on every call; four substitutions each add up.
    return _markdown_cached(text) if len(text) <= _CACHED_LENGTH else _markdown(text)


_CACHED_LENGTH = 200


def _markdown(text: str) -> str:
    escaped = _SYNTAX.sub(r"\\\1", plain_text(text))
    escaped = _AUTOLINK.sub(lambda match: "\\" + match.group(0), escaped)
    return _LEADING_BLOCK.sub(_inert_marker, escaped)


_markdown_cached = functools.lru_cache(maxsize=4096)(_markdown)


def _inert_marker(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    if marker[0].isdigit():
        return f"{indent}{marker}\\"  # "1." still reads "1.", and starts no list
    return f"{indent}\\{marker}"
