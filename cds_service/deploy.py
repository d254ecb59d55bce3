"""The rules directory as a Kubernetes ConfigMap, and the volume that puts its files back in place.

What goes in: every file of the rules directory, under `rules/`, and the fixture files its test cases
name (`patient:`, `request:`, e.g. `../fhir_fixtures/patients/x.json`) at the same paths relative to
it. A hot reload runs those cases before it serves a change (cds_service/reload.py); without the fixtures
every change would be rejected.

ConfigMap keys cannot contain "/", so each file's key is its path with "/" spelt "__", and the
Deployment's volume lists every key with the path it goes to (`items`). Both are generated together,
because a key without its item is silently not mounted. The volume is mounted at one directory
(e.g. /etc/cds-service/rulepack, CDS_RULES_DIR=/etc/cds-service/rulepack/rules): kubelet replaces
all of it at once on an update, so a reload sees the new rules and their fixtures together.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import yaml

from cds_service.cases import load_cases
from cds_service.engine.ruleset import ruleset_hash
from cds_service.ruleformat.tree import rule_tree_files

CONFIGMAP_FILE = "rules-configmap.yaml"
VOLUME_FILE = "rules-volume.yaml"
# What the API server accepts in one ConfigMap (data and binaryData together).
CONFIGMAP_MAX_BYTES = 1024 * 1024
HASH_ANNOTATION = "cds-service/ruleset-sha256"

_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
_HEADER = (
    "# Generated from rules/ by `cds-service rules regen`: do not edit; regenerate after changing the\n"
    "# rules or their fixtures. {what}\n"
)


class ConfigMapError(ValueError):
    """The rules cannot be expressed as a ConfigMap; the message says which file and why."""


@dataclasses.dataclass(frozen=True)
class RulesConfigMap:
    configmap: str  # YAML of the ConfigMap
    volume: str  # YAML of a strategic-merge patch giving the Deployment its rules volume
    files: int
    size: int
    hash: str
    rules_path: str  # where the rules directory is, relative to the volume's mount point

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        written = [out / CONFIGMAP_FILE, out / VOLUME_FILE]
        written[0].write_text(self.configmap, encoding="utf-8")
        written[1].write_text(self.volume, encoding="utf-8")
        return written


def key_for(path: str) -> str:
    """The ConfigMap key of the file at this path (relative to the mount point)."""
    return path.replace("/", "__")


def rules_configmap(
    rules_dir: Path, name: str = "cds-rules", deployment: str = "cds-service", volume: str = "rulepack"
) -> RulesConfigMap:
    files = bundle_files(rules_dir)
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    items: list[dict[str, str]] = []
    size = 0
    for path, source in files.items():
        key = key_for(path)
        if not _KEY.fullmatch(key):
            raise ConfigMapError(f"{path}: a ConfigMap key allows only letters, digits, '-', '_' and '.'")
        if key in data or key in binary:
            raise ConfigMapError(f"{path}: its key {key!r} is already another file's")
        content = source.read_bytes()
        size += len(content)
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode("ascii")
        items.append({"key": key, "path": path})
    if size > CONFIGMAP_MAX_BYTES:
        raise ConfigMapError(f"{rules_dir}: {size} bytes; a ConfigMap holds at most {CONFIGMAP_MAX_BYTES}")
    digest = ruleset_hash(rules_dir)
    labels = {"app.kubernetes.io/name": "cds-service", "app.kubernetes.io/component": "rules"}
    configmap: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels, "annotations": {HASH_ANNOTATION: digest}},
        "data": data,
    }
    if binary:
        configmap["binaryData"] = binary
    mount = {"name": volume, "configMap": {"name": name, "items": items}}
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment},
        "spec": {"template": {"spec": {"volumes": [mount]}}},
    }
    return RulesConfigMap(
        configmap=_HEADER.format(what="The annotation is the hash /healthz shows.") + _dump(configmap),
        volume=_HEADER.format(what=f"Mounts each file of ConfigMap {name} at its path.") + _dump(patch),
        files=len(items),
        size=size,
        hash=digest,
        rules_path=rules_dir.absolute().name,
    )


def bundle_files(rules_dir: Path) -> dict[str, Path]:
    """path below the mount point -> source file: the rules, then the fixtures their cases name."""
    rules_dir = rules_dir.absolute()
    base = rules_dir.parent
    files = {f"{rules_dir.name}/{p.relative_to(rules_dir).as_posix()}": p for p in rule_tree_files(rules_dir)}
    if not files:
        raise ConfigMapError(f"{rules_dir}: no files")
    fixtures: dict[str, Path] = {}
    for loaded in load_cases(rules_dir):
        for name in (loaded.case.patient, loaded.case.request):
            if name is None:
                continue
            # Lexically, as the case's own `..` is read where the volume is mounted.
            source = Path(os.path.normpath(loaded.path.parent / name))
            relative = Path(os.path.relpath(source, base)).as_posix()
            if relative.startswith("../"):
                raise ConfigMapError(f"{loaded.label}: {name} is outside {base}, which the volume holds")
            fixtures[relative] = source
    return files | {path: fixtures[path] for path in sorted(fixtures) if path not in files}


class _Dumper(yaml.SafeDumper):
    """Multi-line text as literal blocks, so that the ConfigMap reads (and diffs) like the files."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML falls back to a quoted scalar by itself when a literal block cannot hold the text exactly
    # (trailing spaces, tabs, control characters): the round trip stays byte for byte.
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def _dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
