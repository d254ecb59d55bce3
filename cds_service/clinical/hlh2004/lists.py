"""The short lists an HLH-2004 summary shows: the criteria in one state, and the open ones, each within
the width its fact spec declares ("+N more" before any word is cut)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cds_service.clinical.wording import clip

__all__ = ["open_text", "short_list"]


def open_text(
    unmeasured: Sequence[str],
    undecided: Sequence[str],
    width: int,
    stale: Sequence[tuple[str, datetime]] = (),
    window: str = "",
) -> str:
    """ "1 none in the last 14 days (ferritin last on 2026-10-01), 2 not yet measured (NK activity,
    hemophagocytosis), 1 not comparable (sCD25)", within `width`: lists are shortened ("+2 more"), then
    left out, before any word would be cut."""
    groups: list[list[str]] = []
    if stale:
        newest = max(when for _, when in stale)
        head = f"{len(stale)} none in the last {window}".rstrip()
        labels = [label for label, _ in stale]
        short = f"{len(stale)} none in {window}".rstrip()
        groups.append(
            [f"{head} ({text} last on {newest:%Y-%m-%d})" for text in _lists(labels)]
            + [f"{head} (last on {newest:%Y-%m-%d})", f"{short} (last {newest:%Y-%m-%d})", short]
        )
    if unmeasured or not (stale or undecided):
        head = f"{len(unmeasured)} not yet measured"
        groups.append([f"{head} ({text})" for text in _lists(unmeasured)] + [head])
    if undecided:
        head = f"{len(undecided)} not comparable"
        groups.append([f"{head} ({text})" for text in _lists(undecided)] + [head])
    chosen = [0] * len(groups)
    while True:
        text = ", ".join(group[i] for group, i in zip(groups, chosen, strict=True))
        if len(text) <= width:
            return text
        # Shorten the longest part that still can be; the date of the older results goes last.
        candidates = [k for k, group in enumerate(groups) if chosen[k] + 1 < len(group)]
        if not candidates:
            return clip(text, width)
        dated = 0 if stale else -1
        longest = max(candidates, key=lambda k: (k != dated, len(groups[k][chosen[k]])))
        chosen[longest] += 1


def _lists(labels: Sequence[str]) -> list[str]:
    """`labels` joined, then with fewer shown and "+N more", longest first."""
    if not labels:
        return []
    return [
        ", ".join(labels[:shown]) + (f" +{len(labels) - shown} more" if shown < len(labels) else "")
        for shown in range(len(labels), 0, -1)
    ]


def short_list(labels: Sequence[str], width: int) -> str:
    """`labels` joined, or as many as fit in `width` followed by "+N more"."""
    if not labels:
        return "none"
    for shown in range(len(labels), 0, -1):
        rest = len(labels) - shown
        text = ", ".join(labels[:shown]) + (f" +{rest} more" if rest else "")
        if len(text) <= width:
            return text
    return clip(f"{len(labels)} criteria", width)
