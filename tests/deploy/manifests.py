"""deploy/kubernetes read as kustomize builds it: the resources, with the patches merged in.

Only the part of strategic merge the patches here use: mappings merge, lists of mappings with a
`name` merge by name (volumes, containers), other values are replaced. `kubectl kustomize` gives the
same Deployment (checked by hand when this was written; docs/deployment.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeGuard

import yaml

from tests.conftest import ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes"


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def kustomization() -> dict[str, Any]:
    (doc,) = load(KUBERNETES / "kustomization.yaml")
    return doc


def build() -> list[dict[str, Any]]:
    spec = kustomization()
    resources = [doc for name in spec["resources"] for doc in load(KUBERNETES / name)]
    for patch_entry in spec.get("patches", []):
        for patch in load(KUBERNETES / patch_entry["path"]):
            target = one(resources, patch["kind"], patch["metadata"]["name"])
            merge(target, patch)
    return resources


def one(resources: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [r for r in resources if r["kind"] == kind and (name is None or r["metadata"]["name"] == name)]
    return found


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merge(current, value)
        elif _named(current) and _named(value):
            by_name = {item["name"]: item for item in current}
            for item in value:
                if item["name"] in by_name:
                    merge(by_name[item["name"]], item)
                else:
                    current.append(item)
        else:
            target[key] = value


def _named(value: Any) -> TypeGuard[list[dict[str, Any]]]:
    return isinstance(value, list) and all(isinstance(item, dict) and "name" in item for item in value)
