"""A ConfigMap volume laid out as kubelet lays it out, and updated as kubelet updates it.

    mount/..2026_11_23_10_00_00.000000001/rules/services/x.yaml    the files, in a timestamped dir
    mount/..data -> ..2026_11_23_10_00_00.000000001                 swapped by one rename()
    mount/rules -> ..data/rules                                    a link per top-level entry

An update writes a new timestamped directory, renames a new `..data` link over the old one (readers
see the old tree or the new, never a mix), fixes the top-level links, and deletes the old directory.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import Any


def files_of(configmap: dict[str, Any], items: list[dict[str, str]]) -> dict[str, bytes]:
    """What a volume with these items shows: path -> content."""
    data = configmap.get("data", {})
    binary = configmap.get("binaryData", {})
    return {
        item["path"]: data[item["key"]].encode()
        if item["key"] in data
        else base64.b64decode(binary[item["key"]])
        for item in items
    }


def project(mount: Path, files: dict[str, bytes], stamp: str) -> None:
    mount.mkdir(parents=True, exist_ok=True)
    target = mount / f"..{stamp}"
    for path, content in files.items():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_bytes(content)
    data = mount / "..data"
    previous = os.readlink(data) if data.is_symlink() else None
    staged = mount / "..data_tmp"
    staged.symlink_to(target.name)
    staged.rename(data)
    top = {path.split("/", 1)[0] for path in files}
    for name in top:
        if not (mount / name).is_symlink():
            (mount / name).symlink_to(f"..data/{name}")
    for entry in mount.iterdir():
        if not entry.name.startswith("..") and entry.name not in top:
            entry.unlink()
    if previous is not None and previous != target.name:
        shutil.rmtree(mount / previous)
