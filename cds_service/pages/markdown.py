"""Card detail (GitHub-flavoured Markdown, per CDS Hooks) to HTML, the way an EHR would show it.

The detail is rule text filled with patient data, and a pasted request can put anything in it, so it is
treated as untrusted: raw HTML stays escaped text, markdown-it's link validation drops `javascript:`
and similar URLs, and images are not rendered (the pages' CSP would block a remote image anyway, and
an EHR would not fetch one on the service's say-so).
"""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict


def _link_open(
    renderer: RendererHTML, tokens: Sequence[Token], index: int, options: OptionsDict, env: EnvType
) -> str:
    # A link leaves the page it was read on, in a new tab, without telling the target where from.
    tokens[index].attrSet("target", "_blank")
    tokens[index].attrSet("rel", "noopener noreferrer")
    return renderer.renderToken(tokens, index, options, env)


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).disable("image")
    md.add_render_rule("link_open", _link_open)
    return md


_MD = _markdown()


def to_html(text: str | None) -> str:
    """HTML for a card's markdown; empty for no text."""
    return _MD.render(text) if text else ""
