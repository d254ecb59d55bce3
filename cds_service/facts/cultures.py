"""Facts about the cultures of the record (cultures.*): a positive one, by organism, specimen, Gram stain."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime

from cds_service.data.resources import Resource
from cds_service.facts.coding import raw_keys, raw_texts, struct_keys, struct_texts
from cds_service.facts.knowledge import (
    Microbiology,
    MicroFinding,
    MicroResult,
    Specimen,
    ValueSet,
    duration_text,
    unavailable,
)
from cds_service.facts.model import Facts, LabValue
from cds_service.facts.named import Fact, FactSpec, missing

_NEVER = datetime.min.replace(tzinfo=UTC)
# Characters of a reported organism shown in a fact's detail: the card summary quotes it.
_SHOWN_VALUE = 40


def culture_specs(microbiology: Microbiology) -> list[FactSpec]:
    return [
        FactSpec(
            f"cultures.{f.name}.positive",
            "boolean",
            None,
            f"{f.label} resulted in the last {duration_text(f.window)}",
            # "organism (label, YYYY-MM-DD HH:MM)": the organism clipped to _SHOWN_VALUE, a short label.
            detail_width=_SHOWN_VALUE + 36,
        )
        for f in microbiology.findings.values()
    ]


def culture_facts(microbiology: Microbiology, facts: Facts) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    gap = unavailable(facts.unavailable, microbiology.sources)
    specimens = {f"Specimen/{s.id}": s for s in facts.other.get("Specimen", ()) if s.id}
    for finding in microbiology.findings.values():
        name = f"cultures.{finding.name}.positive"
        found = _results(finding, facts, specimens)
        if found.positives:
            found.positives.sort(key=lambda p: p[0].time or _NEVER, reverse=True)
            newest, label, organism = found.positives[0]
            assert newest.time is not None
            out[name] = Fact(
                name,
                True,
                time=newest.time,
                evidence=tuple(f"Observation/{lab.id}" for lab, _, _ in found.positives),
                detail=f"{_clip(organism)} ({label}, {newest.time:%Y-%m-%d %H:%M})",
            )
        elif gap is not None:
            out[name] = missing(name, gap)
        elif found.unknown:
            more = f" (and {len(found.unknown) - 2} more)" if len(found.unknown) > 2 else ""
            out[name] = missing(name, "; ".join(found.unknown[:2]) + more, tuple(found.evidence))
        else:
            detail = f"no {finding.label} in the last {duration_text(finding.window)}"
            if found.ruled_out:
                detail += f" ({'; '.join(found.ruled_out[:2])})"
            out[name] = Fact(name, False, evidence=tuple(found.evidence), detail=detail)
    return out


@dataclasses.dataclass
class _Found:
    positives: list[tuple[LabValue, str, str]] = dataclasses.field(default_factory=list)
    unknown: list[str] = dataclasses.field(default_factory=list)  # why a result could not be decided
    ruled_out: list[str] = dataclasses.field(default_factory=list)  # results read and found not to count
    evidence: list[str] = dataclasses.field(default_factory=list)


def _results(finding: MicroFinding, facts: Facts, specimens: dict[str, Resource]) -> _Found:
    start = facts.now - finding.window
    found = _Found()
    seen: set[int] = set()
    for result, lab, by_code in _candidates(finding, facts):
        if id(lab.resource) in seen:
            continue
        if lab.resource.valueCodeableConcept is None and not (lab.resource.valueString or "").strip():
            # What _classify calls "empty", without building its texts: most results are numbers, and
            # every one is a candidate for the kinds that accept any code on the specimen.
            continue
        kind, value = _classify(lab.resource, result)
        # A result coded as another kind, or not coded as this kind at all, is read only for a positive
        # value: its other values are not this kind's to judge.
        if kind == "empty" or (not by_code and kind != "positive"):
            continue
        seen.add(id(lab.resource))
        ref = f"Observation/{lab.id}"
        if lab.time is None:
            if kind in ("positive", "unrecognised"):
                found.unknown.append(f"{ref} ({value}) has no time")
                found.evidence.append(ref)
            continue
        if lab.time < start or lab.time > facts.now:
            continue
        if kind in ("other", "negative"):
            found.ruled_out.append(f"{ref}: {value}, {kind_text(kind)}")
            found.evidence.append(ref)
            continue
        on_specimen: bool | None
        if by_code and result.specimen_in_code:
            on_specimen, why = True, ""
        else:
            on_specimen, why = _on(lab.resource, finding.specimen, specimens, facts)
        if on_specimen is None:
            found.unknown.append(f"specimen of {ref} ({value}) unknown: {why}")
            found.evidence.append(ref)
        elif not on_specimen:
            found.ruled_out.append(f"{ref}: {value} on {why}, not {finding.specimen.label}")
            found.evidence.append(ref)
        elif kind == "positive":
            found.positives.append((lab, result.label, value))
        else:
            found.unknown.append(
                f"{ref} ({result.label}) reports '{value}', recognised neither as "
                f"{_labels(result.positive)} nor as {_labels(result.other + result.negative)}"
            )
            found.evidence.append(ref)
    return found


def _clip(text: str, width: int = _SHOWN_VALUE) -> str:
    """A reported value short enough for a card summary (the whole value is in the result itself)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def kind_text(kind: str) -> str:
    return {"other": "not gram-negative", "negative": "no organism"}.get(kind, kind)


