"""The docs walk a newcomer through commands that exist, with flags that exist, to files that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cds_service.cli import _parser
from cds_service.protocol.feedback import parse_feedback

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
WALKTHROUGHS = [ROOT / "docs" / "quickstart.md", ROOT / "docs" / "integrator-guide.md", ROOT / "README.md"]


def _shell_blocks(path: Path) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", path.read_text(), flags=re.DOTALL)


def _commands(path: Path) -> list[str]:
    """Every cds-service command line in the file's sh blocks, comments and heredocs left out."""
    found = []
    for block in _shell_blocks(path):
        in_heredoc = None
        for line in block.splitlines():
            if in_heredoc:
                in_heredoc = None if line.strip() == in_heredoc else in_heredoc
                continue
            heredoc = re.search(r"<<'?(\w+)'?", line)
            if heredoc:
                in_heredoc = heredoc.group(1)
            command = line.split(" #", 1)[0].strip()
            if re.match(r"^(\.venv/bin/)?cds-service\s", command):
                found.append(command)
    return found


@pytest.mark.parametrize("path", WALKTHROUGHS, ids=lambda p: p.name)
def test_every_documented_command_parses(path: Path) -> None:
    commands = _commands(path)
    assert commands or path.name == "integrator-guide.md", f"{path.name} shows no cds-service command"
    for command in commands:
        if "[" in command:
            continue  # a usage synopsis such as `cds-service serve [--host H]`, not a runnable command
        try:
            _parser().parse_args(shlex.split(command)[1:])
        except SystemExit as exc:
            pytest.fail(f"{path.name}: `{command}` does not parse (exit {exc.code})")


def test_the_quickstart_walks_from_serving_to_a_signed_call() -> None:
    text = (ROOT / "docs" / "quickstart.md").read_text()
    commands = _commands(ROOT / "docs" / "quickstart.md")
    order = [
        next(i for i, c in enumerate(commands) if " client keygen " in c),
        next(i for i, c in enumerate(commands) if " client discover " in c),
        next(i for i, c in enumerate(commands) if " client call " in c),
        next(i for i, c in enumerate(commands) if " client feedback " in c),
    ]
    assert order == sorted(order)
    assert "make serve TRUST=dev-ehr/trust.yaml" in text
    assert "http://127.0.0.1:8080/cds-services" in text  # what to give the CDS Hooks sandbox


def test_the_quickstart_feedback_is_valid_cds_hooks_feedback() -> None:
    text = (ROOT / "docs" / "quickstart.md").read_text()
    body = re.search(r"<<'EOF'\n(.*?)\nEOF", text, flags=re.DOTALL)
    assert body is not None
    rows = parse_feedback(
        body.group(1).replace("<card uuid>", "3b1d2c8e-2f0a-4a53-9d7e-1c2b3a4d5e6f").encode(), "x"
    )
    assert rows[0].outcome == "overridden" and rows[0].override_code == "dose-intended"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_relative_links_point_at_files_that_exist(path: Path) -> None:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue
        assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"


def test_every_test_the_security_table_names_exists() -> None:
    """docs/security.md names the test behind each protection: each must be a test in that file."""
    text = (ROOT / "docs" / "security.md").read_text()
    table = text.split("## Protections, settings and tests", 1)[1]
    named = 0
    for row in (line for line in table.splitlines() if line.startswith("| ") and "`" in line):
        current = None
        for reference in re.findall(r"`((?:tests/[\w/]+\.py)?::\w+|tests/[\w/]+\.py::\w+)`", row):
            path, _, name = reference.partition("::")
            current = path or current
            assert current, f"{reference} names no file"
            source = (ROOT / current).read_text()
            assert re.search(rf"^(async )?def {name}\(", source, flags=re.MULTILINE), (
                f"{current}::{name} is not a test"
            )
            named += 1
    assert named >= 40
