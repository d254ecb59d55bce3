"""Codes and texts of FHIR CodeableConcepts, from raw JSON (draft orders) or decoded Resources."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cds_service.data.resources import CodeableConcept
from cds_service.facts.knowledge import Matcher

# Hyphenated NDC layouts (labeler-product-package digits); each is padded to 5-4-2.
_NDC_LAYOUTS = {(4, 4, 2), (5, 3, 2), (5, 4, 1), (5, 4, 2)}
_NDC11 = (5, 4, 2)


def key(system: str | None, code: str) -> str:
    return f"{system or ''}|{code}"


def raw_list(value: Any) -> list[Any]:
    """A FHIR array of raw request JSON as a list. An object where the array should be is read as a
    one-item array (the CDS Hooks sandbox sends `category` so); anything else (absent, null, a number, a
    text) as no items: `value or ()` would iterate a `true`."""
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, Mapping) else []


def raw_keys(concept: Any) -> list[str]:
    """'system|code' of every coding of a CodeableConcept given as JSON."""
    if not isinstance(concept, Mapping):
        return []
    keys = []
    for coding in raw_list(concept.get("coding")):
        if isinstance(coding, Mapping) and isinstance(coding.get("code"), str) and coding["code"]:
            system = coding.get("system")
            keys.append(key(system if isinstance(system, str) else None, coding["code"]))
    return keys


def raw_texts(concept: Any) -> list[str]:
    """The text and every coding's display of a CodeableConcept given as JSON."""
    if not isinstance(concept, Mapping):
        return []
    texts = [concept["text"]] if isinstance(concept.get("text"), str) else []
    for coding in raw_list(concept.get("coding")):
        if isinstance(coding, Mapping) and isinstance(coding.get("display"), str):
            texts.append(coding["display"])
    return texts


Concepts = CodeableConcept | list[CodeableConcept] | None


def concepts(value: Concepts) -> list[CodeableConcept]:
    """One CodeableConcept or a list of them (Encounter.type, Encounter.reasonCode) as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def struct_keys(concept: Concepts) -> list[str]:
    return [key(c.system, c.code) for one in concepts(concept) for c in one.coding or () if c.code]


def struct_texts(concept: Concepts) -> list[str]:
    texts = []
    for one in concepts(concept):
        texts += [one.text] if one.text else []
        texts += [c.display for c in one.coding or () if c.display]
    return texts


def ndc11(code: str) -> str:
    """The 11-digit form (5-4-2, no hyphens) of an NDC, so 66658-234-07 and 66658-0234-07 compare equal.

    A 10-digit NDC without hyphens is ambiguous (which segment is short?) and is returned unchanged.
    """
    parts = code.strip().split("-")
    if tuple(len(p) for p in parts) not in _NDC_LAYOUTS or not all(p.isdigit() for p in parts):
        return code.replace("-", "").strip()
    return "".join(p.zfill(w) for p, w in zip(parts, _NDC11, strict=True))


def matches(
    matcher: Matcher, keys: Iterable[str], texts: Iterable[str], ndc_systems: frozenset[str] = frozenset()
) -> bool:
    """Whether a concept with these codings and texts is the matcher's: by code, NDC, then text."""
    for coding_key in keys:
        if matcher.matches_code(coding_key):
            return True
        if matcher.ndc:
            system, _, code = coding_key.partition("|")
            if system in ndc_systems and ndc11(code) in matcher.ndc:
                return True
    if matcher.text:
        for text in texts:
            lowered = text.lower()
            if any(needle in lowered for needle in matcher.text):
                return True
    return False


@functools.lru_cache(maxsize=64)
def _words(phrases: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(p) for p in phrases) + r")\b", re.IGNORECASE)


def mentions(phrases: tuple[str, ...], text: str) -> bool:
    """Whether `text` holds one of `phrases` as whole words ("IV" in "IV push", not in "ivory")."""
    return bool(phrases) and _words(phrases).search(text) is not None
