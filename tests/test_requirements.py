"""The lock files in requirements/ say what pyproject.toml asks for, every pin with its hashes.

`make lock` writes them (pip-compile); the Makefile and the Dockerfile install them with
--require-hashes and --no-deps, so a package missing from a lock would be missing from the venv or the
image, and a line without a hash would stop the install. Checked offline: the closure of the
dependencies is walked through the metadata of the packages installed in this environment.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

LOCKS = ("build", "runtime", "test")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)$")
HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True)
class Pin:
    version: Version
    hashes: frozenset[str]
    line: int


def parse_lock(text: str, source: str = "lock") -> dict[NormalizedName, Pin]:
    """name -> pin of a pip-compile file; anything but a hashed `name==version` is an error."""
    pins: dict[NormalizedName, Pin] = {}
    # A requirement and its `--hash` options continue over lines ending in a backslash.
    entries: list[tuple[int, str]] = []
    start, joined = 0, ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not joined:
            start = number
        joined += " " + line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            if joined.strip():
                entries.append((start, joined.strip()))
            joined = ""
    for number, entry in entries:
        requirement, *options = entry.split()
        match = PIN.match(requirement)
        if match is None:
            raise ValueError(f"{source}:{number}: not a pinned requirement: {requirement}")
        if not options or not all(HASH.match(option) for option in options):
            raise ValueError(f"{source}:{number}: {requirement} is not followed by sha256 hashes only")
        name = canonicalize_name(match["name"])
        if name in pins:
            raise ValueError(f"{source}:{number}: {name} pinned twice")
        pins[name] = Pin(Version(match["version"]), frozenset(options), number)
    return pins


def _lock(name: str) -> dict[NormalizedName, Pin]:
    path = ROOT / "requirements" / f"{name}.txt"
    return parse_lock(path.read_text(encoding="utf-8"), f"requirements/{name}.txt")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _closure(roots: list[Requirement]) -> set[NormalizedName]:
    """Every distribution these requirements install on this Python, from installed metadata."""
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    todo = list(roots)
    while todo:
        requirement = todo.pop()
        extras = frozenset(requirement.extras)
        if (canonicalize_name(requirement.name), extras) in seen:
            continue
        seen.add((canonicalize_name(requirement.name), extras))
        try:
            needs = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            pytest.fail(f"{requirement.name} is needed but not installed: is it missing from a lock?")
        # A need applies on this Python, or through one of the extras asked for.
        todo.extend(
            need
            for need in map(Requirement, needs)
            if need.marker is None or any(need.marker.evaluate({"extra": e}) for e in {"", *extras})
        )
    return {name for name, _ in seen}


def _same_set(lock: dict[NormalizedName, Pin], needed: set[NormalizedName], name: str) -> None:
    missing, extra = sorted(needed - set(lock)), sorted(set(lock) - needed)
    assert not missing and not extra, f"requirements/{name}.txt lacks {missing}, has unneeded {extra}"


def test_every_lock_line_is_a_pin_with_hashes() -> None:
    for name in LOCKS:
        assert _lock(name), f"requirements/{name}.txt pins nothing"


def test_the_parser_refuses_what_pip_would_refuse_or_install_unchecked() -> None:
    good = "a==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via b\n"
    assert parse_lock(good)[canonicalize_name("a")].version == Version("1.0")
    for bad in (
        "a==1.0\n",  # no hash: --require-hashes refuses the whole file
        "a>=1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n",  # not pinned
        "-e .\n",  # editable: no hash possible
        "--index-url https://example.org/simple\n",  # a machine's index written into the lock
        "a==1.0 \\\n    --hash=md5:" + "0" * 32 + "\n",
        good + good,  # twice
    ):
        with pytest.raises(ValueError):
            parse_lock(bad)


def test_a_version_is_the_same_in_every_set_it_is_in() -> None:
    locks = {name: _lock(name) for name in LOCKS}
    for package in set().union(*locks.values()):
        pins = {name: lock[package] for name, lock in locks.items() if package in lock}
        assert len({(p.version, p.hashes) for p in pins.values()}) == 1, f"{package}: {pins}"


def test_the_runtime_lock_is_exactly_what_pyproject_dependencies_install() -> None:
    dependencies = [Requirement(d) for d in _pyproject()["project"]["dependencies"]]
    runtime = _lock("runtime")
    for requirement in dependencies:
        pin = runtime.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement} is not in requirements/runtime.txt: run `make lock`"
        assert requirement.specifier.contains(pin.version, prereleases=True), f"{requirement}: {pin}"
    _same_set(runtime, _closure(dependencies), "runtime")


def test_the_test_lock_is_the_runtime_lock_plus_the_test_extra() -> None:
    project = _pyproject()["project"]
    dependencies = [Requirement(d) for d in project["dependencies"]]
    extra = [Requirement(d) for d in project["optional-dependencies"]["test"]]
    test = _lock("test")
    for requirement in dependencies + extra:
        pin = test.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement} is not in requirements/test.txt: run `make lock`"
        assert requirement.specifier.contains(pin.version, prereleases=True), f"{requirement}: {pin}"
    assert set(_lock("runtime")) <= set(test)
    _same_set(test, _closure(dependencies + extra), "test")


def test_the_build_lock_holds_what_builds_the_project() -> None:
    build = _lock("build")
    for requirement in map(Requirement, _pyproject()["build-system"]["requires"]):
        pin = build.get(canonicalize_name(requirement.name))
        assert pin is not None and requirement.specifier.contains(pin.version), requirement
    assert "pip" in build  # the venv's pip is upgraded from the lock, not from the index


def test_the_installed_versions_are_the_locked_ones() -> None:
    for name, pin in _lock("test").items():
        assert Version(metadata.version(name)) == pin.version, f"{name}: run `make` to reinstall"


def test_the_venv_is_remade_when_a_lock_changes_and_installs_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    stamp = re.search(r"^\$\(STAMP\): (.*)$", makefile, flags=re.MULTILINE)
    assert stamp is not None
    locks = re.search(r"^LOCKS\s*:=\s*(.*)$", makefile, flags=re.MULTILINE)
    assert locks is not None and "$(LOCKS)" in stamp.group(1).split()
    assert {f"requirements/{name}.txt" for name in LOCKS} == set(locks.group(1).split())
    assert "pyproject.toml" in stamp.group(1).split()
    installs = re.findall(r"pip install (.*)$", makefile, flags=re.MULTILINE)
    for name in ("build", "test"):
        (line,) = [i for i in installs if f"-r requirements/{name}.txt" in i]
        assert "--require-hashes" in line.split(), line
