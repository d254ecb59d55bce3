"""Hot reload from a ConfigMap volume, laid out and updated as kubelet does it (tests/deploy/kubelet.py).

The rules directory is a symlink into a timestamped directory that is swapped on every update. The
ruleset hash must not see that layout (every pod, and every update with the same content, would get
a different hash); an update must be reloaded, a broken one rejected, and new case fixtures must
arrive with the rules that need them.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from cds_service.deploy import rules_configmap
from cds_service.engine import RuleEngine
from cds_service.engine.durable import DurableRules
from cds_service.engine.ruleset import load_ruleset, ruleset_hash
from cds_service.reload import Reloader
from tests.conftest import ROOT
from tests.deploy.kubelet import files_of, project
from tests.engine.rulesdir import edit

# Each check compiles a whole ruleset and runs every case.
pytestmark = pytest.mark.integration

SUMMARY = "Anakinra {order.daily_dose} mg/day is above the {param.max_daily_dose} mg/day maximum"
NEW_SUMMARY = "Anakinra {order.daily_dose} mg/day exceeds the maximum of {param.max_daily_dose} mg/day"


class Volume:
    """A source tree (rules/ and fhir_fixtures/, both editable) and the ConfigMap volume made from it."""

    def __init__(self, tmp_path: Path) -> None:
        self.source = tmp_path / "source" / "rules"
        shutil.copytree(ROOT / "rules", self.source)
        shutil.copytree(ROOT / "fhir_fixtures", tmp_path / "source" / "fhir_fixtures")
        self.mount = tmp_path / "mount"
        self._stamps: Iterator[int] = itertools.count(1)
        self.update()

    @property
    def rules(self) -> Path:
        return self.mount / "rules"

    def update(self) -> None:
        """Regenerate the ConfigMap from the source and let 'kubelet' swap it in."""
        generated = rules_configmap(self.source)
        (configmap,) = yaml.safe_load_all(generated.configmap)
        (patch,) = yaml.safe_load_all(generated.volume)
        (volume,) = patch["spec"]["template"]["spec"]["volumes"]
        stamp = f"2026_11_23_10_00_{next(self._stamps):02d}.000000001"
        project(self.mount, files_of(configmap, volume["configMap"]["items"]), stamp)


@pytest.fixture
def volume(tmp_path: Path) -> Volume:
    return Volume(tmp_path)


@pytest.fixture
async def reloader(volume: Volume) -> AsyncIterator[Reloader]:
    durable = DurableRules()
    engine = RuleEngine(load_ruleset(volume.rules, durable), durable)
    yield Reloader(engine, volume.rules, release_after_seconds=0)
    engine.close()


def test_the_layout_is_kubelets(volume: Volume) -> None:
    assert volume.rules.is_symlink() and (volume.mount / "..data").is_symlink()
    (stamped,) = [p for p in volume.mount.iterdir() if p.name.startswith("..2026")]
    assert (stamped / "rules" / "ruleset.yaml").is_file()


def test_rules_at_the_root_of_a_volume_hash_as_their_source(volume: Volume, tmp_path: Path) -> None:
    """Mounted as the rules directory itself, the volume's hidden `..data` and timestamped directories
    hold every file once more: the hash must read the rules as the service does, once."""
    files = {p.relative_to(volume.source).as_posix(): p.read_bytes() for p in volume.source.rglob("*.yaml")}
    root = tmp_path / "root-mount"
    project(root, files, "2026_11_23_10_00_00.000000001")
    assert ruleset_hash(root) == ruleset_hash(volume.source)
    project(root, files, "2026_11_23_10_05_00.000000001")
    assert ruleset_hash(root) == ruleset_hash(volume.source)


async def test_the_mounted_rules_hash_as_their_source_whatever_the_update(
    volume: Volume, reloader: Reloader
) -> None:
    before = reloader.engine.ruleset
    assert before.hash == ruleset_hash(volume.source)
    volume.update()  # the same content under a new timestamped directory
    result = await reloader.check()
    assert result.outcome == "unchanged"
    assert reloader.engine.ruleset is before


async def test_a_broken_update_keeps_the_rules_serving_until_fixed(
    volume: Volume, reloader: Reloader
) -> None:
    before = reloader.engine.ruleset
    path = volume.source / "max-dose.yaml"
    edit(path, "fact: order.daily_dose", "fact: order.daily_dos")
    volume.update()
    result = await reloader.check()
    assert result.outcome == "rejected"
    assert any("order.daily_dos" in error for error in result.errors), result.errors
    assert reloader.engine.ruleset is before
    edit(path, "fact: order.daily_dos", "fact: order.daily_dose")
    edit(path, SUMMARY, NEW_SUMMARY)
    volume.update()
    result = await reloader.check()
    assert result.outcome == "reloaded", result.errors
    assert reloader.engine.ruleset.hash == ruleset_hash(volume.source)
    assert "exceeds the maximum" in reloader.engine.ruleset.rules["max-dose"].spec.variants[0].card.summary


async def test_a_new_case_arrives_with_its_new_fixture(volume: Volume, reloader: Reloader) -> None:
    """The reload runs every case; a case naming a fixture the volume lacked would reject the update."""
    patients = volume.source.parent / "fhir_fixtures" / "patients"
    shutil.copy(patients / "sparse.json", patients / "arrived-with-the-update.json")
    cases_path = volume.source / "max-dose.cases.yaml"
    cases = yaml.safe_load(cases_path.read_text())
    (first,) = [case for case in cases["cases"] if case.get("patient", "").endswith("/sparse.json")][:1]
    added = {**first, "name": "the same, from a fixture added with the update"}
    added["patient"] = "../fhir_fixtures/patients/arrived-with-the-update.json"
    cases["cases"].append(added)
    cases_path.write_text(yaml.safe_dump(cases, sort_keys=False, allow_unicode=True))
    edit(volume.source / "max-dose.yaml", SUMMARY, NEW_SUMMARY)
    volume.update()
    assert (volume.mount / "fhir_fixtures" / "patients" / "arrived-with-the-update.json").is_file()
    result = await reloader.check()
    assert result.outcome == "reloaded", result.errors