def _labels(sets: tuple[ValueSet, ...]) -> str:
    return " or ".join(dict.fromkeys(s.label for s in sets)) or "anything listed"


def _candidates(finding: MicroFinding, facts: Facts) -> Iterator[tuple[MicroResult, LabValue, bool]]:
    """Results coded as one of the finding's kinds (True) first, so a Gram stain is read as a Gram stain;
    then every other result, for the kinds that also accept any code on the specimen (False)."""
    coded: set[str] = set()
    for result in finding.results:
        coded |= result.codes
        for code in result.codes:
            for lab in facts.labs.get(code, ()):
                yield result, lab, True
    for result in finding.results:
        if result.any_code_on_specimen:
            for code, labs in facts.labs.items():
                if code not in coded:
                    for lab in labs:
                        yield result, lab, False


def _value_texts(resource: Resource) -> tuple[list[str], list[str]]:
    """The codings and the texts (text, displays, valueString) a result states its value with."""
    concept = resource.valueCodeableConcept
    keys = struct_keys(concept)
    texts = struct_texts(concept)
    if resource.valueString and resource.valueString.strip():
        texts.append(resource.valueString)
    return keys, [t for t in texts if t.strip()]


def _classify(resource: Resource, result: MicroResult) -> tuple[str, str]:
    """positive / other / negative / unrecognised / empty, and the value as the result states it.

    Positive values are looked for first, so a mixed growth that includes a gram-negative organism counts.
    """
    keys, texts = _value_texts(resource)
    if not keys and not texts:
        return "empty", ""
    shown = texts[0] if texts else f"code {keys[0]}"
    for kind, sets in (("positive", result.positive), ("other", result.other), ("negative", result.negative)):
        for value_set in sets:
            if value_set.find(keys, texts) is not None:
                # A value sent as a code only is shown by what it was recognised as.
                return kind, shown if texts else f"{value_set.label} ({keys[0].partition('|')[2]})"
    # An organism named only to be denied ("no Escherichia coli isolated") reports no organism.
    if any(value_set.denied(texts) for value_set in result.positive + result.other):
        return "negative", shown
    return "unrecognised", shown


def _on(
    resource: Resource, specimen: Specimen, specimens: dict[str, Resource], facts: Facts
) -> tuple[bool | None, str]:
    """Whether the result is on `specimen` (True), on another known specimen (False, with its type), or
    cannot be told (None, with why): never a silent yes or no."""
    reference = resource.specimen
    if reference is None:
        return None, "the result names no specimen"
    why = "no Specimen.type"
    target: tuple[list[str], list[str]] | None = None
    if reference.reference:
        target = _specimen_type(reference.reference, resource, specimens)
        if target is None:
            gap = unavailable(facts.unavailable, specimen.sources)
            why = gap or f"{reference.reference} is not among the specimens sent or fetched"
    if target is not None:
        decided = _kind_of_specimen(specimen, *target)
        if decided is not None:
            return decided
        if target[0] or target[1]:
            why = f"type '{(target[1] or target[0])[0]}' of {reference.reference} is not recognised"
    if reference.display:
        decided = _kind_of_specimen(specimen, [], [reference.display])
        if decided is not None:
            return decided
        why += f"; its display '{reference.display}' is not recognised"
    return None, why


def _specimen_type(
    reference: str, resource: Resource, specimens: dict[str, Resource]
) -> tuple[list[str], list[str]] | None:
    """The codings and texts of the referenced Specimen's type; None when that Specimen is not here."""
    if reference.startswith("#"):
        for contained in resource.contained or ():
            if contained.get("resourceType") == "Specimen" and contained.get("id") == reference[1:]:
                kind = contained.get("type")
                return raw_keys(kind), raw_texts(kind)
        return None
    target = specimens.get("/".join(reference.rstrip("/").split("/")[-2:]))
    if target is None:
        return None
    return struct_keys(target.type), struct_texts(target.type)


def _kind_of_specimen(specimen: Specimen, keys: list[str], texts: list[str]) -> tuple[bool, str] | None:
    """(True, type) for the specimen, (False, type) for one known not to be it, None when undecided (no
    type, an unrecognised type, or a type that names both)."""
    shown = texts[0] if texts else keys[0] if keys else ""
    is_it = any(k in specimen.codes for k in keys) or any(specimen.names.find(t) for t in texts)
    is_not = any(k in specimen.other_codes for k in keys) or any(specimen.other_names.find(t) for t in texts)
    if is_it and not is_not:
        return True, shown
    if is_not and not is_it:
        return False, shown
    return None
