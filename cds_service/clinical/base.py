"""What a calculation is: named facts computed from other facts by a pure calculator, with every setting
read from the parameters of the rule file that `provides:` it.

A calculation turns clinical arithmetic (Cockcroft-Gault, a bag build, the HLH-2004 count) into facts
such as `renal.crcl` or `hlh.met`, which any rule may then compare. Its thresholds and project choices are
never defaults in code: `configure` fails, and lint reports it at the rule file, when one is missing.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from cds_service.clinical.tristate import Tri, compare
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.knowledge import Analyte
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec
from cds_service.ruleformat.rulefile import Parameter


class ParameterError(ValueError):
    """A parameter a calculation needs is absent or of the wrong kind; lint shows it at the rule file."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


class Configured(Protocol):
    def compute(self, named: Mapping[str, Fact], facts: Facts) -> dict[str, Fact]:
        """This calculation's facts (every name of `specs`), from the named facts computed so far."""
        ...


@runtime_checkable
class Measured(Protocol):
    """A configured calculation that knows how wide its open texts render (FactSpec.width)."""

    def widths(self) -> Mapping[str, int]:
        """The widest text each of its open-text facts can take as configured (the summary-length lint's
        bound): derived from the rule file's templates and limits, replacing the specs' fallback."""
        ...


