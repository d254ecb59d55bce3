"""The Dockerfile, checked without a Docker engine: what it copies exists and is in the build context,
what it sets is a real setting, the runtime stage has no compiler and runs unprivileged, and its
HEALTHCHECK command tells a healthy service from an absent one.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
import shlex
import subprocess
import sys
import tomllib

from cds_service.config import Settings
from tests.conftest import ROOT
from tests.deploy.manifests import build, one
from tests.faults import free_port
from tests.live import LiveService

SETTINGS = {f"CDS_{field.name.upper()}" for field in dataclasses.fields(Settings)}
# Variables for Python, pip and matplotlib; anything else the image sets must be a setting.
OTHER_ENV = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_DISABLE_PIP_VERSION_CHECK", "MPLCONFIGDIR"}


@dataclasses.dataclass(frozen=True)
class Instruction:
    stage: int
    name: str
    args: str


def _instructions() -> list[Instruction]:
    text = (ROOT / "Dockerfile").read_text()
    # Continuation lines join; comment lines inside a continued instruction are dropped, as Docker does.
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found: list[Instruction] = []
    stage = -1
    for line in joined.splitlines():
        if not line.strip():
            continue
        name, _, args = line.strip().partition(" ")
        stage += name.upper() == "FROM"
        found.append(Instruction(stage, name.upper(), args.strip()))
    return found


INSTRUCTIONS = _instructions()
RUNTIME = max(i.stage for i in INSTRUCTIONS)


def _runtime(name: str) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.stage == RUNTIME and i.name == name]


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in _runtime("ENV"):
        for pair in shlex.split(instruction.args):
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def _copies() -> dict[str, str]:
    """source -> destination of every COPY from the build context (not --from another stage)."""
    copies: dict[str, str] = {}
    for instruction in (i for i in INSTRUCTIONS if i.name == "COPY"):
        words = shlex.split(instruction.args)
        if any(w.startswith("--from") for w in words):
            continue
        *sources, destination = [w for w in words if not w.startswith("--")]
        copies.update(dict.fromkeys(sources, destination))
    return copies


def _glob(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern: `**/` any directories, `*` and `?` within one path segment."""
    out = ""
    for token in re.split(r"(\*\*/|\*|\?)", pattern.strip("/")):
        out += {"**/": "(?:.*/)?", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
    return re.compile(out)


def _ignored(relative: str, patterns: list[str]) -> bool:
    """The last pattern that matches the path or one of its parents decides; `!` keeps."""
    parts = relative.split("/")
    paths = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        if any(_glob(pattern.removeprefix("!")).fullmatch(p) for p in paths):
            ignored = not pattern.startswith("!")
    return ignored


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_copied_file_exists_and_is_in_the_build_context() -> None:
    patterns = _dockerignore()
    copies = _copies()
    assert {"pyproject.toml", "requirements/", "cds_service", "rules/", "docs/trust/"} <= set(copies)
    for source in copies:
        path = ROOT / source
        assert path.exists(), source
        files = (
            [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            if path.is_dir()
            else [path]
        )
        assert files, source
        kept = [f for f in files if not _ignored(f.relative_to(ROOT).as_posix(), patterns)]
        assert kept == files, f"{source}: .dockerignore drops {sorted(set(files) - set(kept))[:3]}"


def test_the_build_context_leaves_out_what_the_image_must_not_hold() -> None:
    patterns = _dockerignore()
    for relative in (
        ".venv/bin/python",
        ".git/config",
        "cds-service.db",
        "tests/conftest.py",
        "cds_service/__pycache__/app.cpython-311.pyc",
        "docs/security.md",
    ):
        assert _ignored(relative, patterns), relative
    assert not _ignored("cds_service/pages/templates/base.html", patterns)


def test_every_variable_is_a_setting_and_the_image_settings_start() -> None:
    env = _env()
    assert {name for name in env if not name.startswith("CDS_")} <= OTHER_ENV
    assert {name for name in env if name.startswith("CDS_")} <= SETTINGS
    copies = _copies()
    assert env["CDS_RULES_DIR"].rstrip("/") == copies["rules/"].rstrip("/")
    trust = posixpath.join(copies["docs/trust/"], "cds-hooks-sandbox.yaml")
    assert (ROOT / "docs/trust/cds-hooks-sandbox.yaml").is_file()
    settings = Settings.from_env(
        {**env, "CDS_PUBLIC_URL": "https://cds.example.org", "CDS_TRUST_FILE": trust}
    )
    assert settings.host == "0.0.0.0" and settings.auth_problem() is None
    (exposed,) = _runtime("EXPOSE")
    assert exposed.args == str(settings.port) == "8080"
    # The rule cases name ../fhir_fixtures: it must sit beside the rules in the image.
    assert posixpath.dirname(copies["rules/"].rstrip("/")) == posixpath.dirname(
        copies["fhir_fixtures/"].rstrip("/")
    )


def test_matplotlib_writes_where_the_pod_can_write() -> None:
    (container,) = one(build(), "Deployment")["spec"]["template"]["spec"]["containers"]
    in_pod = {v["name"]: v.get("value") for v in container["env"]}
    assert in_pod["MPLCONFIGDIR"] == _env()["MPLCONFIGDIR"]
    assert _env()["MPLCONFIGDIR"].startswith("/tmp/")  # the pod's emptyDir


def test_the_runtime_stage_has_no_compiler_and_runs_unprivileged() -> None:
    runs = " ".join(i.args for i in _runtime("RUN"))
    assert not re.search(r"\b(gcc|g\+\+|make|build-essential)\b", runs)
    assert "--no-index" in runs and "--find-links /wheels" in runs
    (user,) = _runtime("USER")
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit()
    froms = [i.args.split()[0] for i in INSTRUCTIONS if i.name == "FROM"]
    assert froms == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in (ROOT / "Dockerfile").read_text()


def _pip(stage: int) -> list[list[str]]:
    """The pip commands of a stage's RUN instructions, as argument lists from `pip` on."""
    commands = []
    for instruction in (i for i in INSTRUCTIONS if i.stage == stage and i.name == "RUN"):
        for command in re.split(r"&&|;", instruction.args):
            words = shlex.split(command)
            if "pip" in words:
                commands.append(words[words.index("pip") :])
    return commands


def test_the_build_stage_fetches_only_what_the_runtime_lock_names_with_its_hashes() -> None:
    fetches = [c for c in _pip(0) if c[1] in {"install", "wheel"} and "-r" in c]
    assert [c[c.index("-r") + 1] for c in fetches] == ["requirements/build.txt", "requirements/runtime.txt"]
    for command in fetches:
        assert {"--require-hashes", "--no-deps"} <= set(command), command
    (project,) = [c for c in _pip(0) if c[1] == "wheel" and c[-1] == "."]
    builds = [c for c in _pip(0) if c[1] == "wheel"]
    # Builds (durable-rules' sdist, the project) use the locked setuptools, not a fetched one.
    assert all("--no-build-isolation" in c for c in builds) and "--no-deps" in project
    assert all(c[c.index("--wheel-dir") + 1] == "/wheels" for c in builds)
    # The image has no test package: the test set is never named.
    assert "requirements/test.txt" not in (ROOT / "Dockerfile").read_text()
    (install,) = [c for c in _pip(RUNTIME) if c[1] == "install"]
    assert {"--no-index", "--find-links"} <= set(install) and install[-1] == "cds-service"
    assert ["pip", "check"] in _pip(RUNTIME)


def test_the_command_is_exec_form_serve() -> None:
    (cmd,) = _runtime("CMD")
    assert json.loads(cmd.args) == ["cds-service", "serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "cds-service" in scripts


def _healthcheck() -> list[str]:
    (check,) = _runtime("HEALTHCHECK")
    command = json.loads(check.args[check.args.index("CMD") + len("CMD") :])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def test_the_healthcheck_passes_on_a_serving_port_and_fails_on_an_empty_one(service: LiveService) -> None:
    port = service.base_url.rsplit(":", 1)[1]
    healthy = subprocess.run(
        _healthcheck(), env={"CDS_PORT": port}, capture_output=True, timeout=30, check=False
    )
    assert healthy.returncode == 0, healthy.stderr
    absent = subprocess.run(
        _healthcheck(), env={"CDS_PORT": str(free_port())}, capture_output=True, timeout=30, check=False
    )
    assert absent.returncode == 1 and b"Connection refused" in absent.stderr
