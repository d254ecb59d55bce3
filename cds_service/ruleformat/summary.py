"""The summary of a merged card: as many names as fit in the spec's 140 characters, never a cut word."""

from __future__ import annotations

from collections.abc import Sequence

from cds_service.protocol.response import SUMMARY_MAX

# A check's name is at most 32 characters (DataNeeded.check): one name and "+99 more" always fit where
# the summary leaves this much room, which lint checks (summary_room).
CHECKS_WIDTH = 32 + len(" +99 more")
COUNT_WIDTH = 2


def compose_summary(template: str, checks: Sequence[str]) -> str:
    """The summary with as many check names as fit in the 140 characters, then "+N more"; never a cut
    word (lint proves that one name and "+99 more" always fit)."""
    count = str(len(checks))
    for shown in range(len(checks), 0, -1):
        rest = len(checks) - shown
        names = ", ".join(checks[:shown]) + (f" +{rest} more" if rest else "")
        text = template.replace("{count}", count).replace("{checks}", names)
        if len(text) <= SUMMARY_MAX:
            return text
    return template.replace("{count}", count).replace("{checks}", f"{count} checks")


def summary_room(template: str) -> int:
    """The longest the merged summary can be: the template with the widest count and check list lint
    assumes (a template longer than SUMMARY_MAX with them fails lint)."""
    return len(template.replace("{count}", "9" * COUNT_WIDTH).replace("{checks}", "x" * CHECKS_WIDTH))
