"""Calculated facts: clinical arithmetic done by pure calculators (clinical/<topic>/calculator.py), configured
by the parameters of the rule file that `provides:` each calculation, in the order they depend on each
other."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from cds_service.clinical.base import Calculation, Configured, Measured, ParameterError, Params
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.facts.numbers import finite_facts
from cds_service.ruleformat.rulefile import RuleFile

__all__ = ["CalculationProblem", "Calculations", "Configuration", "configure"]


@dataclasses.dataclass(frozen=True)
class Calculations:
    """The configured calculations of one ruleset, in the order they run."""

    steps: tuple[tuple[str, Configured], ...] = ()

    def compute(self, named: dict[str, Fact], facts: Facts, specs: Mapping[str, FactSpec]) -> None:
        for name, step in self.steps:
            produced = dict(step.compute(named, facts))
            finite_facts(produced)
            named.update(produced)
            # Each calculation produces all its facts (tests check it); this only guards the contract.
            for fact_name in self._owned(name, specs):
                if fact_name not in produced:
                    named[fact_name] = missing(fact_name, f"not computed by the {name} calculation")

    def _owned(self, name: str, specs: Mapping[str, FactSpec]) -> tuple[str, ...]:
        """The spec names in the calculation's namespace. Found once per specs mapping (the ruleset's,
        the same on every call): scanning every spec per calculation per call was 0.2 ms of the stage."""
        seen = self._namespaces
        if seen.get("") is not specs:  # the mapping itself is kept, so its identity cannot be reused
            seen.clear()
            seen[""] = specs
        owned = seen.get(name)
        if owned is None:
            prefix = f"{name}."
            owned = seen[name] = tuple(n for n in specs if n.startswith(prefix))
        return owned

    @functools.cached_property
    def _namespaces(self) -> dict[str, Any]:
        return {}


@dataclasses.dataclass
class CalculationProblem:
    rule_id: str
    location: tuple[str | int, ...]
    message: str


@dataclasses.dataclass
class Configuration:
    calculations: Calculations
    specs: dict[str, FactSpec]
    used: dict[str, set[str]]  # rule id -> the parameters its calculations read
    problems: list[CalculationProblem]


def configure(
    rules: Mapping[str, RuleFile], catalog: FactCatalog, registry: Mapping[str, Calculation]
) -> Configuration:
    """Configure every calculation some rule provides, after the ones it depends on."""
    problems: list[CalculationProblem] = []
    providers: dict[str, RuleFile] = {}
    for rule in rules.values():
        for index, name in enumerate(rule.provides):
            if name not in registry:
                known = ", ".join(sorted(registry)) or "none"
                problems.append(
                    CalculationProblem(
                        rule.id, ("provides", index), f"unknown calculation {name!r} (known: {known})"
                    )
                )
            elif name in providers:
                problems.append(
                    CalculationProblem(
                        rule.id,
                        ("provides", index),
                        f"calculation {name!r} is already provided by rule {providers[name].id!r}",
                    )
                )
            else:
                providers[name] = rule
    specs: dict[str, FactSpec] = {}
    used: dict[str, set[str]] = {}
    done: dict[str, Configured] = {}
    steps: list[tuple[str, Configured]] = []
    pending = [name for name in registry if name in providers]
    for name in pending:
        # Known even when configuring fails, so rules reading them report only the real problem.
        rule = providers[name]
        specs.update(
            {s.name: s for s in registry[name].specs(catalog, Params(rule.id, rule.parameters, catalog))}
        )
    while pending:
        ready = [n for n in pending if all(d in done or d not in providers for d in registry[n].after)]
        if not ready:
            for name in pending:
                problems.append(
                    CalculationProblem(
                        providers[name].id, ("provides",), f"calculation {name!r}: circular `after`"
                    )
                )
            break
        for name in ready:
            pending.remove(name)
            calculation, rule = registry[name], providers[name]
            absent = [d for d in calculation.after if d not in providers]
            if absent:
                problems.append(
                    CalculationProblem(
                        rule.id,
                        ("provides",),
                        f"calculation {name!r} needs {', '.join(absent)} provided by some rule file",
                    )
                )
                continue
            if any(d not in done for d in calculation.after):
                continue  # a dependency failed to configure; its own problem is reported
            params = Params(rule.id, rule.parameters, catalog)
            try:
                configured = calculation.configure(params, catalog, {d: done[d] for d in calculation.after})
            except ParameterError as exc:
                location: tuple[str | int, ...] = (
                    ("parameters", exc.name) if exc.name in rule.parameters else ("provides",)
                )
                problems.append(CalculationProblem(rule.id, location, f"calculation {name!r}: {exc}"))
                continue
            done[name] = configured
            if isinstance(configured, Measured):
                for fact_name, width in configured.widths().items():
                    specs[fact_name] = dataclasses.replace(specs[fact_name], width=width)
            steps.append((name, configured))
            used.setdefault(rule.id, set()).update(params.used)
    return Configuration(Calculations(tuple(steps)), specs, used, problems)