class Calculation(Protocol):
    name: str  # the fact namespace: `renal` gives renal.crcl...
    after: tuple[str, ...]  # calculations whose facts (or configuration) this one uses

    def specs(self, catalog: FactCatalog, params: Params) -> list[FactSpec]:
        """The facts it provides; known even when configuring fails, so read `params` leniently."""
        ...

    def configure(
        self, params: Params, catalog: FactCatalog, before: Mapping[str, Configured]
    ) -> Configured: ...


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A threshold in the fact's canonical unit, plus the same threshold as stated in other units, so a
    result reported in one of those units is compared in it (265 mg/dL vs 3.0 mmol/L: rules-logic.md,
    native-unit comparison)."""

    value: float
    unit: str
    native: Mapping[str, float]

    def compare(self, fact: Fact, op: str) -> Tri:
        if fact.value is None or isinstance(fact.value, bool | str):
            return Tri.UNKNOWN
        native = self.native.get(fact.native_unit or "")
        if fact.native_value is not None and native is not None:
            return compare(fact.native_value, op, native, fact.comparator)
        return compare(float(fact.value), op, self.value, fact.comparator)


def require_dose_unit(catalog: FactCatalog, unit: str, calculation: str) -> None:
    """Refuse a rule pack whose drugs are dosed in another unit (medications.yaml `dose_unit`) than the one
    a calculation computes and words its doses in: its numbers would carry the wrong unit."""
    if catalog.medications.dose_unit != unit:
        raise ParameterError(
            "",
            f"the {calculation} calculation computes doses in {unit}, but rules/facts/medications.yaml "
            f"doses in {catalog.medications.dose_unit} (dose_unit)",
        )


class Params:
    """The providing rule's parameters, read as the calculation needs them, converted with UCUM."""

    def __init__(self, rule_id: str, parameters: Mapping[str, Parameter], catalog: FactCatalog) -> None:
        self.rule_id = rule_id
        self._parameters = parameters
        self._catalog = catalog
        self.used: set[str] = set()

    def parameter(self, name: str) -> Parameter:
        parameter = self._parameters.get(name)
        if parameter is None:
            raise ParameterError(name, f"rule {self.rule_id!r} must define parameter {name!r}")
        self.used.add(name)
        return parameter

    def number(self, name: str, unit: str | None = None) -> float:
        parameter = self.parameter(name)
        value = parameter.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterError(name, f"parameter {name!r} must be a number")
        return self._convert(name, float(value), parameter.unit, unit)

    def whole(self, name: str) -> int:
        """A count: a whole number of at least 1."""
        value = self.number(name)
        if value != int(value) or value < 1:
            raise ParameterError(name, f"parameter {name!r} must be a whole number of at least 1")
        return int(value)

    def numbers(self, name: str, unit: str | None = None) -> tuple[float, ...]:
        parameter = self.parameter(name)
        values = parameter.value if isinstance(parameter.value, list) else [parameter.value]
        if not values or any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            raise ParameterError(name, f"parameter {name!r} must be a number or a list of numbers")
        return tuple(self._convert(name, float(v), parameter.unit, unit) for v in values)  # type: ignore[arg-type]

    def text(self, name: str, choices: Sequence[str] = ()) -> str:
        value = self.parameter(name).value
        if not isinstance(value, str):
            raise ParameterError(name, f"parameter {name!r} must be a text")
        if choices and value not in choices:
            raise ParameterError(name, f"parameter {name!r} must be one of {', '.join(choices)}")
        return value

    def template(self, name: str, placeholders: Sequence[str]) -> str:
        """A wording template (str.format) that names only the `placeholders` the calculation fills; an
        unknown one is an error at the parameter."""
        text = self.text(name)
        try:
            used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
        except ValueError as exc:
            raise ParameterError(name, f"parameter {name!r} is not a template: {exc}") from exc
        unknown = sorted(used - set(placeholders))
        if unknown:
            known = ", ".join(f"{{{p}}}" for p in placeholders)
            raise ParameterError(name, f"parameter {name!r}: unknown placeholder(s) {unknown}; use {known}")
        try:
            # Every placeholder is filled with text already formatted, so a numeric format spec
            # ("{rate:.0f}") would fail on each request: refuse it here, at the parameter.
            text.format(**dict.fromkeys(placeholders, ""))
        except (ValueError, TypeError) as exc:
            raise ParameterError(
                name, f"parameter {name!r} is not a template for text values: {exc}"
            ) from exc
        return text

    def texts(self, name: str) -> tuple[str, ...]:
        value = self.parameter(name).value
        values = value if isinstance(value, list) else [value]
        if any(not isinstance(v, str) for v in values):
            raise ParameterError(name, f"parameter {name!r} must be a text or a list of texts")
        return tuple(str(v) for v in values)

    def analyte(self, name: str) -> Analyte:
        """The analyte of rules/facts/analytes.yaml a text parameter names: an input the calculation reads
        (its `.latest`, `.worst` and `.count` facts), so renaming an analyte needs no change in code."""
        value = self.text(name)
        analyte = self._catalog.analytes.get(value)
        if analyte is None:
            raise ParameterError(
                name,
                f"parameter {name!r} names {value!r}, which is not an analyte of rules/facts/analytes.yaml",
            )
        return analyte

    def analyte_unit(self, name: str) -> str | None:
        """The canonical unit of the analyte parameter `name` names, or None when it names none (specs
        are known before configuring, which reports the problem)."""
        try:
            return self.analyte(name).unit
        except ParameterError:
            return None

    def threshold(self, name: str, unit: str, analyte: str | None = None) -> Threshold:
        """A numeric threshold for facts in `unit`, keeping the units it is stated in (`also`)."""
        parameter = self.parameter(name)
        value = parameter.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterError(name, f"parameter {name!r} must be a number")
        native = {parameter.unit or unit: float(value)}
        native.update({n.unit: n.value for n in parameter.also})
        for stated_unit, stated in native.items():
            self._convert(name, stated, stated_unit, unit, analyte)  # every stated unit must fit
        return Threshold(self._convert(name, float(value), parameter.unit, unit, analyte), unit, native)

    def _convert(
        self, name: str, value: float, from_unit: str | None, to_unit: str | None, analyte: str | None = None
    ) -> float:
        if to_unit is None:
            if from_unit not in (None, "1"):
                raise ParameterError(name, f"parameter {name!r} takes no unit (it has {from_unit})")
            return value
        if from_unit is None:
            raise ParameterError(name, f"parameter {name!r} needs a unit convertible to {to_unit}")
        try:
            return self._catalog.convert(value, from_unit, to_unit, analyte=analyte)
        except ValueError as exc:
            raise ParameterError(name, f"parameter {name!r}: {exc}") from exc
