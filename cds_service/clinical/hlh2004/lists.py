"""The short lists an HLH-2004 summary shows: the criteria in one state, and the open ones, each within
the width its fact spec declares ("+N more" before any word is cut), worded by the rule file's templates
(WORDING)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from cds_service.clinical.wording import clip

__all__ = ["WORDING", "open_text", "short_list"]

# How the lists read: templates of the rule file, and what each may name ({date}: YYYY-MM-DD).
WORDING: dict[str, tuple[str, ...]] = {
    "list_more_text": ("list", "more"),
    "list_none_text": (),
    "list_count_text": ("count",),
    "open_unmeasured_text": ("count",),
    "open_undecided_text": ("count",),
    "open_list_text": ("head", "list"),
    "open_stale_text": ("count", "window"),
    "open_stale_short_text": ("count", "window"),
    "open_stale_list_text": ("head", "list", "date"),
    "open_stale_date_text": ("head", "date"),
    "open_stale_short_date_text": ("head", "date"),
}


def open_text(
    wording: Mapping[str, str],
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
        date = f"{max(when for _, when in stale):%Y-%m-%d}"
        count = str(len(stale))
        head = wording["open_stale_text"].format(count=count, window=window).rstrip()
        stale_labels = [label for label, _ in stale]
        short = wording["open_stale_short_text"].format(count=count, window=window).rstrip()
        groups.append(
            [
                wording["open_stale_list_text"].format(head=head, list=text, date=date)
                for text in _lists(wording, stale_labels)
            ]
            + [
                wording["open_stale_date_text"].format(head=head, date=date),
                wording["open_stale_short_date_text"].format(head=short, date=date),
                short,
            ]
        )
    for name, labels in (("open_unmeasured_text", unmeasured), ("open_undecided_text", undecided)):
        # The unmeasured part is said even when empty if nothing else would be ("0 not yet measured").
        if labels or (name == "open_unmeasured_text" and not (stale or undecided)):
            head = wording[name].format(count=str(len(labels)))
            texts = _lists(wording, labels)
            groups.append([wording["open_list_text"].format(head=head, list=text) for text in texts] + [head])
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


def _shown(wording: Mapping[str, str], labels: Sequence[str], shown: int) -> str:
    """The first `shown` of `labels`, joined, and how many more there are."""
    text = ", ".join(labels[:shown])
    rest = len(labels) - shown
    return wording["list_more_text"].format(list=text, more=str(rest)) if rest else text


def _lists(wording: Mapping[str, str], labels: Sequence[str]) -> list[str]:
    """`labels` joined, then with fewer shown and "+N more", longest first."""
    return [_shown(wording, labels, shown) for shown in range(len(labels), 0, -1)]


def short_list(wording: Mapping[str, str], labels: Sequence[str], width: int) -> str:
    """`labels` joined, or as many as fit in `width` followed by "+N more"."""
    if not labels:
        return wording["list_none_text"]
    for shown in range(len(labels), 0, -1):
        text = _shown(wording, labels, shown)
        if len(text) <= width:
            return text
    return clip(wording["list_count_text"].format(count=str(len(labels))), width)
