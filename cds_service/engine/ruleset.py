"""rules/ -> a checked, compiled RuleSet, or every problem with its file:line.

Loading and linting are the same code: a ruleset that loads is one that lints without errors, so the
service can never start with (or reload to) rules that `cds-service rules lint` would refuse.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import string
from collections.abc import Collection, Mapping
from pathlib import Path

from pydantic import ValidationError

from cds_service.charts.definition import ChartDefinition, load_charts
from cds_service.clinical.configure import Calculations, configure
from cds_service.clinical.registry import CALCULATIONS
from cds_service.engine.citations import citation_problems
from cds_service.engine.conditions import Compiled, CompileError, Converter, FieldMap, compile_condition
from cds_service.engine.durable import CompiledRuleset, DurableRules
from cds_service.facts.catalog import FactCatalog, load_catalog
from cds_service.protocol.discovery import ServiceFileError, ServiceRegistry, load_services
from cds_service.protocol.response import SUMMARY_MAX
from cds_service.ruleformat.actions import ACTIONS, DESCRIPTIONS
from cds_service.ruleformat.rulefile import (
    All,
    Any_,
    CardTemplate,
    Comparison,
    Condition,
    In,
    Is,
    Not,
    ResponseSettings,
    RuleFile,
    RulesetFile,
)
from cds_service.ruleformat.summary import summary_room
from cds_service.ruleformat.text import MISSING_WIDTH, WIDTH, longest, template_problems
from cds_service.ruleformat.tree import rule_tree_files
from cds_service.yamlfile import FileProblems, Location, Problem, YamlDoc, load_yaml, validation_problems

RULESET_FILE = "ruleset.yaml"
# durable-rules names of the scopes' conditions (a rule's sides are "<rule id>|T" ...: no clash, since a
# rule id has no colon).
SCOPE_PREFIX = "scope:"
# Discovery entries carry the ruleset's name, version and hash under this extension key.
RULESET_KEY = "cds-service-ruleset"
CASES_SUFFIX = ".cases.yaml"
# durable-rules expands every OR into its own path through the network; past this a rule is too
# tangled to review anyway.
MAX_TERMS = 256


@dataclasses.dataclass(frozen=True)
class Rule:
    spec: RuleFile
    path: Path
    compiled: Compiled
    # Every fact the rule reads: its condition's first, then those its card text shows.
    reads: tuple[str, ...] = ()
    variants: tuple[Compiled, ...] = ()  # the `when` of each card variant, in order
    # Fact -> the parameter values its conditions compare it with, in the fact's unit: card text shows a
    # number with enough digits to stay on the side of them it is on (2.004, not 2.00, against 2).
    thresholds: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    signal: Compiled | None = None  # the `signal` that lets the rule speak outside its scopes
    # The facts whose absence can leave the condition undecided (read by a leaf whose if_missing is
    # "unknown"): what a could-not-evaluate card lists as missing, not facts the rule reads as false.
    undecided_by: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> str:
        return self.spec.version


@dataclasses.dataclass(frozen=True)
class ServiceRules:
    rules: tuple[Rule, ...]
    engine_rules: CompiledRuleset


@dataclasses.dataclass
class RuleSet:
    name: str
    version: str
    hash: str
    directory: Path
    services: ServiceRegistry
    catalog: FactCatalog
    rules: dict[str, Rule]
    fields: FieldMap
    by_service: dict[str, ServiceRules]
    warnings: list[Problem]
    calculations: Calculations = dataclasses.field(default_factory=Calculations)
    # rules/charts, by id: what a card's chart link draws.
    charts: dict[str, ChartDefinition] = dataclasses.field(default_factory=dict)
    # ruleset.yaml: when rules and services may speak, and the response step.
    scopes: dict[str, Compiled] = dataclasses.field(default_factory=dict)
    settings: RulesetFile | None = None

    @property
    def response(self) -> ResponseSettings:
        return self.settings.response if self.settings is not None else ResponseSettings()

    def release(self, durable: DurableRules) -> None:
        for service_rules in self.by_service.values():
            durable.release(service_rules.engine_rules)


@dataclasses.dataclass
class _Checked:
    """What reading the files found, before anything touches durable-rules."""

    info: RulesetFile | None
    services: ServiceRegistry | None
    catalog: FactCatalog | None
    rules: dict[str, Rule]
    fields: FieldMap
    problems: list[Problem]
    calculations: Calculations = dataclasses.field(default_factory=Calculations)
    charts: dict[str, ChartDefinition] = dataclasses.field(default_factory=dict)
    # Every rule id a file declares, even one with errors, with its services (None: not readable).
    declared: dict[str, tuple[str, ...] | None] = dataclasses.field(default_factory=dict)
    scopes: dict[str, Compiled] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PackNames:
    """The names a test case may use, as far as the rule pack could be read; None where it could not
    (its own errors are reported, and the cases are not checked against a guess)."""

    rules: dict[str, tuple[str, ...] | None]  # rule id -> the services it runs in
    services: tuple[str, ...] | None
    facts: frozenset[str] | None


def rule_files(rules_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in rules_dir.glob("*.y*ml")
        if p.suffix in (".yaml", ".yml") and p.name != RULESET_FILE and not p.name.endswith(CASES_SUFFIX)
    )


def check_rules(rules_dir: Path) -> list[Problem]:
    """Every problem (errors and warnings) of the rule files, without compiling into durable-rules.
    `rules lint` adds the case files' (cds_service/lint.py)."""
    return _check(rules_dir).problems


