"""The source hash: what a hot reload compares to decide whether the rules directory changed.

The ruleset hash (ruleset.py) covers the files that decide what cards say, and it is what cards and
/healthz show. A reload also depends on the test cases, which must pass before a change serves, and
on the fixture files those cases read: fixing only a case, or only a fixture, must be seen as a
change too. So the source hash covers every file below the rules directory and every fixture a case
names (`patient:`, `request:`), by the path the case gives.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from cds_service.engine.ruleset import CASES_SUFFIX
from cds_service.ruleformat.tree import rule_tree_files

# The C parser when PyYAML has it: the case files are read again whenever they change.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FIXTURE_KEYS = ("patient", "request")


class SourceHash:
    """Hashes one rules directory; remembers the fixtures each case file names, by its content, so
    that polling parses a case file only after it changed."""

    def __init__(self, rules_dir: Path) -> None:
        self.rules_dir = rules_dir
        self._fixtures: dict[bytes, tuple[str, ...]] = {}

    def __call__(self) -> str:
        digest = hashlib.sha256()
        fixtures: set[str] = set()
        seen: dict[bytes, tuple[str, ...]] = {}
        for path in rule_tree_files(self.rules_dir):
            content = _read(path)
            _add(digest, path.relative_to(self.rules_dir).as_posix(), content)
            if content is not None and path.name.endswith(CASES_SUFFIX):
                key = hashlib.sha256(content).digest()
                names = self._fixtures.get(key)
                if names is None:
                    names = fixture_names(content)
                seen[key] = names
                fixtures.update(names)
        self._fixtures = seen  # forget the versions of case files that are gone
        digest.update(b"fixtures\0")
        for name in sorted(fixtures):
            _add(digest, name, _read(self.rules_dir / name))
        return digest.hexdigest()


def fixture_names(content: bytes) -> tuple[str, ...]:
    """The fixture files a case file names, relative to its directory, without validating the rest:
    a case file that does not parse names none (its own bytes are in the hash, and the reload says
    what is wrong with it)."""
    try:
        document = yaml.load(content, Loader=_Loader)  # a safe loader, C or Python
    except yaml.YAMLError:
        return ()
    cases = document.get("cases") if isinstance(document, dict) else None
    if not isinstance(cases, list):
        return ()
    names = {
        os.path.normpath(case[key])
        for case in cases
        if isinstance(case, dict)
        for key in _FIXTURE_KEYS
        if isinstance(case.get(key), str) and case[key]
    }
    return tuple(sorted(names))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:  # gone since it was listed, or never there: a missing fixture hashes as missing
        return None


def _add(digest: Any, name: str, content: bytes | None) -> None:
    digest.update(name.encode())
    digest.update(b"\0")
    if content is None:
        digest.update(b"missing\0")
    else:
        digest.update(b"%d\0" % len(content))
        digest.update(content)
