"""YAML files (cds_service/yamlfile.py): safe to load whatever is in them, and bounded (issue 16)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.yamlfile import MAX_YAML_VALUES, FileProblems, parse_yaml
from tests.engine.rulesdir import copy_rules

# Ten lines, nine levels of nine aliases: 9**9 (387 million) values once expanded.
BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def _problem(text: str) -> str:
    with pytest.raises(FileProblems) as caught:
        parse_yaml(text, Path("rules/x.yaml"))
    (problem,) = caught.value.problems
    return str(problem)


def test_nested_aliases_that_expand_past_the_bound_are_refused_quickly() -> None:
    started = time.perf_counter()
    assert "expands to more than" in _problem(BILLION_LAUGHS)
    assert time.perf_counter() - started < 5  # sized node by node, never expanded


def test_aliases_within_the_bound_are_loaded() -> None:
    doc = parse_yaml("links: &l [{label: a, url: https://x.example}]\nagain: *l\n", Path("x.yaml"))
    assert doc.data["again"] == doc.data["links"]
    wide = "\n".join(f"k{n}: {n}" for n in range(MAX_YAML_VALUES // 3))
    assert len(parse_yaml(wide, Path("x.yaml")).data) == MAX_YAML_VALUES // 3


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: &a [*a]\n", "refers to itself"),
        ("[" * 150 + "]" * 150, "nested deeper than"),
        ("[" * 5000 + "]" * 5000, "nested deeper than"),
        ("x: " + "y" * (1024 * 1024 + 1), "characters; at most"),
        ("!!python/object/apply:os.system ['true']\n", "YAML"),
        ("a: !!python/name:os.system\n", "YAML"),
    ],
)
def test_hostile_documents_are_file_problems(text: str, fragment: str) -> None:
    assert fragment in _problem(text)


def test_a_running_service_rejects_an_alias_bomb_and_keeps_serving(tmp_path: Path, service_with: Any) -> None:
    rules = copy_rules(tmp_path)
    http: httpx.Client = service_with(rules_dir=rules, reload_interval_seconds=0.1)
    first = http.get("/healthz").json()["rules"]["hash"]
    (rules / "bomb.yaml").write_text(BILLION_LAUGHS, encoding="utf-8")
    deadline = time.monotonic() + 30
    while "rejected" not in (health := http.get("/healthz").json())["rules"]:
        assert time.monotonic() < deadline, "the bomb was never looked at"
        time.sleep(0.1)
    assert health["rules"]["hash"] == first  # the last good rules still serve
    assert any("expands to more than" in e for e in health["rules"]["rejected"]["errors"])
    assert http.get("/cds-services").status_code == 200
