"""The engine knows nothing about the drug or its analytes: clinical knowledge lives in rules/, never in
cds_service/."""

from __future__ import annotations

import ast
import re

from cds_service.yamlfile import load_yaml
from tests.conftest import ROOT

# The drug, its brand, the protocol's numbers and its lab codes belong in rule files.
CLINICAL = re.compile(r"anakinra|kineret|\b2276-4\b|\b29463-7\b|\b72435\b", re.IGNORECASE)


def test_no_python_module_names_the_drug_or_its_codes() -> None:
    offenders = []
    for path in sorted((ROOT / "cds_service").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            if CLINICAL.search(code) and "e.g." not in code:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def _analytes() -> list[str]:
    """The analyte names rules/facts/analytes.yaml declares."""
    return list(load_yaml(ROOT / "rules" / "facts" / "analytes.yaml").data["analytes"])


def test_no_python_module_names_an_analyte_the_rule_files_declare() -> None:
    """Calculations read their input analytes from rule-file parameters (Params.analyte), so renaming an
    analyte in rules/facts needs no Python change: no "ferritin.worst" or "creatinine" fact name and no
    catalog.analytes["..."] lookup by a literal name in cds_service/."""
    analytes = _analytes()
    assert {"ferritin", "creatinine", "anc", "platelets", "height", "scd25"} <= set(analytes)
    offenders = []
    for path in sorted((ROOT / "cds_service").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            named = None
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                # A fact name of an analyte: "ferritin.worst", "anc.count", "creatinine.latest".
                if any(
                    node.value.startswith(f"{a}.") and node.value[len(a) + 1 :].isidentifier()
                    for a in analytes
                ):
                    named = node.value
            elif isinstance(node, ast.Subscript | ast.Call):
                # catalog.analytes["scd25"] or catalog.analytes.get("creatinine")
                target = node.value if isinstance(node, ast.Subscript) else node.func
                key = node.slice if isinstance(node, ast.Subscript) else (node.args[0] if node.args else None)
                owner = target.value if isinstance(target, ast.Attribute) and target.attr == "get" else target
                if (
                    isinstance(owner, ast.Attribute)
                    and owner.attr == "analytes"
                    and isinstance(key, ast.Constant)
                    and key.value in analytes
                ):
                    named = key.value
            if named is not None:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {named!r}")
    assert not offenders, "\n".join(offenders)


# Units a drug is dosed or given in, as they would appear in code that words or writes an order.
_UNIT_WORD = re.compile(
    r"(?<![\w/\[.])(?:mg|mcg|ug|g|kg|mL|L|mmol|umol|\[iU\]|\[U\])(?:/[\w\[\]]+)*(?![\w\]])"
)


def _rule_units() -> set[str]:
    """Every UCUM unit a rule file's parameter is given in."""
    units: set[str] = set()
    for path in sorted((ROOT / "rules").glob("*.yaml")):
        for parameter in (load_yaml(path).data.get("parameters") or {}).values():
            if isinstance(parameter, dict) and isinstance(parameter.get("unit"), str):
                units.add(parameter["unit"])
    return units


def test_the_rule_format_names_no_unit() -> None:
    """An order a suggestion writes is worded and measured as the build says (units and templates of the
    rule files, medications.yaml dose_unit): no unit in cds_service/ruleformat/, in code or in text
    (docstrings, format specs and examples of the file format, "e.g. mg/d", aside)."""
    units = {unit for unit in _rule_units() if any(c.isalpha() for c in unit)}
    assert {"mg", "mL/h", "h", "mg/d"} <= units
    offenders = []
    for path in sorted((ROOT / "cds_service" / "ruleformat").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        docstrings |= {
            id(part)
            for node in ast.walk(tree)
            if isinstance(node, ast.FormattedValue) and isinstance(node.format_spec, ast.JoinedStr)
            for part in node.format_spec.values
        }
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) and id(node) not in docstrings else None
            if isinstance(text, str) and "e.g." not in text and (text in units or _UNIT_WORD.search(text)):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
    assert not offenders, "\n".join(offenders)
