"""A clone is all it takes: nothing the product, its tests or its docs use lives outside the repository.

The team's reference folder beside the checkout (../shared) is not in anyone else's clone, so a path into
it, even in a comment or a doc, sends a reader or a test to a file they do not have.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

# A path into the folder beside the repository, however it is spelled: in prose, in a shell line, or
# built in Python (ROOT.parent / "shared" / ...).
SHARED_PATH = re.compile(
    r"\.\./shared\b"
    r"|\bshared/(?:real-clients|clinical|seeds)\b"
    r"|\.parent\s*/\s*[\"']shared[\"']"
    r"|[\"']shared[\"']\s*/\s*[\"'](?:real-clients|clinical|seeds)[\"']"
    r"|[\"']\.\.[\"']\s*,\s*[\"']shared[\"']"
)
# What is tracked and read by people or programs: the product, its rules, tests, docs and build files.
ROOTS = ["cds_service", "rules", "tests", "docs", "bench", "deploy", ".ci", "requirements"]
FILES = ["Makefile", "README.md", "Dockerfile", "pyproject.toml", ".dockerignore"]
SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".hypothesis"}


def _files(root: str) -> list[Path]:
    base = ROOT / root
    if base.is_file():
        return [base]
    return sorted(
        path
        for path in base.rglob("*")
        if path.is_file() and not SKIPPED_PARTS & set(path.parts) and path != Path(__file__).resolve()
    )


def _mentions(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []  # binary: no path a reader follows
    return [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), start=1)
        if SHARED_PATH.search(line)
    ]


@pytest.mark.parametrize("root", ROOTS + FILES)
def test_nothing_points_into_the_folder_beside_the_repository(root: str) -> None:
    assert (ROOT / root).exists(), f"{root} is gone: update ROOTS / FILES"
    offenders = [mention for path in _files(root) for mention in _mentions(path)]
    assert not offenders, "a path outside the repository (cite a file in it instead):\n" + "\n".join(
        offenders
    )


@pytest.mark.parametrize(
    "line",
    [
        "see ../shared/clinical/terminology.md",
        'SANDBOX = ROOT.parent / "shared" / "real-clients"',
        "cat shared/real-clients/cds-hooks-sandbox/jwks.json",
        'os.path.join(root, "..", "shared")',
    ],
)
def test_the_check_sees_every_spelling(line: str) -> None:
    assert SHARED_PATH.search(line)


@pytest.mark.parametrize(
    "line", ["the shared server", "a shared database", "jti shared by every worker", "shared/other"]
)
def test_the_check_leaves_the_word_shared_alone(line: str) -> None:
    assert not SHARED_PATH.search(line)