def check_rule_pack(rules_dir: Path) -> tuple[list[Problem], PackNames]:
    """check_rules, with the names the case files may refer to."""
    checked = _check(rules_dir)
    rules = dict(checked.declared)
    # A service's own incomplete-data card is named in cases like a rule, and runs only in that service.
    for service in checked.services or ():
        card = service.incomplete_data_card
        if card is not None and card.id not in rules:
            rules[card.id] = tuple(
                s.id
                for s in checked.services or ()
                if s.incomplete_data_card and s.incomplete_data_card.id == card.id
            )
    names = PackNames(
        rules=rules,
        services=tuple(s.id for s in checked.services) if checked.services is not None else None,
        facts=frozenset(checked.catalog.specs) if checked.catalog is not None else None,
    )
    return checked.problems, names


def load_ruleset(rules_dir: Path, durable: DurableRules) -> RuleSet:
    """Load, check and compile rules_dir. Raises FileProblems listing every error (warnings are kept)."""
    checked = _check(rules_dir)
    errors = [p for p in checked.problems if p.severity == "error"]
    if errors:
        raise FileProblems(errors)
    assert checked.info and checked.services and checked.catalog
    by_service: dict[str, ServiceRules] = {}
    try:
        for service in checked.services:
            rules = tuple(r for r in checked.rules.values() if service.id in r.spec.services)
            expressions = {}
            for name, scope in checked.scopes.items():
                if not isinstance(scope.true, bool):
                    expressions[f"{SCOPE_PREFIX}{name}"] = scope.true
            for rule in rules:
                sides = [("T", rule.compiled.true), ("F", rule.compiled.false)]
                sides += [(f"V{i}", variant.true) for i, variant in enumerate(rule.variants)]
                if rule.signal is not None:
                    sides.append(("S", rule.signal.true))
                for side, expression in sides:
                    # A constant side needs no durable-rules rule: the evaluator knows it in advance.
                    if not isinstance(expression, bool):
                        expressions[f"{rule.id}|{side}"] = expression
            by_service[service.id] = ServiceRules(rules, durable.compile(expressions))
    except Exception:
        for compiled in by_service.values():
            durable.release(compiled.engine_rules)
        raise
    digest = ruleset_hash(rules_dir)
    extension = {RULESET_KEY: {"name": checked.info.name, "version": checked.info.version, "hash": digest}}
    return RuleSet(
        name=checked.info.name,
        version=checked.info.version,
        hash=digest,
        directory=rules_dir,
        services=checked.services.with_extension(extension),
        catalog=checked.catalog,
        rules=checked.rules,
        fields=checked.fields,
        by_service=by_service,
        warnings=[p for p in checked.problems if p.severity != "error"],
        calculations=checked.calculations,
        charts=checked.charts,
        scopes=checked.scopes,
        settings=checked.info,
    )


