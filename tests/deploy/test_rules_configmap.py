"""`cds-service rules configmap`: rules/ (and the fixtures its cases name) as a ConfigMap and its volume.

The committed deploy/kubernetes/rules-*.yaml must be what the command generates from rules/ now, and
mounted as kubelet mounts it, must give back rules/ byte for byte.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from cds_service.cases import load_cases
from cds_service.cli import main
from cds_service.deploy import CONFIGMAP_FILE, HASH_ANNOTATION, VOLUME_FILE, ConfigMapError, rules_configmap
from cds_service.derived import REGEN_COMMAND
from cds_service.engine.ruleset import ruleset_hash
from tests.conftest import ROOT, RULES
from tests.deploy.kubelet import files_of, project
from tests.deploy.manifests import KUBERNETES
from tests.engine.rulesdir import copy_rules

REGENERATE = f"regenerate them with `{REGEN_COMMAND}`"


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _mount(tmp_path: Path, configmap_text: str, volume_text: str) -> Path:
    (configmap,) = yaml.safe_load_all(configmap_text)
    (patch,) = yaml.safe_load_all(volume_text)
    (volume,) = patch["spec"]["template"]["spec"]["volumes"]
    mount = tmp_path / "mount"
    project(mount, files_of(configmap, volume["configMap"]["items"]), "2026_11_23_10_00_00.000000001")
    return mount


def test_the_committed_configmap_and_volume_are_the_generated_ones() -> None:
    generated = rules_configmap(RULES)
    assert (KUBERNETES / CONFIGMAP_FILE).read_text() == generated.configmap, f"{CONFIGMAP_FILE}: {REGENERATE}"
    assert (KUBERNETES / VOLUME_FILE).read_text() == generated.volume, f"{VOLUME_FILE}: {REGENERATE}"


def test_the_committed_configmap_mounted_gives_back_rules_byte_for_byte(tmp_path: Path) -> None:
    mount = _mount(
        tmp_path, (KUBERNETES / CONFIGMAP_FILE).read_text(), (KUBERNETES / VOLUME_FILE).read_text()
    )
    assert _tree(mount / "rules") == _tree(RULES)
    (configmap,) = yaml.safe_load_all((KUBERNETES / CONFIGMAP_FILE).read_text())
    assert (
        ruleset_hash(mount / "rules")
        == ruleset_hash(RULES)
        == configmap["metadata"]["annotations"][HASH_ANNOTATION]
    )
    # Every case finds its patient or request, and it is the repository's.
    cases = load_cases(mount / "rules")
    named = {c.case.patient or c.case.request for c in cases}
    assert named and all(name is not None and name.startswith("../fhir_fixtures/") for name in named)
    for name in named:
        assert name is not None
        relative = name.removeprefix("../")
        assert (mount / relative).read_bytes() == (ROOT / relative).read_bytes()


def test_odd_files_round_trip_exactly(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    odd = {
        "notes/trailing.txt": b"trailing spaces   \n\ttab\n\n\n",
        "notes/no-newline.txt": b"no newline at the end",
        "notes/crlf.txt": b"windows\r\nline ends\r\n",
        "notes/binary.bin": bytes(range(256)),
        "notes/indented.txt": b"  starts indented\nthen not\n",
    }
    for path, content in odd.items():
        (rules / path).parent.mkdir(parents=True, exist_ok=True)
        (rules / path).write_bytes(content)
    generated = rules_configmap(rules)
    mount = _mount(tmp_path, generated.configmap, generated.volume)
    assert _tree(mount / "rules") == _tree(rules)
    assert "binaryData" in generated.configmap


def test_what_a_configmap_cannot_hold_is_refused(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    (rules / "a file.yaml").write_text("x: 1\n")
    with pytest.raises(ConfigMapError, match="a file.yaml: a ConfigMap key allows only"):
        rules_configmap(rules)
    (rules / "a file.yaml").unlink()
    (rules / "big.txt").write_bytes(b"x" * 1024 * 1024)
    with pytest.raises(ConfigMapError, match="a ConfigMap holds at most"):
        rules_configmap(rules)


def test_a_case_fixture_outside_the_mounted_directory_is_refused(tmp_path: Path) -> None:
    # rules/ sits two levels down here; its cases name ../fhir_fixtures, which is beside it: fine.
    # One naming a file further up could not be mounted at the same relative path.
    rules = copy_rules(tmp_path / "deep")
    outside = tmp_path / "outside.json"
    shutil.copy(ROOT / "fhir_fixtures" / "patients" / "sparse.json", outside)
    case_file = rules / "max-dose.cases.yaml"
    text = case_file.read_text()
    first = text.index("patient: ") + len("patient: ")
    end = text.index("\n", first)
    case_file.write_text(text[:first] + "../../outside.json" + text[end:])
    with pytest.raises(ConfigMapError, match=r"\.\./\.\./outside\.json is outside"):
        rules_configmap(rules)


def test_the_command_writes_both_files_and_refuses_broken_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["rules", "configmap", str(RULES), "--out", str(out), "--name", "my-rules"]) == 0
    err = capsys.readouterr().err
    assert f"ruleset sha256 {ruleset_hash(RULES)}" in err and "+ /rules" in err
    (configmap,) = yaml.safe_load_all((out / CONFIGMAP_FILE).read_text())
    assert configmap["metadata"]["name"] == "my-rules"
    assert "name: my-rules" in (out / VOLUME_FILE).read_text()

    rules = copy_rules(tmp_path)
    path = rules / "max-dose.yaml"
    path.write_text(path.read_text().replace("fact: order.daily_dose", "fact: order.daily_dos", 1))
    assert main(["rules", "configmap", str(rules), "--out", str(tmp_path / "broken")]) == 2
    assert f"{path}:" in capsys.readouterr().err
    assert not (tmp_path / "broken").exists()
