"""The import contracts in pyproject.toml ([tool.importlinter]) hold: the architecture as written down."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]


def _lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("lint-imports")
    command = str(script) if script.exists() else shutil.which("lint-imports")
    assert command, "lint-imports is not installed: pip install -e '.[test]'"
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [command, "--no-cache", "--no-logo", str(cwd / "pyproject.toml")],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _contract(contract_id: str) -> dict[str, Any]:
    return next(c for c in CONTRACTS["contracts"] if c["id"] == contract_id)


def test_imports_keep_every_contract() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_reach_back_breaks_a_contract(tmp_path: Path) -> None:
    # The same check on a copy of the package with one import going the wrong way must fail, naming it:
    # the contracts are read and applied, not passed vacuously.
    shutil.copytree(
        ROOT / "cds_service", tmp_path / "cds_service", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    outcome = tmp_path / "cds_service" / "protocol" / "outcome.py"
    outcome.write_text(outcome.read_text(encoding="utf-8") + "\nimport cds_service.engine  # noqa\n")
    result = _lint_imports(tmp_path, pythonpath=tmp_path)
    assert result.returncode != 0
    assert "cds_service.protocol.outcome -> cds_service.engine" in result.stdout


def test_charts_and_protocol_building_store_rows_break_a_contract(tmp_path: Path) -> None:
    # The face builds the store's rows from plain results: charts or the wire format importing the store's
    # rows (or, for charts, anything of the store) is refused, each import named.
    shutil.copytree(
        ROOT / "cds_service", tmp_path / "cds_service", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    reaches = {
        "charts/links.py": "cds_service.store.database",
        "charts/text.py": "cds_service.store.limits",
        "protocol/feedback.py": "cds_service.store.database",
        "protocol/response.py": "cds_service.store.writer",
    }
    for module, target in reaches.items():
        path = tmp_path / "cds_service" / module
        path.write_text(path.read_text(encoding="utf-8") + f"\nimport {target}  # noqa\n")
    result = _lint_imports(tmp_path, pythonpath=tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    for module, target in reaches.items():
        source = "cds_service." + module.removesuffix(".py").replace("/", ".")
        assert f"{source} -> {target}" in result.stdout, (source, result.stdout)


def test_calculators_contract_names_every_calculator_and_every_other_module() -> None:
    # A forbidden contract lists what it checks and what it forbids; a module added later must not slip
    # past it: every calculator is a source, and every other module of the service is forbidden to them.
    package = ROOT / "cds_service"
    siblings = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    siblings |= {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    clinical = {
        ".".join(("clinical", *p.relative_to(package / "clinical").with_suffix("").parts))
        for p in (package / "clinical").rglob("*.py")
        if p.name != "__init__.py"
    }
    contract = _contract("calculators-pure")
    sources = {name.removeprefix("cds_service.") for name in contract["source_modules"]}
    forbidden = {name.removeprefix("cds_service.") for name in contract["forbidden_modules"]}
    assert {name for name in clinical if name.endswith(".calculator")} <= sources
    assert sources <= clinical
    assert forbidden == (siblings - {"clinical"}) | (clinical - sources)


def test_every_package_declares_its_public_names() -> None:
    for init in sorted((ROOT / "cds_service").glob("*/__init__.py")):
        name = f"cds_service.{init.parent.name}"
        package = importlib.import_module(name)
        assert isinstance(getattr(package, "__all__", None), list), f"{name} declares no __all__"
        for public in package.__all__:
            # A package exports either its own names or its modules.
            assert hasattr(package, public) or importlib.util.find_spec(f"{name}.{public}"), (
                f"{name}.{public}"
            )
