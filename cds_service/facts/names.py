"""Names in free text (an organism sent as text only, a specimen type's display): whole words in any case,
hyphens read as spaces, a binomial also by its abbreviated genus ("E. coli" for "Escherichia coli"), and
a mention not counted when the words around it deny it ("no Escherichia coli isolated").

The names, and the words that deny one, come from the rule files; this module only matches them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

_SEPARATORS = re.compile(r"[-_/]+")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower case, hyphens and slashes as spaces, single spaces: "Gram-negative  rods" -> "gram negative
    rods"."""
    return _SPACES.sub(" ", _SEPARATORS.sub(" ", text.lower())).strip()


def _alternatives(name: str) -> list[str]:
    """Regex alternatives for one name. A capitalised first word followed by more words is a genus with
    its species: the genus may then be abbreviated to its initial, with or without a dot."""
    words = normalise(name).split(" ")
    spaced = r"\s+".join(re.escape(w) for w in words)
    found = [spaced]
    if len(words) > 1 and name[:1].isupper() and words[0].isalpha() and len(words[0]) > 2:
        rest = r"\s+".join(re.escape(w) for w in words[1:])
        found.append(rf"{re.escape(words[0][0])}\.?\s*{rest}")
    return found


def _pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    alternatives = [a for p in phrases for a in _alternatives(p)]
    if not alternatives:
        return None
    # Longest first, so "klebsiella pneumoniae" is reported rather than "klebsiella".
    alternatives.sort(key=len, reverse=True)
    return re.compile(r"(?<![\w.])(?:" + "|".join(alternatives) + r")(?!\w)")


@dataclasses.dataclass(frozen=True)
class Negations:
    """Words that deny the name they stand next to: `before` it ("no", "negative for") or `after` it
    ("not isolated")."""

    before: re.Pattern[str] | None
    after: re.Pattern[str] | None

    @classmethod
    def of(cls, before: Iterable[str], after: Iterable[str]) -> Negations:
        words_before = [r"\s+".join(re.escape(w) for w in normalise(p).split(" ")) for p in before]
        words_after = [r"\s+".join(re.escape(w) for w in normalise(p).split(" ")) for p in after]
        # Up to two plain words may stand between ("no growth of E. coli", "E. coli DNA not detected");
        # punctuation may not, so "E. coli isolated; Klebsiella not detected" denies only Klebsiella.
        return cls(
            re.compile(r"(?<!\w)(?:" + "|".join(words_before) + r")(?:\s+[a-z0-9]+){0,2}\s*$")
            if words_before
            else None,
            re.compile(r"^(?:\s+[a-z0-9]+){0,2}\s*(?:" + "|".join(words_after) + r")(?!\w)")
            if words_after
            else None,
        )

    def deny(self, text: str, start: int, end: int) -> bool:
        return bool(
            (self.before is not None and self.before.search(text[:start]))
            or (self.after is not None and self.after.search(text[end:]))
        )


NO_NEGATIONS = Negations(None, None)


@dataclasses.dataclass(frozen=True)
class Names:
    """A compiled list of names; `find` returns the first mention in a text that is not denied."""

    pattern: re.Pattern[str] | None
    negations: Negations = NO_NEGATIONS

    @classmethod
    def of(cls, names: Iterable[str], negations: Negations = NO_NEGATIONS) -> Names:
        return cls(_pattern(names), negations)

    def find(self, text: str) -> str | None:
        if self.pattern is None:
            return None
        lowered = normalise(text)
        for match in self.pattern.finditer(lowered):
            if not self.negations.deny(lowered, match.start(), match.end()):
                return match.group(0)
        return None

    def denied(self, text: str) -> bool:
        """Whether the text mentions one of the names only where the words around deny it."""
        if self.pattern is None:
            return False
        lowered = normalise(text)
        matches = list(self.pattern.finditer(lowered))
        return bool(matches) and all(self.negations.deny(lowered, m.start(), m.end()) for m in matches)

    def starts(self, text: str) -> bool:
        """Whether the text begins with one of the names ("No growth at 5 days")."""
        if self.pattern is None:
            return False
        match = self.pattern.match(normalise(text))
        return match is not None


EMPTY = Names(None)
