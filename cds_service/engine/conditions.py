"""A rule's `when` -> two durable-rules expressions: "certainly true" and "certainly false".

Rules are tri-state (Kleene logic): a comparison over a fact that could not be computed is neither
true nor false, so the rule "could not evaluate" unless the author said otherwise (`if_missing`). The
engine runs one durable-rules rule for each side; a rule whose sides both stay silent is unknown.

Each fact is flattened into a few fields of the one durable-rules fact a request asserts (see
`flatten`): the canonical value, the unit and value as reported (native-unit comparison), and whether
the value is exact or only a bound (censored results such as ferritin ">40000").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cds_service.facts.named import Fact, FactSpec
from cds_service.ruleformat.rulefile import (
    All,
    Any_,
    Comparison,
    Condition,
    In,
    Is,
    Missing,
    Not,
    Parameter,
    Present,
)

# A durable-rules expression, or a constant once simplified.
Expr = dict[str, Any] | bool

_OPS = {">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte", "!=": "$neq"}
_NEGATED = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
# Bound markers: a value is a lower bound when reported as ">x" or ">=x", an upper bound for "<x".
_LOWER = {None, ">", ">="}
_UPPER = {None, "<", "<="}


class CompileError(Exception):
    """A condition that cannot be compiled (unknown fact, unconvertible unit...). Lint reports these."""


@dataclasses.dataclass(frozen=True)
class Fields:
    """The short field names a fact occupies in the asserted durable-rules fact."""

    value: str
    unit: str
    native: str
    lower: str  # 1 when the value is exact or a lower bound
    upper: str  # 1 when the value is exact or an upper bound


class FieldMap:
    """Fact name -> durable-rules field names, stable for one compiled ruleset."""

    def __init__(self) -> None:
        self._fields: dict[str, Fields] = {}

    def __getitem__(self, name: str) -> Fields:
        fields = self._fields.get(name)
        if fields is None:
            key = f"f{len(self._fields)}"
            fields = Fields(key, f"{key}u", f"{key}n", f"{key}l", f"{key}h")
            self._fields[name] = fields
        return fields

    def items(self) -> Iterable[tuple[str, Fields]]:
        return self._fields.items()

    def flatten(self, facts: Mapping[str, Fact]) -> dict[str, Any]:
        """The values of the facts the ruleset reads, as one flat JSON-able dict."""
        flat: dict[str, Any] = {}
        for name, fields in self._fields.items():
            fact = facts.get(name)
            if fact is None or fact.value is None:
                continue
            value = fact.value
            flat[fields.value] = int(value) if isinstance(value, bool) else value
            # Without the reported value, native-unit thresholds cannot apply: compare converted.
            if fact.native_value is not None:
                flat[fields.unit] = fact.native_unit or fact.unit or ""
                flat[fields.native] = fact.native_value
            else:
                flat[fields.unit] = fact.unit or ""
            flat[fields.lower] = int(fact.comparator in _LOWER)
            flat[fields.upper] = int(fact.comparator in _UPPER)
        return flat


@dataclasses.dataclass(frozen=True)
class Compiled:
    true: Expr
    false: Expr
    reads: tuple[str, ...]  # fact names, in the order the rule reads them
    terms: int  # conjunctions after durable-rules expands the ORs; each runs as its own Rete path


Converter = Callable[[float, str, str, str], float]  # value, from unit, to unit, fact name -> value


def compile_condition(
    condition: Condition,
    specs: dict[str, FactSpec],
    parameters: dict[str, Parameter],
    fields: FieldMap,
    convert: Converter,
) -> Compiled:
    reads: list[str] = []
    compiler = _Compiler(specs, parameters, fields, convert, reads)
    true, false = compiler.condition(condition)
    return Compiled(true, false, tuple(dict.fromkeys(reads)), max(_terms(true), _terms(false)))


@dataclasses.dataclass
class _Compiler:
    specs: dict[str, FactSpec]
    parameters: dict[str, Parameter]
    fields: FieldMap
    convert: Converter
    reads: list[str]

    def condition(self, node: Condition) -> tuple[Expr, Expr]:
        if isinstance(node, All):
            parts = [self.condition(child) for child in node.all]
            return _and(t for t, _ in parts), _or(f for _, f in parts)
        if isinstance(node, Any_):
            parts = [self.condition(child) for child in node.any]
            return _or(t for t, _ in parts), _and(f for _, f in parts)
        if isinstance(node, Not):
            true, false = self.condition(node.not_)
            return false, true
        if isinstance(node, Missing):
            present = self._present(node.missing)
            return {"$nex": {present: 1}}, {"$ex": {present: 1}}
        if isinstance(node, Present):
            present = self._present(node.present)
            return {"$ex": {present: 1}}, {"$nex": {present: 1}}
        if isinstance(node, Is):
            spec = self._spec(node.fact, "boolean")
            key = self.fields[spec.name].value
            true, false = {key: int(node.is_)}, {key: int(not node.is_)}
            return self._if_missing(node.fact, node.if_missing, true, false)
        if isinstance(node, In):
            spec = self._spec(node.fact, "text")
            unknown = set(node.in_) - set(spec.values) if spec.values else set()
            if unknown:
                raise CompileError(
                    f"{node.fact} is never {sorted(unknown)}; its values are {', '.join(spec.values)}"
                )
            key = self.fields[spec.name].value
            true = _or({key: v} for v in node.in_)
            false = _and([{"$ex": {key: 1}}, *({"$neq": {key: v}} for v in node.in_)])
            return self._if_missing(node.fact, node.if_missing, true, false)
        return self._comparison(node)

    def _comparison(self, node: Comparison) -> tuple[Expr, Expr]:
        spec = self._spec(node.fact, None)
        fields = self.fields[spec.name]
        if node.param is not None:
            true, false = self._against_parameter(node, spec, fields)
        else:
            if spec.kind == "quantity":
                raise CompileError(
                    f"{node.fact} is a quantity: compare it with a parameter (value, unit and source), "
                    "not a bare number"
                )
            true, false = self._against_literal(node, spec, fields, node.value)
        return self._if_missing(node.fact, node.if_missing, true, false)

    def _against_literal(
        self, node: Comparison, spec: FactSpec, fields: Fields, value: Any
    ) -> tuple[Expr, Expr]:
        """Counts, text and the like: the same checks whether the value is written inline or a parameter."""
        if spec.kind == "boolean":
            raise CompileError(f"{node.fact} is a boolean: use `is: true` or `is: false`")
        if spec.kind == "text":
            if node.op not in ("==", "!="):
                raise CompileError(f"{node.fact} is text: only == and != apply (or `in`)")
            if not isinstance(value, str):
                raise CompileError(f"{node.fact} is text: compare it with text, not {value!r}")
            if spec.values and value not in spec.values:
                raise CompileError(f"{node.fact} is never {value!r}; its values are {', '.join(spec.values)}")
        if spec.kind in ("count", "quantity") and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise CompileError(f"{node.fact} is a {spec.kind}: compare it with a number, not {value!r}")
        true = _cmp(node.op, fields.value, value)
        false = _and([{"$ex": {fields.value: 1}}, _cmp(_NEGATED[node.op], fields.value, value)])
        return true, false

    def _against_parameter(self, node: Comparison, spec: FactSpec, fields: Fields) -> tuple[Expr, Expr]:
        assert node.param is not None
        parameter = self.parameters.get(node.param)
        if parameter is None:
            raise CompileError(f"unknown parameter {node.param!r}; define it under `parameters`")
        if spec.kind != "quantity" or spec.unit is None:
            if parameter.unit:
                raise CompileError(
                    f"{node.fact} has no unit, but parameter {node.param!r} is in {parameter.unit}"
                )
            if isinstance(parameter.value, list):
                raise CompileError(f"parameter {node.param!r} is a list; compare with one value")
            return self._against_literal(node, spec, fields, parameter.value)
        if isinstance(parameter.value, bool) or not isinstance(parameter.value, int | float):
            raise CompileError(f"parameter {node.param!r} is not a number")
        if not parameter.unit:
            raise CompileError(
                f"parameter {node.param!r} needs a unit to be compared with {node.fact} ({spec.unit})"
            )
        canonical = self._converted(float(parameter.value), parameter.unit, spec, node.param)
        natives = [(parameter.unit, float(parameter.value))] + [(n.unit, n.value) for n in parameter.also]
        for unit, value in natives[1:]:
            self._converted(value, unit, spec, node.param)  # each stated unit must be of the right kind
        natives = [(unit, value) for unit, value in natives if unit != spec.unit]

        def side(op: str) -> Expr:
            bounds = [{field: 1} for field in _bound_fields(op, fields)]
            converted = _and([*bounds, _cmp(op, fields.value, canonical)])
            if not natives:
                return converted
            in_other_unit = _and([*({"$neq": {fields.unit: unit}} for unit, _ in natives), converted])
            in_native_unit = [
                _and([{fields.unit: unit}, *bounds, _cmp(op, fields.native, value)])
                for unit, value in natives
            ]
            return _or([*in_native_unit, in_other_unit])

        return side(node.op), side(_NEGATED[node.op])

    def _converted(self, value: float, unit: str, spec: FactSpec, param: str) -> float:
        assert spec.unit is not None
        try:
            return self.convert(value, unit, spec.unit, spec.name)
        except Exception as exc:  # the converter's errors differ by cause; all mean "wrong unit"
            raise CompileError(
                f"parameter {param!r} is in {unit}, which does not convert to {spec.name}'s unit {spec.unit}: {exc}"
            ) from exc

    def _if_missing(self, name: str, if_missing: str, true: Expr, false: Expr) -> tuple[Expr, Expr]:
        absent = {"$nex": {self.fields[name].value: 1}}
        if if_missing == "true":
            return _or([true, absent]), false
        if if_missing == "false":
            return true, _or([false, absent])
        return true, false

    def _present(self, name: str) -> str:
        return self.fields[self._spec(name, None).name].value

    def _spec(self, name: str, kind: str | None) -> FactSpec:
        spec = self.specs.get(name)
        if spec is None:
            raise CompileError(f"unknown fact {name!r}{_did_you_mean(name, self.specs)}")
        if kind is not None and spec.kind != kind:
            raise CompileError(f"{name} is a {spec.kind} fact, not {kind}")
        self.reads.append(name)
        return spec


def _bound_fields(op: str, fields: Fields) -> tuple[str, ...]:
    # "x > t" is certain for exact values and lower bounds; "x < t" for exact values and upper bounds;
    # (in)equality only for exact values (both markers set).
    if op in (">", ">="):
        return (fields.lower,)
    if op in ("<", "<="):
        return (fields.upper,)
    return (fields.lower, fields.upper)


def _cmp(op: str, field: str, value: Any) -> dict[str, Any]:
    if op == "==":
        return {field: value}
    return {_OPS[op]: {field: value}}


def _and(parts: Iterable[Expr]) -> Expr:
    items: list[dict[str, Any]] = []
    for part in parts:
        if part is False:
            return False
        if part is True:
            continue
        assert isinstance(part, dict)
        items.extend(part.get("$and", [part]))
    if not items:
        return True
    return items[0] if len(items) == 1 else {"$and": items}


def _or(parts: Iterable[Expr]) -> Expr:
    items: list[dict[str, Any]] = []
    for part in parts:
        if part is True:
            return True
        if part is False:
            continue
        assert isinstance(part, dict)
        items.extend(part.get("$or", [part]))
    if not items:
        return False
    return items[0] if len(items) == 1 else {"$or": items}


def _terms(expr: Expr) -> int:
    if isinstance(expr, bool):
        return 1
    if "$or" in expr:
        return sum(_terms(e) for e in expr["$or"])
    if "$and" in expr:
        product = 1
        for e in expr["$and"]:
            product *= _terms(e)
        return product
    return 1


def _did_you_mean(name: str, specs: dict[str, FactSpec]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(specs), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
