"""The docs walk a newcomer through commands that exist, with flags that exist, to files that exist."""

from __future__ import annotations

import re
import shlex
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from cds_service.cli import _parser
from cds_service.pages.fixtures import default_as_of, saved_request
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
        body.group(1).replace("<card uuid>", "3b1d2c8e-2f0a-4a53-9d7e-1c2b3a4d5e6f").encode()
    )
    assert rows[0].outcome == "overridden" and rows[0].override_code == "dose-intended"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_relative_links_point_at_files_that_exist(path: Path) -> None:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue
        assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"


CLINICAL = sorted((ROOT / "docs" / "clinical").glob("*.md"))
# A repository file cited from a rule file or a document, with the heading it points at, if any.
CITATION = re.compile(r"(?<![\w/.-])(docs/clinical/[\w.-]+\.md)(?:#([\w-]+))?")


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    headings = re.findall(r"^#{1,6} +(.+?) *$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def _dangling(target: Path, anchor: str | None) -> str | None:
    if not target.is_file():
        return f"{target.relative_to(ROOT)} does not exist"
    if anchor and anchor not in _anchors(target):
        return f"{target.relative_to(ROOT)} has no heading #{anchor}"
    return None


def test_the_clinical_rationale_exists_and_lists_the_references() -> None:
    names = {path.name for path in CLINICAL}
    assert {"README.md", "rules-logic.md", "terminology.md", "order-representation.md"} <= names
    readme = (ROOT / "docs" / "clinical" / "README.md").read_text(encoding="utf-8")
    for reference in (
        "Monteagudo 2020",
        "Regions protocol 2023",
        "Henter 2007",
        "Fardet 2014",
        "Ravelli 2016",
        "KDIGO 2012",
        "Kineret label",
        "Cockcroft-Gault 1976",
        "Yang 2003",
    ):
        assert f"| {reference} |" in readme, f"docs/clinical/README.md lists no full citation of {reference}"


@pytest.mark.parametrize("path", CLINICAL, ids=lambda p: p.name)
def test_the_clinical_documents_link_to_files_and_headings_that_exist(path: Path) -> None:
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue
        problem = _dangling((path.parent / target).resolve() if target else path, anchor or None)
        assert problem is None, f"{path.name} links to {target}#{anchor}: {problem}"


def test_every_citation_of_docs_clinical_names_a_heading_that_exists() -> None:
    citing = (
        sorted((ROOT / "rules").rglob("*.yaml"))
        + DOCS
        + CLINICAL
        + [ROOT / "fhir_fixtures" / "orders" / "index.yaml"]
    )
    found = 0
    for path in citing:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for target, anchor in CITATION.findall(line):
                found += 1
                problem = _dangling(ROOT / target, anchor or None)
                assert problem is None, (
                    f"{path.relative_to(ROOT)}:{number} cites {target}#{anchor}: {problem}"
                )
    assert found > 50  # the rule files cite docs/clinical throughout; none found means the pattern broke


def test_the_quickstart_counts_the_fixture_patients_there_are() -> None:
    text = (ROOT / "docs" / "quickstart.md").read_text()
    counted = re.search(r"(\d+) synthetic patients in\s+`fhir_fixtures/patients/`", text)
    assert counted is not None, "the quickstart no longer says how many fixture patients there are"
    assert int(counted.group(1)) == len(list((ROOT / "fhir_fixtures" / "patients").glob("*.json")))


def test_the_quickstart_evaluates_the_saved_request_when_the_playground_does() -> None:
    # The playground's default as-of for a saved request comes from its data; the documented commands
    # must name that same time, or they show other cards than the page (tests/pages/test_playground.py
    # checks that at the same time both show the same cards).
    text = (ROOT / "docs" / "quickstart.md").read_text()
    commands = [
        c for c in _commands(ROOT / "docs" / "quickstart.md") if re.search(r" (evaluate|rules explain) ", c)
    ]
    assert len(commands) == 2
    for command in commands:
        words = shlex.split(command)
        request = Path(next(w for w in words if w.endswith(".json")))
        raw = saved_request(ROOT / "fhir_fixtures", request.stem)
        assert raw is not None and request.parent == Path("fhir_fixtures/requests"), command
        as_of = default_as_of(orjson.loads(raw))
        assert datetime.fromisoformat(words[words.index("--now") + 1]) == as_of, command
        assert f"{as_of:%Y-%m-%d %H:%M} UTC" in text  # what the page shows beside Evaluate


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


def test_the_architecture_document_places_every_module() -> None:
    """docs/architecture.md names each module, or the package that holds it, in its table."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    table = "\n".join(rows)
    unplaced = []
    for path in sorted((ROOT / "cds_service").rglob("*.py")):
        if path.name in {"__init__.py", "__main__.py"}:
            continue
        package = path.parent.name
        placed = f"`{package}/`" in table or f"{path.name}`" in table
        if not placed:
            unplaced.append(str(path.relative_to(ROOT)))
    assert unplaced == [], f"add to docs/architecture.md's table: {unplaced}"
