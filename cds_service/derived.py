"""The files generated from rules/, and the one command that writes them all (`cds-service rules regen`).

After a rule change these must follow, or the suite fails on drift: docs/rules.md (what each rule
does), deploy/kubernetes/rules-configmap.yaml and rules-volume.yaml (the rules as deployed), and
docs/rule-file.schema.json and docs/ruleset-file.schema.json (the formats, for editors; it follows the code rather than the rules, but
one command for all means nothing is forgotten).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson

from cds_service.deploy import CONFIGMAP_FILE, VOLUME_FILE, rules_configmap
from cds_service.engine.docs import rule_pack_markdown
from cds_service.engine.durable import DurableRules
from cds_service.engine.ruleset import load_ruleset
from cds_service.ruleformat.rulefile import rule_file_schema, ruleset_file_schema

REGEN_COMMAND = "cds-service rules regen"
RULES_DOC = Path("docs/rules.md")
SCHEMA_DOC = Path("docs/rule-file.schema.json")
RULESET_SCHEMA_DOC = Path("docs/ruleset-file.schema.json")
KUBERNETES = Path("deploy/kubernetes")


@dataclasses.dataclass(frozen=True)
class Derived:
    path: Path  # relative to the repository's top directory
    content: bytes

    def is_current(self, root: Path) -> bool:
        target = root / self.path
        return target.is_file() and target.read_bytes() == self.content


def schema_json() -> bytes:
    return orjson.dumps(rule_file_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def ruleset_schema_json() -> bytes:
    return orjson.dumps(ruleset_file_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def rules_markdown(rules_dir: Path) -> str:
    durable = DurableRules()
    try:
        ruleset = load_ruleset(rules_dir, durable)
        try:
            return rule_pack_markdown(ruleset)
        finally:
            ruleset.release(durable)
    finally:
        durable.close()


def derived_files(rules_dir: Path) -> list[Derived]:
    """Every generated file, as it should be for rules_dir. Raises FileProblems when the rules do not
    load, ConfigMapError when they cannot be a ConfigMap."""
    configmap = rules_configmap(rules_dir)
    return [
        Derived(RULES_DOC, rules_markdown(rules_dir).encode()),
        Derived(KUBERNETES / CONFIGMAP_FILE, configmap.configmap.encode()),
        Derived(KUBERNETES / VOLUME_FILE, configmap.volume.encode()),
        Derived(SCHEMA_DOC, schema_json()),
        Derived(RULESET_SCHEMA_DOC, ruleset_schema_json()),
    ]
