"""Rule test cases stored beside the rules (`<rule>.cases.yaml`), run by `cds-service rules test`, by the
pytest suite, and by hot reload before a new ruleset may serve.

A case is a patient (a fixture Bundle) plus a draft order, or a whole hook request; the expectation
names cards by rule id, indicator and text fragments, facts by value, and rules that must stay silent.
The case runs through the same pipeline as an HTTP call, with the data given as prefetch.
"""

from __future__ import annotations

import dataclasses
import difflib
import time
import uuid
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from cds_service.data.compose import bundle_resources, hook_request
from cds_service.engine.durable import DurableRules
from cds_service.engine.ruleset import CASES_SUFFIX, PackNames, RuleSet
from cds_service.ruleformat.text import format_number, visible
from cds_service.yamlfile import FileProblems, Location, Problem, YamlDoc, load_yaml, validation_problems

Text = Annotated[str, StringConstraints(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedCard(_Strict):
    rule: Text
    indicator: Literal["info", "warning", "critical"] | None = None
    summary_contains: list[str] = Field(default_factory=list)
    detail_contains: list[str] = Field(default_factory=list)
    suggestions: int | None = Field(default=None, description="number of suggestions on the card")
    suggestion_labels_contain: list[str] = Field(
        default_factory=list, description="text each found in some suggestion's label"
    )
    suggestion_resources_contain: list[str] = Field(
        default_factory=list,
        description='text each found in the compact JSON of some suggested resource, e.g. \'"end":"2026-12-01"\'',
    )
    speaks_for: list[str] = Field(
        default_factory=list,
        description="rule ids the card's provenance lists (a card merging several rules' cards lists each)",
    )
    recommended: int | None = Field(default=None, description="number of suggestions marked isRecommended")


class ExpectedFact(_Strict):
    value: float | str | bool | None = None
    unit: str | None = None
    missing: bool | None = Field(default=None, description="true: the fact could not be computed")
    missing_contains: str | None = None
    value_contains: list[str] = Field(
        default_factory=list, description="text each found in a text fact's value (e.g. hlh.evidence)"
    )
    tolerance: float = 1e-6


class Expectation(_Strict):
    cards: list[ExpectedCard] = Field(default_factory=list)
    no_cards: list[Text] = Field(default_factory=list, description="rule ids that must not produce a card")
    only_cards: bool = Field(default=False, description="no cards besides those listed")
    outcomes: dict[str, Literal["fired", "not-fired", "unknown"]] = Field(default_factory=dict)
    facts: dict[str, ExpectedFact | float | str | bool] = Field(default_factory=dict)
    response: dict[str, str] = Field(
        default_factory=dict,
        description="what the response step did with a rule's card: shown, merged, out-of-scope, "
        "service-silent, 'suppressed by <rule>' or 'not-recommended by <rule>'",
    )
    no_cards_at_all: bool = Field(default=False, description="the response holds no card at all")


class Case(_Strict):
    name: Text
    service: Text
    now: datetime | None = Field(
        default=None,
        description="the time the case is evaluated at, with its offset; without it, `rules test --now`",
    )
    patient: str | None = Field(default=None, description="a fixture Bundle, relative to this file")
    order: dict[str, Any] | None = Field(default=None, description="the draft MedicationRequest")
    add_resources: list[dict[str, Any]] = Field(
        default_factory=list, description="resources added to the patient's data (e.g. a weight)"
    )
    request: str | None = Field(default=None, description="a whole hook request body, relative to this file")
    expect: Expectation

    @model_validator(mode="after")
    def _data(self) -> Case:
        if self.request is None and self.patient is None:
            raise ValueError("give `patient` (with `order`) or `request`")
        if self.request is not None and (self.patient or self.order):
            raise ValueError("give either `request`, or `patient` and `order`, not both")
        if self.now is not None and self.now.tzinfo is None:
            raise ValueError("`now` needs a time zone, e.g. 2026-11-23T12:00:00Z")
        return self


class CaseFile(_Strict):
    cases: list[Case] = Field(min_length=1)


@dataclasses.dataclass(frozen=True)
class LoadedCase:
    case: Case
    path: Path
    line: int

    @property
    def label(self) -> str:
        return f"{self.path.name}: {self.case.name}"


@dataclasses.dataclass(frozen=True)
class CaseResult:
    loaded: LoadedCase
    failures: list[str]
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.failures


def case_files(rules_dir: Path) -> list[Path]:
    return sorted(rules_dir.glob(f"*{CASES_SUFFIX}"))


def load_cases(rules_dir: Path) -> list[LoadedCase]:
    """Every case beside the rules; raises FileProblems (file:line) for malformed case files."""
    files, problems = _read_cases(rules_dir)
    if problems:
        raise FileProblems(problems)
    return [
        LoadedCase(case, doc.path, doc.line(("cases", index)))
        for doc, cases in files
        for index, case in enumerate(cases)
    ]


def case_problems(rules_dir: Path, names: PackNames) -> list[Problem]:
    """What `rules lint` says about the case files: YAML, schema, missing fixture files, and rules,
    services and facts that the rule pack does not have."""
    files, problems = _read_cases(rules_dir)
    for doc, cases in files:
        for index, case in enumerate(cases):
            problems += _name_problems(doc, ("cases", index), case, names)
    return problems


def _read_cases(rules_dir: Path) -> tuple[list[tuple[YamlDoc, list[Case]]], list[Problem]]:
    problems: list[Problem] = []
    files: list[tuple[YamlDoc, list[Case]]] = []
    for path in case_files(rules_dir):
        try:
            doc = load_yaml(path)
            parsed = CaseFile.model_validate(doc.data)
        except FileProblems as exc:
            problems.extend(exc.problems)
            continue
        except ValidationError as exc:
            problems.extend(validation_problems(doc, exc))
            continue
        files.append((doc, parsed.cases))
        for index, case in enumerate(parsed.cases):
            problems.extend(_file_problems(doc, index, case))
    return files, problems


def _file_problems(doc: YamlDoc, index: int, case: Case) -> list[Problem]:
    problems = []
    for key in ("patient", "request"):
        name = getattr(case, key)
        if name is not None and not (doc.path.parent / name).is_file():
            problems.append(doc.problem(("cases", index, key), f"no such file: {name}"))
    return problems


def _name_problems(doc: YamlDoc, at: Location, case: Case, names: PackNames) -> list[Problem]:
    problems: list[Problem] = []

    def problem(location: Location, message: str) -> None:
        where = (*at, *location)
        problems.append(doc.problem(where, f"{'.'.join(map(str, where))}: {message}"))

    service_known = names.services is None or case.service in names.services
    if not service_known and names.services is not None:
        problem(("service",), f"unknown service {case.service!r} (known: {', '.join(names.services)})")
    expect = case.expect
    named: list[tuple[Location, str]] = [
        (("expect", "cards", i, "rule"), card.rule) for i, card in enumerate(expect.cards)
    ]
    named += [(("expect", "no_cards", i), rule_id) for i, rule_id in enumerate(expect.no_cards)]
    named += [(("expect", "outcomes", rule_id), rule_id) for rule_id in expect.outcomes]
    named += [(("expect", "response", rule_id), rule_id) for rule_id in expect.response]
    for location, rule_id in named:
        if rule_id not in names.rules:
            problem(location, f"unknown rule {rule_id!r}{_did_you_mean(rule_id, names.rules)}")
            continue
        services = names.rules[rule_id]
        if service_known and services is not None and case.service not in services:
            problem(
                location,
                f"rule {rule_id!r} does not run in service {case.service!r} (it runs in {', '.join(services)})",
            )
    if names.facts is not None:
        for fact in expect.facts:
            if fact not in names.facts:
                problem(("expect", "facts", fact), f"unknown fact {fact!r}{_did_you_mean(fact, names.facts)}")
    return problems


def _did_you_mean(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


async def run_cases(
    ruleset: RuleSet,
    durable: DurableRules,
    cases: list[LoadedCase],
    on_result: Any = None,
    now: datetime | None = None,
) -> list[CaseResult]:
    """Run cases against `ruleset` (which need not be the one serving: reload tests a candidate aside).
    on_result(result) is called after each case, for progress lines. `now` is the time of the cases
    that do not give their own; a case with neither fails, rather than depend on the day it runs."""
    from cds_service.config import Settings
    from cds_service.data.prefetch import FetchSettings
    from cds_service.data.upstream import Upstreams
    from cds_service.engine import RuleEngine
    from cds_service.pipeline import Runtime

    # Cases carry all their data as prefetch and name no FHIR server: nothing is ever fetched.
    runtime = Runtime(
        settings=Settings(rules_dir=ruleset.directory),
        engine=RuleEngine(ruleset, durable),
        upstreams=Upstreams(),
        fetch=FetchSettings(deadline_seconds=1.0, max_pages=1, without_token=False),
    )
    results = []
    try:
        for loaded in cases:
            result = await run_case(runtime, loaded, now)
            results.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        await runtime.upstreams.aclose()
    return results


async def run_case(runtime: Any, loaded: LoadedCase, now: datetime | None = None) -> CaseResult:
    from cds_service.pipeline import call_service
    from cds_service.protocol.outcome import ProblemError

    ruleset = runtime.engine.ruleset

    started = time.perf_counter()
    case = loaded.case
    failures: list[str] = []
    service = ruleset.services.get(case.service)
    if service is None:
        failures.append(f"unknown service {case.service!r}")
        return CaseResult(loaded, failures, time.perf_counter() - started)
    moment = case.now or now
    if moment is None:
        failures.append("no `now`: give the case one (e.g. now: 2026-11-23T12:00:00Z) or run with --now")
        return CaseResult(loaded, failures, time.perf_counter() - started)
    body = request_body(loaded, ruleset)
    try:
        answer = await call_service(runtime, case.service, body, now=moment)
    except ProblemError as exc:
        failures.append(
            f"the service answered HTTP {exc.status}: {'; '.join(i.diagnostics for i in exc.issues)}"
        )
        return CaseResult(loaded, failures, time.perf_counter() - started)
    cards = orjson.loads(answer.body)["cards"]
    failures += _check(case.expect, cards, answer.evaluation)
    failures += _suggestion_failures(cards, orjson.loads(body))
    failures += _duplicate_failures(cards)
    return CaseResult(loaded, failures, time.perf_counter() - started)


def request_body(loaded: LoadedCase, ruleset: RuleSet) -> bytes:
    case = loaded.case
    folder = loaded.path.parent
    if case.request is not None:
        return (folder / case.request).read_bytes()
    assert case.patient is not None
    service = ruleset.services.get(case.service)
    assert service is not None
    resources = bundle_resources(orjson.loads((folder / case.patient).read_bytes())) + case.add_resources
    hook_instance = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{loaded.path}#{case.name}"))
    return orjson.dumps(
        hook_request(service, resources, case.order, hook_instance, "Practitioner/rule-tests")
    )


def _check(expect: Expectation, cards: list[dict[str, Any]], evaluation: Any) -> list[str]:
    failures: list[str] = []
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for card in cards:
        for rule_id in speaks_for(card):
            by_rule.setdefault(rule_id, []).append(card)
    if expect.no_cards_at_all and cards:
        failures.append(f"expected no card at all, got {'; '.join(repr(c['summary']) for c in cards)}")
    plan = getattr(evaluation, "response", None)
    for rule_id, wanted_fate in expect.response.items():
        decision = plan.decision(rule_id) if plan is not None else None
        got = _fate(decision)
        if got is None or (got != wanted_fate and not got.startswith(f"{wanted_fate}: ")):
            failures.append(
                f"expected {rule_id} {wanted_fate!r} in the response, got {got or 'no card asked for'}"
            )
    for wanted in expect.cards:
        candidates = by_rule.get(wanted.rule, [])
        if not any(not _card_mismatch(wanted, card) for card in candidates):
            failures.append(_card_failure(wanted, candidates, cards))
    for rule_id in expect.no_cards:
        for card in by_rule.get(rule_id, []):
            failures.append(f"expected no card from {rule_id}, got [{card['indicator']}] {card['summary']!r}")
    if expect.only_cards:
        listed = {c.rule for c in expect.cards}
        for rule_id, extra in by_rule.items():
            if rule_id not in listed:
                failures += [f"unexpected card from {rule_id}: {c['summary']!r}" for c in extra]
    statuses = {o.rule.id: o.status for o in evaluation.outcomes}
    for rule_id, status in expect.outcomes.items():
        if statuses.get(rule_id) != status:
            failures.append(f"expected {rule_id} {status}, got {statuses.get(rule_id, 'not run')}")
    for name, wanted_fact in expect.facts.items():
        failures += _fact_failures(name, wanted_fact, evaluation.facts.get(name))
    return failures


def speaks_for(card: dict[str, Any]) -> list[str]:
    """The rules a card speaks for: every rule a merged card lists, else its one rule."""
    provenance = card.get("extension", {}).get("cds-service-provenance", {})
    listed = [r.get("ruleId", "?") for r in provenance.get("rules") or () if isinstance(r, dict)]
    return listed or [provenance.get("ruleId", "?")]


def _fate(decision: Any) -> str | None:
    if decision is None:
        return None
    if decision.fate == "suppressed":
        return f"suppressed by {decision.by}"
    if decision.not_recommended_by is not None:
        return f"not-recommended by {decision.not_recommended_by}: {decision.fate}"
    return decision.fate


def _duplicate_failures(cards: list[dict[str, Any]]) -> list[str]:
    """Checked on every case: one response never suggests the same test, or the same order, twice."""
    seen: dict[str, str] = {}
    failures = []
    for card in cards:
        for suggestion in card.get("suggestions") or ():
            for action in suggestion.get("actions") or ():
                resource = action.get("resource")
                if not isinstance(resource, dict):
                    continue
                if resource.get("resourceType") == "ServiceRequest":
                    key = orjson.dumps(resource.get("code"), option=orjson.OPT_SORT_KEYS).decode()
                else:
                    key = orjson.dumps(
                        [action.get("type"), resource.get("resourceType"), _dosing(resource)]
                    ).decode()
                if key in seen:
                    failures.append(
                        f"suggestion {suggestion.get('label')!r} of {card['summary']!r} repeats "
                        f"{seen[key]!r} of the same response"
                    )
                else:
                    seen[key] = str(suggestion.get("label"))
    return failures


def _card_mismatch(wanted: ExpectedCard, card: dict[str, Any]) -> list[str]:
    reasons = []
    if wanted.indicator and card.get("indicator") != wanted.indicator:
        reasons.append(f"indicator {card.get('indicator')} instead of {wanted.indicator}")
    for fragment in wanted.summary_contains:
        if fragment not in card.get("summary", ""):
            reasons.append(f"summary lacks {fragment!r}")
    for fragment in wanted.detail_contains:
        if fragment not in visible(card.get("detail", "")):
            reasons.append(f"detail lacks {fragment!r}")
    if wanted.suggestions is not None and len(card.get("suggestions") or ()) != wanted.suggestions:
        reasons.append(f"{len(card.get('suggestions') or ())} suggestions instead of {wanted.suggestions}")
    labels = [str(s.get("label", "")) for s in card.get("suggestions") or ()]
    for fragment in wanted.suggestion_labels_contain:
        if not any(fragment in label for label in labels):
            reasons.append(f"no suggestion label contains {fragment!r} (labels: {labels})")
    resources = [
        orjson.dumps(action["resource"]).decode()
        for s in card.get("suggestions") or ()
        for action in s.get("actions") or ()
        if isinstance(action.get("resource"), dict)
    ]
    for fragment in wanted.suggestion_resources_contain:
        if not any(fragment in resource for resource in resources):
            reasons.append(f"no suggested resource contains {fragment!r}")
    listed = speaks_for(card)
    for rule_id in wanted.speaks_for:
        if rule_id not in listed:
            reasons.append(f"the card does not speak for {rule_id} (it speaks for {', '.join(listed)})")
    recommended = sum(bool(s.get("isRecommended")) for s in card.get("suggestions") or ())
    if wanted.recommended is not None and recommended != wanted.recommended:
        reasons.append(f"{recommended} suggestions marked isRecommended instead of {wanted.recommended}")
    return reasons


def _suggestion_failures(cards: list[dict[str, Any]], request: dict[str, Any]) -> list[str]:
    """Checked on every case: a suggestion never equals the order it replaces (the same drug, dose, rate
    and schedule), whatever the case expects."""
    context = request.get("context")
    bundle = context.get("draftOrders") if isinstance(context, dict) else None
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    drafts = {
        (r.get("resourceType"), r.get("id")): r
        for e in entries or ()
        if isinstance(e, dict) and isinstance(r := e.get("resource"), dict)
    }
    failures = []
    for card in cards:
        for suggestion in card.get("suggestions") or ():
            for action in suggestion.get("actions") or ():
                resource = action.get("resource")
                if action.get("type") != "update" or not isinstance(resource, dict):
                    continue
                draft = drafts.get((resource.get("resourceType"), resource.get("id")))
                if draft is not None and _dosing(draft) == _dosing(resource):
                    failures.append(
                        f"suggestion {suggestion.get('label')!r} of [{card['indicator']}] {card['summary']!r} "
                        "equals the order it replaces"
                    )
    return failures


def _dosing(order: dict[str, Any]) -> tuple[str, ...]:
    """What an order gives, whatever the JSON around it: the drug (its codes, or the strength of the
    active ingredient of its bag), the route codes, the dose and rate, and the schedule."""

    def number(value: Any) -> Any:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    def quantity(value: Any) -> Any:
        if not isinstance(value, dict):
            return None
        return [number(value.get("value")), value.get("code") or value.get("unit")]

    def codes(concept: Any) -> list[str]:
        codings = concept.get("coding") if isinstance(concept, dict) else None
        return sorted(f"{c.get('system')}|{c.get('code')}" for c in codings or () if isinstance(c, dict))

    drug: Any = codes(order.get("medicationCodeableConcept"))
    reference = order.get("medicationReference")
    target = reference.get("reference") if isinstance(reference, dict) else None
    for contained in order.get("contained") or ():
        if isinstance(contained, dict) and isinstance(target, str) and f"#{contained.get('id')}" == target:
            drug = [
                [codes(i.get("itemCodeableConcept")), quantity((i.get("strength") or {}).get("numerator")),
                 quantity((i.get("strength") or {}).get("denominator"))]
                for i in contained.get("ingredient") or ()
                if isinstance(i, dict) and i.get("isActive") is not False
            ]  # fmt: skip
    dosages = order.get("dosageInstruction") or [{}]
    first = dosages[0] if isinstance(dosages[0], dict) else {}
    repeat = (first.get("timing") or {}).get("repeat") or {}
    rates = [
        [quantity(d.get("doseQuantity")), quantity(d.get("rateQuantity")), d.get("rateRatio")]
        for d in first.get("doseAndRate") or ()
        if isinstance(d, dict)
    ]
    parts = (
        drug,
        codes(first.get("route")),
        rates,
        [number(repeat.get("frequency")), number(repeat.get("period")), repeat.get("periodUnit")],
    )
    return tuple(orjson.dumps(part, option=orjson.OPT_SORT_KEYS).decode() for part in parts)


def _card_failure(wanted: ExpectedCard, candidates: list[dict[str, Any]], cards: list[dict[str, Any]]) -> str:
    head = f"expected a {wanted.indicator or ''} card from {wanted.rule}".replace("a  card", "a card")
    if not candidates:
        got = "; ".join(f"[{c['indicator']}] {c['summary']!r}" for c in cards) or "no cards"
        return f"{head}; got {got}"
    lines = [head + "; the closest differs:"]
    best = min(candidates, key=lambda c: len(_card_mismatch(wanted, c)))
    lines += [f"    - {reason}" for reason in _card_mismatch(wanted, best)]
    lines.append(f"    summary: {best.get('summary')!r}")
    return "\n".join(lines)


def _fact_failures(name: str, wanted: ExpectedFact | float | str | bool, fact: Any) -> list[str]:
    if not isinstance(wanted, ExpectedFact):
        wanted = ExpectedFact(value=wanted)
    if fact is None:
        return [f"fact {name}: no such fact"]
    shown = (
        f"{fact.value!r} {fact.unit or ''}".strip() if fact.value is not None else f"missing ({fact.missing})"
    )
    failures = []
    if wanted.missing is True and fact.value is not None:
        failures.append(f"fact {name}: expected missing, got {shown}")
    if wanted.missing is False and fact.value is None:
        failures.append(f"fact {name}: expected a value, got {shown}")
    if wanted.missing_contains and wanted.missing_contains not in (fact.missing or ""):
        failures.append(
            f"fact {name}: expected missing reason containing {wanted.missing_contains!r}, got {shown}"
        )
    if wanted.value is not None:
        same = (
            isinstance(fact.value, int | float)
            and not isinstance(fact.value, bool)
            and isinstance(wanted.value, int | float)
            and not isinstance(wanted.value, bool)
            and abs(float(fact.value) - float(wanted.value)) <= wanted.tolerance
        ) or fact.value == wanted.value
        if not same:
            failures.append(f"fact {name}: expected {_shown(wanted.value, wanted.unit)}, got {shown}")
    for fragment in wanted.value_contains:
        # A value may be Markdown with the EHR's parts escaped: quoted as a reader sees it rendered.
        if not isinstance(fact.value, str) or fragment not in visible(fact.value):
            failures.append(f"fact {name}: expected a value containing {fragment!r}, got {shown}")
    if wanted.unit is not None and fact.unit != wanted.unit:
        failures.append(f"fact {name}: expected unit {wanted.unit}, got {fact.unit}")
    return failures


def _shown(value: Any, unit: str | None, comparator: str | None = None) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = f"{comparator or ''}{format_number(float(value))}"
    else:
        text = repr(value)
    return f"{text} {unit}" if unit else text


def format_result(result: CaseResult) -> str:
    loaded = result.loaded
    status = "PASS" if result.passed else "FAIL"
    line = f"{status} {loaded.label} ({result.seconds * 1000:.1f} ms)"
    if result.passed:
        return line
    details = "\n".join(f"  {failure}" for failure in result.failures)
    return f"{line}\n  at {loaded.path}:{loaded.line}\n{details}"
