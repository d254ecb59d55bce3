"""Rule files must cite what a reader of this repository can follow.

A `source` names a published reference or a file of the repository (docs/clinical/...). The team's
working notes (the "seed" papers, bare rules-logic.md / terminology.md / order-representation.md, the
shared folder beside the checkout) are not in a clone, so a citation of them is a dead end for whoever
reviews a threshold.
The check reads the raw text, comments included: a comment that points there misleads the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from cds_service.yamlfile import Problem

_NOTES = "rules-logic|terminology|order-representation"
_UNFOLLOWABLE = re.compile(
    r"\.\./shared\b"
    r"|\bseeds? ?\d{1,3}\b"
    # A note named bare, or by any path but the repository's own docs/clinical/.
    rf"|(?<![\w/.-])(?:(?:\.\./)*[\w.-]+/)*(?:{_NOTES})\.md\b",
    re.IGNORECASE,
)
_OWN = re.compile(rf"^docs/clinical/(?:{_NOTES})\.md$")


def citation_problems(paths: Iterable[Path]) -> list[Problem]:
    """One error per line of `paths` that cites material outside the repository."""
    problems = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue  # unreadable files are reported by the loader that needs them
        for number, line in enumerate(lines, start=1):
            lowered = line.lower()
            if "shared" not in lowered and "seed" not in lowered and ".md" not in lowered:
                continue  # most lines: nothing the pattern could match
            for match in _UNFOLLOWABLE.finditer(line):
                if _OWN.match(match.group()):
                    continue
                problems.append(
                    Problem(
                        path,
                        number,
                        f"cites {match.group()!r}, which is not in this repository: cite the published "
                        "reference (author, year, title, section) or a file of the repository "
                        "(docs/clinical/rules-logic.md#..., docs/clinical/terminology.md#...)",
                    )
                )
    return problems