def ruleset_hash(rules_dir: Path) -> str:
    """sha256 over every file that decides what cards say (test cases excluded), by relative path."""
    digest = hashlib.sha256()
    for path in _card_files(rules_dir):
        digest.update(path.relative_to(rules_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _card_files(rules_dir: Path) -> list[Path]:
    """The YAML files that decide what cards say: everything under rules_dir but the test cases."""
    return [
        path
        for path in rule_tree_files(rules_dir)
        if path.suffix in (".yaml", ".yml") and not path.name.endswith(CASES_SUFFIX)
    ]


def _check(rules_dir: Path) -> _Checked:
    problems: list[Problem] = citation_problems(_card_files(rules_dir))
    info, info_doc = _ruleset_info(rules_dir, problems)
    services: ServiceRegistry | None = None
    try:
        services = load_services(rules_dir)
    except ServiceFileError as exc:
        problems.extend(_service_problem(text) for text in exc.problems)
    catalog: FactCatalog | None = None
    try:
        catalog = load_catalog(rules_dir)
    except FileProblems as exc:
        problems.extend(exc.problems)
    if services is not None and catalog is not None:
        problems.extend(_medication_problems(rules_dir, services, catalog))
    fields = FieldMap()
    rules: dict[str, Rule] = {}
    files = rule_files(rules_dir)
    if not files:
        problems.append(Problem(rules_dir, 1, "no rule files (*.yaml) in this directory"))
    parsed: list[tuple[YamlDoc, RuleFile]] = []
    declared: dict[str, tuple[str, ...] | None] = {}
    unreadable = False  # a file whose rule id is unknown: names of other rules cannot be checked against it
    for path in files:
        try:
            doc = load_yaml(path)
        except FileProblems as exc:
            problems.extend(exc.problems)
            unreadable = True
            continue
        declared.update(_declared(doc.data))
        try:
            parsed.append((doc, RuleFile.model_validate(doc.data)))
        except ValidationError as exc:
            problems.extend(validation_problems(doc, exc))
    if catalog is None:
        # Meaning checks need the fact catalog; its own errors are already reported.
        return _Checked(info, services, catalog, rules, fields, problems, declared=declared)
    by_id = {spec.id: spec for _, spec in parsed}
    docs = {spec.id: doc for doc, spec in parsed}
    configuration = configure(by_id, catalog, CALCULATIONS)
    for problem in configuration.problems:
        problems.append(docs[problem.rule_id].problem(problem.location, problem.message))
    catalog = dataclasses.replace(catalog, specs={**catalog.specs, **configuration.specs})
    problems.extend(_display_problems(rules_dir, catalog))
    charts, chart_problems = load_charts(
        rules_dir, catalog, {i: spec.parameters for i, spec in by_id.items()}
    )
    problems.extend(chart_problems)
    scopes = _checked_scopes(info, info_doc, catalog, fields, problems)
    problems.extend(_merge_problems(info, info_doc))
    problems.extend(_action_wording_problems(info, info_doc))
    if info is not None and info_doc is not None and services is not None:
        problems.extend(_service_scope_problems(rules_dir, services, info))
    for doc, spec in parsed:
        rule = _checked_rule(
            doc,
            spec,
            catalog,
            services,
            fields,
            problems,
            configuration.used.get(spec.id),
            set(charts),
            set(declared),
        )
        _response_problems(doc, spec, info, None if unreadable else declared, problems)
        if rule is None:
            continue
        if spec.id in rules:
            problems.append(
                doc.problem(("id",), f"duplicate rule id {spec.id!r} (also in {rules[spec.id].path})")
            )
            continue
        rules[spec.id] = rule
    return _Checked(
        info, services, catalog, rules, fields, problems, configuration.calculations, charts, declared, scopes
    )


def _declared(data: object) -> dict[str, tuple[str, ...] | None]:
    """The rule id a file declares and its services, read from the raw data: a file with errors still
    tells which rule it is, so that its cases are not reported as naming an unknown rule."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return {}
    services = data.get("services")
    if isinstance(services, list) and all(isinstance(s, str) for s in services):
        return {data["id"]: tuple(services)}
    return {data["id"]: None}


def _checked_rule(
    doc: YamlDoc,
    spec: RuleFile,
    catalog: FactCatalog,
    services: ServiceRegistry | None,
    fields: FieldMap,
    problems: list[Problem],
    calculation_parameters: set[str] | None = None,
    charts: Collection[str] = (),
    rule_ids: Collection[str] = (),
) -> Rule | None:
    before = len(problems)
    if doc.path.stem != spec.id:
        problems.append(doc.problem(("id",), f"file name should be {spec.id}.yaml", "warning"))
    if services is not None:
        for index, service_id in enumerate(spec.services):
            if services.get(service_id) is None:
                known = ", ".join(s.id for s in services)
                problems.append(
                    doc.problem(("services", index), f"unknown service {service_id!r} (known: {known})")
                )
    for name, parameter in spec.parameters.items():
        units = [parameter.unit] if parameter.unit else []
        units += [n.unit for n in parameter.also]
        for unit in units:
            if not _known_unit(catalog, unit):
                problems.append(
                    doc.problem(("parameters", name), f"parameter {name!r}: {unit!r} is not a UCUM unit")
                )
            elif unit not in catalog.units.display:
                problems.append(
                    doc.problem(
                        ("parameters", name),
                        f"parameter {name!r}: unit {unit!r} has no display form in rules/facts/units.yaml "
                        "(display:), so card text could not write it as people do",
                    )
                )
    compiled = None
    try:
        compiled = _compile(spec.when, ("when",), spec, catalog, fields)
    except _LocatedError as exc:
        problems.append(doc.problem(exc.location, str(exc)))
    variants: list[Compiled] = []
    for index, variant in enumerate(spec.variants):
        try:
            variants.append(_compile(variant.when, ("variants", index, "when"), spec, catalog, fields))
        except _LocatedError as exc:
            problems.append(doc.problem(exc.location, str(exc)))
    signal = None
    if spec.signal is not None:
        try:
            signal = _compile(spec.signal.when, ("signal", "when"), spec, catalog, fields)
        except _LocatedError as exc:
            problems.append(doc.problem(exc.location, str(exc)))
    if compiled is not None and compiled.terms > MAX_TERMS:
        problems.append(
            doc.problem(
                ("when",),
                f"condition expands to {compiled.terms} alternatives (limit {MAX_TERMS}); simplify it",
            )
        )
    used = _used_parameters(spec) | (calculation_parameters or set())
    for name in spec.parameters:
        if name not in used:
            problems.append(doc.problem(("parameters", name), f"parameter {name!r} is not used", "warning"))
    known_charts = charts
    ids = rule_ids
    _check_card(doc, ("card",), spec.card, spec, catalog, problems, known_charts, ids)
    for index, variant in enumerate(spec.variants):
        _check_card(
            doc, ("variants", index, "card"), variant.card, spec, catalog, problems, known_charts, ids
        )
    if spec.unknown.card is not None:
        _check_card(doc, ("unknown", "card"), spec.unknown.card, spec, catalog, problems, known_charts, ids)
    if len(problems) > before and any(p.severity == "error" for p in problems[before:]):
        return None
    assert compiled is not None
    shown = [_fact_of(name, catalog) for name in _template_names(spec)]
    variant_reads = [name for variant in variants for name in variant.reads]
    signal_reads = list(signal.reads) if signal is not None else []
    reads = tuple(
        dict.fromkeys([*compiled.reads, *variant_reads, *signal_reads, *(name for name in shown if name)])
    )
    undecided_by = tuple(
        dict.fromkeys(
            leaf.fact
            for _, leaf in _leaves(spec.when, ())
            if isinstance(leaf, Comparison | Is | In) and leaf.if_missing == "unknown"
        )
    )
    return Rule(
        spec, doc.path, compiled, reads, tuple(variants), _thresholds(spec, catalog), signal, undecided_by
    )


def _thresholds(spec: RuleFile, catalog: FactCatalog) -> dict[str, tuple[float, ...]]:
    found: dict[str, list[float]] = {}
    convert = _converter(catalog)
    for when in (spec.when, *(variant.when for variant in spec.variants)):
        for _, leaf in _leaves(when, ()):
            if not isinstance(leaf, Comparison) or leaf.param is None:
                continue
            parameter, fact = spec.parameters.get(leaf.param), catalog.specs.get(leaf.fact)
            if parameter is None or fact is None or isinstance(parameter.value, bool | str | list):
                continue
            value = float(parameter.value)
            if fact.unit is not None and parameter.unit:
                value = convert(value, parameter.unit, fact.unit, fact.name)
            found.setdefault(leaf.fact, []).append(value)
    return {name: tuple(values) for name, values in found.items()}


def _cards(spec: RuleFile) -> list[CardTemplate]:
    cards = [spec.card, *(variant.card for variant in spec.variants)]
    return cards + ([spec.unknown.card] if spec.unknown.card else [])


def _card_texts(card: CardTemplate) -> list[str]:
    """Every template text of a card: summary, detail, suggestion labels, and what it asks for."""
    texts = [card.summary, card.detail or "", *(s.label for s in card.suggestions)]
    if card.data_needed is not None:
        texts += [card.data_needed.needs, card.data_needed.unblocks]
    return texts


def _template_names(spec: RuleFile) -> list[str]:
    texts = [t for card in _cards(spec) for t in _card_texts(card)]
    return [name for text in texts for name in _names(text)]


def _fact_of(placeholder: str, catalog: FactCatalog) -> str | None:
    if placeholder in catalog.specs:
        return placeholder
    head = placeholder.rpartition(".")[0]
    return head if head in catalog.specs else None


class _LocatedError(Exception):
    def __init__(self, location: Location, message: str) -> None:
        super().__init__(message)
        self.location = location


def _compile(
    when: Condition, where: Location, spec: RuleFile, catalog: FactCatalog, fields: FieldMap
) -> Compiled:
    # Compile each leaf alone first so that an error points at its own line, then the whole tree.
    for location, leaf in _leaves(when, where):
        try:
            compile_condition(leaf, catalog.specs, spec.parameters, FieldMap(), _converter(catalog))
        except CompileError as exc:
            raise _LocatedError(location, str(exc)) from exc
    try:
        return compile_condition(when, catalog.specs, spec.parameters, fields, _converter(catalog))
    except CompileError as exc:
        raise _LocatedError(where, str(exc)) from exc


def _leaves(node: Condition, location: Location) -> list[tuple[Location, Condition]]:
    if isinstance(node, All):
        return [leaf for i, child in enumerate(node.all) for leaf in _leaves(child, (*location, "all", i))]
    if isinstance(node, Any_):
        return [leaf for i, child in enumerate(node.any) for leaf in _leaves(child, (*location, "any", i))]
    if isinstance(node, Not):
        return _leaves(node.not_, (*location, "not"))
    return [(location, node)]


def _used_parameters(spec: RuleFile) -> set[str]:
    conditions = [spec.when, *(variant.when for variant in spec.variants)]
    used = {
        leaf.param
        for when in conditions
        for _, leaf in _leaves(when, ())
        if isinstance(leaf, Comparison) and leaf.param
    }
    cards = _cards(spec)
    texts = [t for card in cards for t in _card_texts(card)]
    for text in texts:
        used.update(
            name.removeprefix("param.").split(".")[0] for name in _names(text) if name.startswith("param.")
        )
    for card in cards:
        for suggestion in card.suggestions:
            used.update(
                v for v in suggestion.arguments.values() if isinstance(v, str) and v in spec.parameters
            )
    return used


def _names(text: str) -> list[str]:
    from cds_service.ruleformat.text import placeholders

    return [name for name, _ in placeholders(text)]


_FILE_NAME = re.compile(r"\b[\w.-]+\.(?:ya?ml|md|json|py)\b|\bseeds?\s*0*\d+\b", re.IGNORECASE)


def _literal_texts(card: CardTemplate) -> list[tuple[Location, str]]:
    """A card's template texts without their placeholders: what the author wrote, that every card shows."""
    from cds_service.ruleformat.text import _PLACEHOLDER

    texts: list[tuple[Location, str]] = [(("summary",), card.summary), (("detail",), card.detail or "")]
    texts += [(("suggestions", i, "label"), s.label) for i, s in enumerate(card.suggestions)]
    if card.data_needed is not None:
        texts += [(("data_needed", "check"), card.data_needed.check)]
        texts += [(("data_needed", "unblocks"), card.data_needed.unblocks)]
    return [(where, _PLACEHOLDER.sub(" ", text)) for where, text in texts]


def _internal_name(text: str, rule_ids: Collection[str]) -> str | None:
    found = _FILE_NAME.search(text)
    if found:
        return found.group(0)
    for rule_id in rule_ids:
        if "-" in rule_id and re.search(rf"(?<![\w-]){re.escape(rule_id)}(?![\w-])", text):
            return rule_id
    return None


def _check_card(
    doc: YamlDoc,
    location: Location,
    card: CardTemplate,
    spec: RuleFile,
    catalog: FactCatalog,
    problems: list[Problem],
    charts: Collection[str] = (),
    rule_ids: Collection[str] = (),
) -> None:
    for index, link in enumerate(card.links):
        if link.chart is not None and link.chart not in charts:
            where = (*location, "links", index, "chart")
            known = ", ".join(sorted(charts)) or "none; add one to rules/charts"
            problems.append(
                doc.problem(
                    where, f"{'.'.join(map(str, where))}: unknown chart {link.chart!r} (known: {known})"
                )
            )
    for where, text in [(("source", "label"), card.source.label), *_literal_texts(card)]:
        named = _internal_name(text, rule_ids)
        if named:
            problems.append(
                doc.problem(
                    (*location, *where),
                    f"card text names {named!r}, an internal name: cite sources as readers know them "
                    "(author, year, title) and say what a check does, not its rule or file name",
                )
            )
    texts: list[tuple[Location, str]] = [(("summary",), card.summary), (("detail",), card.detail or "")]
    texts += [(("suggestions", i, "label"), s.label) for i, s in enumerate(card.suggestions)]
    if card.data_needed is not None:
        texts += [(("data_needed", "needs"), card.data_needed.needs)]
        texts += [(("data_needed", "unblocks"), card.data_needed.unblocks)]
    for where, text in texts:
        loc = (*location, *where)
        for message in template_problems(text, catalog.specs, spec.parameters):
            problems.append(doc.problem(loc, message))
    if not template_problems(card.summary, catalog.specs, spec.parameters):
        worst = longest(card.summary, catalog.specs, spec.parameters, catalog.units)
        if worst > SUMMARY_MAX:
            problems.append(
                doc.problem(
                    (*location, "summary"),
                    f"summary can reach {worst} characters with the widest values; CDS Hooks allows "
                    f"{SUMMARY_MAX} (numbers count 12, units 10, times 16, a fact's .missing "
                    f"{WIDTH['missing']}, {{missing}} {MISSING_WIDTH}, texts their declared width)",
                )
            )
    for index, suggestion in enumerate(card.suggestions):
        action = ACTIONS.get(suggestion.action)
        if action is None:
            problems.append(
                doc.problem(
                    (*location, "suggestions", index, "action"),
                    f"unknown action {suggestion.action!r} (known: {', '.join(sorted(ACTIONS))})",
                )
            )
            continue
        for message in action.argument_problems(suggestion.arguments, spec.parameters, catalog.specs):
            problems.append(doc.problem((*location, "suggestions", index, "arguments"), message))


def _ruleset_info(rules_dir: Path, problems: list[Problem]) -> tuple[RulesetFile | None, YamlDoc | None]:
    path = rules_dir / RULESET_FILE
    if not path.is_file():
        problems.append(Problem(path, 1, "missing: name and version of this ruleset (name:, version: 1.0.0)"))
        return None, None
    try:
        doc = load_yaml(path)
    except FileProblems as exc:
        problems.extend(exc.problems)
        return None, None
    try:
        return RulesetFile.model_validate(doc.data), doc
    except ValidationError as exc:
        problems.extend(validation_problems(doc, exc))
    return None, doc


def _checked_scopes(
    info: RulesetFile | None,
    doc: YamlDoc | None,
    catalog: FactCatalog,
    fields: FieldMap,
    problems: list[Problem],
) -> dict[str, Compiled]:
    """The scopes of ruleset.yaml, compiled; a scope reads facts only (no rule's parameters)."""
    if info is None or doc is None:
        return {}
    compiled: dict[str, Compiled] = {}
    convert = _converter(catalog)
    for name, scope in info.scopes.items():
        where: Location = ("scopes", name, "when")
        try:
            for location, leaf in _leaves(scope.when, where):
                try:
                    compile_condition(leaf, catalog.specs, {}, FieldMap(), convert)
                except CompileError as exc:
                    raise _LocatedError(location, str(exc)) from exc
            compiled[name] = compile_condition(scope.when, catalog.specs, {}, fields, convert)
        except _LocatedError as exc:
            problems.append(doc.problem(exc.location, f"scope {name!r}: {exc}"))
        except CompileError as exc:
            problems.append(doc.problem(where, f"scope {name!r}: {exc}"))
    return compiled


def _display_problems(rules_dir: Path, catalog: FactCatalog) -> list[Problem]:
    """Every unit a fact can print has a display form (rules/facts/units.yaml `display`)."""
    shown = catalog.units.display
    wanting = sorted({spec.unit for spec in catalog.specs.values() if spec.unit and spec.unit not in shown})
    path = rules_dir / "facts" / "units.yaml"
    return [
        Problem(path, 1, f"unit {unit!r} of the facts has no display form (add it under display:)")
        for unit in wanting
    ]


def _merge_problems(info: RulesetFile | None, doc: YamlDoc | None) -> list[Problem]:
    """The merged card's texts: only their own placeholders, and a summary that always fits."""
    if info is None or doc is None or info.response.data_needed is None:
        return []
    merge = info.response.data_needed
    where = ("response", "data_needed")
    problems = []
    for key, text, allowed in (
        ("summary", merge.summary, {"count", "checks"}),
        ("detail", merge.detail, {"items"}),
    ):
        used = set(re.findall(r"\{([^{}]*)\}", text))
        if used - allowed:
            names = ", ".join(f"{{{n}}}" for n in sorted(allowed))
            problems.append(
                doc.problem(
                    (*where, key), f"{key}: unknown placeholder(s) {sorted(used - allowed)}; use {names}"
                )
            )
    room = summary_room(merge.summary)
    if room > SUMMARY_MAX:
        problems.append(
            doc.problem(
                (*where, "summary"),
                f"summary can reach {room} characters with 99 checks and one check name of 32 characters; "
                f"CDS Hooks allows {SUMMARY_MAX}",
            )
        )
    return problems


def _action_wording_problems(info: RulesetFile | None, doc: YamlDoc | None) -> list[Problem]:
    """The action descriptions (response.actions): one per builder that takes one, naming only the
    placeholders that builder fills."""
    if info is None or doc is None:
        return []
    problems = []
    for action, text in info.response.actions.items():
        where = ("response", "actions", action)
        if action not in DESCRIPTIONS:
            known = ", ".join(sorted(DESCRIPTIONS))
            problems.append(
                doc.problem(where, f"no builder takes its description from here: {action!r} (known: {known})")
            )
            continue
        allowed = DESCRIPTIONS[action]
        try:
            used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
        except ValueError as exc:
            problems.append(doc.problem(where, f"{action}: not a template: {exc}"))
            continue
        if used - set(allowed):
            names = ", ".join(f"{{{n}}}" for n in allowed)
            problems.append(
                doc.problem(
                    where, f"{action}: unknown placeholder(s) {sorted(used - set(allowed))}; use {names}"
                )
            )
    return problems


def _service_scope_problems(rules_dir: Path, services: ServiceRegistry, info: RulesetFile) -> list[Problem]:
    problems = []
    for service in services:
        if service.speaks_when is not None and service.speaks_when not in info.scopes:
            path = next(
                (p for p in sorted((rules_dir / "services").glob("*.y*ml")) if _declares(p, service.id)),
                rules_dir / "services",
            )
            doc = load_yaml(path) if path.is_file() else None
            line = doc.line(("speaks_when",)) if doc else 1
            problems.append(Problem(path, line, _unknown_scope(service.speaks_when, info)))
    return problems


def _unknown_scope(name: str, info: RulesetFile) -> str:
    known = ", ".join(sorted(info.scopes)) or "none; add scopes to ruleset.yaml"
    return f"unknown scope {name!r} (ruleset.yaml scopes: {known})"


def _response_problems(
    doc: YamlDoc,
    spec: RuleFile,
    info: RulesetFile | None,
    declared: Mapping[str, object] | None,
    problems: list[Problem],
) -> None:
    """speaks_when names scopes that exist; the ruleset words the actions of the card's suggestions; a card
    supersedes rules that exist (not its own); only an info card asks for data, and only when the ruleset
    merges such cards."""
    if info is not None:
        for index, name in enumerate(spec.speaks_when):
            if name not in info.scopes:
                problems.append(doc.problem(("speaks_when", index), _unknown_scope(name, info)))
    cards: list[tuple[Location, CardTemplate]] = [(("card",), spec.card)]
    cards += [(("variants", i, "card"), v.card) for i, v in enumerate(spec.variants)]
    if spec.unknown.card is not None:
        cards.append((("unknown", "card"), spec.unknown.card))
    for location, card in cards:
        for index, suggestion in enumerate(card.suggestions):
            if (
                info is not None
                and suggestion.action in DESCRIPTIONS
                and suggestion.action not in info.response.actions
            ):
                problems.append(
                    doc.problem(
                        (*location, "suggestions", index, "action"),
                        f"{suggestion.action} takes its description from ruleset.yaml, which has none "
                        f"(response.actions: {suggestion.action}: ...)",
                    )
                )
        for index, entry in enumerate(card.supersedes):
            where = (*location, "supersedes", index, "rule")
            if entry.rule == spec.id:
                problems.append(doc.problem(where, f"a card cannot supersede its own rule ({spec.id})"))
            elif declared is not None and entry.rule not in declared:
                problems.append(doc.problem(where, f"unknown rule {entry.rule!r}"))
        if card.data_needed is not None:
            where = (*location, "data_needed")
            if card.indicator != "info":
                problems.append(doc.problem(where, "only an info card can ask for data (data_needed)"))
            if info is not None and info.response.data_needed is None:
                problems.append(
                    doc.problem(
                        where,
                        "data_needed has no effect: ruleset.yaml has no response.data_needed merge",
                        "warning",
                    )
                )


def _medication_problems(rules_dir: Path, services: ServiceRegistry, catalog: FactCatalog) -> list[Problem]:
    problems = []
    known = catalog.medications.classes
    for service in services:
        if service.medication is not None and service.medication not in known:
            path = next(
                (p for p in sorted((rules_dir / "services").glob("*.y*ml")) if _declares(p, service.id)),
                rules_dir / "services",
            )
            doc = load_yaml(path) if path.is_file() else None
            line = doc.line(("medication",)) if doc else 1
            problems.append(
                Problem(
                    path,
                    line,
                    f"medication {service.medication!r} is not in rules/facts (known: {', '.join(sorted(known))})",
                )
            )
    return problems


def _declares(path: Path, service_id: str) -> bool:
    try:
        return load_yaml(path).data.get("id") == service_id
    except (FileProblems, AttributeError):
        return False


def _service_problem(text: str) -> Problem:
    """ServiceFileError problems are already `file:line: message` strings."""
    location, _, message = text.partition(": ")
    path, _, line = location.rpartition(":")
    if not line.isdigit():
        return Problem(Path(location), 1, message or text)
    return Problem(Path(path), int(line), message)


def _converter(catalog: FactCatalog) -> Converter:
    def convert(value: float, from_unit: str, to_unit: str, fact_name: str) -> float:
        # Lab facts are named after their analyte, whose molar mass allows mmol/L <-> mg/dL.
        return catalog.convert(value, from_unit, to_unit, analyte=fact_name.split(".")[0])

    return convert


def _known_unit(catalog: FactCatalog, unit: str) -> bool:
    try:
        catalog.convert(1.0, unit, unit)
    except Exception:  # noqa: BLE001 - the converter's errors differ by cause; all mean "unknown"
        return False
    return True
