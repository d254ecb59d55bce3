"""The files of a rules directory, as the service reads them: what is hashed, and what is deployed.

Symlinked directories are followed and hidden entries skipped, for a Kubernetes ConfigMap volume:
there `services -> ..data/services` and `..data -> ..2026_11_23_10_00_00.123456789`, so the same
files appear once more under a hidden name that changes with every update. Walking them would give
each pod its own ruleset hash for the same rules, and a new one at every update.
"""

from __future__ import annotations

import os
from pathlib import Path


def rule_tree_files(rules_dir: Path) -> list[Path]:
    """Every file below rules_dir but hidden ones, sorted by path."""
    found: list[Path] = []
    seen: set[str] = set()
    for folder, dirs, files in os.walk(rules_dir, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop, or a second link to one directory: read it once
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(folder, name) for name in files if not name.startswith(".")]
    return sorted(path for path in found if path.is_file())
