"""YAML files that remember where each value came from, so every error can say file:line."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

Location = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, printed as `file:line: message`."""

    path: Path
    line: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        return f"{self.path}:{self.line}: {prefix}{self.message}"


class FileProblems(Exception):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = list(problems)


@dataclasses.dataclass(frozen=True)
class YamlDoc:
    path: Path
    data: Any
    text: str
    _lines: dict[Location, int]

    def line(self, location: Sequence[str | int]) -> int:
        """Line (1-based) of the value at `location`, or of its nearest parent that has one."""
        loc = tuple(location)
        while loc:
            if loc in self._lines:
                return self._lines[loc]
            loc = loc[:-1]
        return self._lines.get((), 1)

    def problem(self, location: Sequence[str | int], message: str, severity: str = "error") -> Problem:
        return Problem(self.path, self.line(location), message, severity)


def load_yaml(path: Path) -> YamlDoc:
    """Parse one YAML file; raise FileProblems with the line of a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileProblems([Problem(path, 1, f"cannot read: {exc}")]) from exc
    return parse_yaml(text, path)


# Rule, service, case and trust files are a few KB. A file far beyond that, or aliases that expand a
# short file into millions of values (each `&a [*b, *b, ...]` level multiplies), would take a running
# service's memory and time at the next hot reload: refused with the file's name instead.
MAX_YAML_CHARACTERS = 1024 * 1024
MAX_YAML_VALUES = 100_000  # counted as every value is seen by what reads the data, aliases expanded
MAX_YAML_DEPTH = 100


def parse_yaml(text: str, path: Path) -> YamlDoc:
    if len(text) > MAX_YAML_CHARACTERS:
        raise FileProblems(
            [Problem(path, 1, f"the file has {len(text)} characters; at most {MAX_YAML_CHARACTERS}")]
        )
    try:
        try:
            return _parse(text, _FAST_LOADER, path)
        except yaml.YAMLError:
            pass
        # libyaml words errors tersely ("did not find expected key"): say what is wrong as PyYAML does.
        return _parse(text, yaml.SafeLoader, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise FileProblems([Problem(path, line, f"YAML: {exc.problem or exc}")]) from exc
    except yaml.YAMLError as exc:
        raise FileProblems([Problem(path, 1, f"YAML: {exc}")]) from exc
    except RecursionError:
        raise FileProblems([Problem(path, 1, f"YAML: nested deeper than {MAX_YAML_DEPTH} levels")]) from None


# libyaml parses the rule pack about 15 times faster than PyYAML's Python parser, into the same nodes
# with the same marks; PyYAML built without it has only the Python one.
_FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str, loader_class: type[yaml.SafeLoader], path: Path) -> YamlDoc:
    lines: dict[Location, int] = {}
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            # Sized before constructing: aliases are counted, never expanded.
            _check_size(node, path)
            # Before constructing, which merges `<<:` keys into their mappings: lines are the keys' own.
            _walk(node, (), lines)
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return YamlDoc(path, data, text, lines)


def _check_size(root: yaml.Node, path: Path) -> None:
    """Refuse a document whose values, aliases expanded, number more than MAX_YAML_VALUES, that nests
    deeper than MAX_YAML_DEPTH, or that refers to itself. Each node is sized once (memoised), so the
    check itself costs the file's size, not its expansion."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise FileProblems([Problem(path, node.start_mark.line + 1, "YAML: an alias refers to itself")])
        if depth > MAX_YAML_DEPTH:
            raise FileProblems(
                [Problem(path, node.start_mark.line + 1, f"YAML: nested deeper than {MAX_YAML_DEPTH} levels")]
            )
        in_progress.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_YAML_VALUES:
                raise FileProblems(
                    [
                        Problem(
                            path,
                            node.start_mark.line + 1,
                            f"YAML: the document expands to more than {MAX_YAML_VALUES} values "
                            "(aliases are expanded wherever they are used)",
                        )
                    ]
                )
        in_progress.discard(key)
        sizes[key] = total
        return total

    size(root, 0)


def _walk(node: yaml.Node, loc: Location, lines: dict[Location, int]) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            # A key's own line is where an editor should jump for "unknown key" errors.
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*loc, key), lines)
            lines[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), lines)


def validation_problems(doc: YamlDoc, error: Any, prefix: Location = ()) -> list[Problem]:
    """A pydantic ValidationError as one Problem per error, each at the line of the offending value."""
    problems = []
    for item in error.errors():
        loc = _data_path(doc.data, (*prefix, *item["loc"]))
        where = ".".join(map(str, loc[len(prefix) :]))
        message = f"{where}: {item['msg']}" if where else item["msg"]
        problems.append(doc.problem(loc, message))
    return problems


# Names pydantic gives the members of a tagged union; they appear in error locations, not in files.
UNION_TAGS = frozenset({"comparison", "is", "in", "missing", "present", "all", "any", "not"})


def _data_path(data: Any, loc: Location) -> Location:
    """Drop the union tags pydantic puts into error locations, keeping only steps that exist in the data
    (and the last step, which may name a missing key)."""
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        following = loc[index + 1] if not last else None
        if part in UNION_TAGS and following == part:
            continue  # the tag before the field of the same name ("is" then "is")
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif not last or part in UNION_TAGS:
            continue
        path.append(part)
    return tuple(path)
