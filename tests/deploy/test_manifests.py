"""deploy/kubernetes: valid for the API server, and consistent with the service and the image.

Validated offline against the OpenAPI schemas kubernetes-validate bundles (strict: an unknown or
misspelt field is an error), for the oldest version the manifests need (the preStop `sleep` action
is on by default from 1.30) and the newest bundled.
"""

from __future__ import annotations

import copy
import dataclasses
import posixpath
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest

from cds_service.config import Settings
from cds_service.security.trust import load_trust
from tests.conftest import ROOT
from tests.deploy.manifests import KUBERNETES, build, kustomization, load, one

VERSIONS = ["1.30", kubernetes_validate.latest_version()]
SETTINGS = {f"CDS_{field.name.upper()}" for field in dataclasses.fields(Settings)}


@pytest.fixture(scope="module")
def built() -> list[dict[str, Any]]:
    return build()


@pytest.fixture(scope="module")
def deployment(built: list[dict[str, Any]]) -> dict[str, Any]:
    return one(built, "Deployment")


@pytest.fixture(scope="module")
def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (found,) = deployment["spec"]["template"]["spec"]["containers"]
    return found


def _env(built: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The container's environment, as the kubelet assembles it (ConfigMap, then `env`, Secret values)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(one(built, "ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = one(built, "Secret", ref["name"])["stringData"][ref["key"]]
    return env


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid_for_the_api_server(built: list[dict[str, Any]], version: str) -> None:
    for resource in built:
        kubernetes_validate.validate(resource, version, strict=True)


def test_the_validation_is_not_vacuous(deployment: dict[str, Any]) -> None:
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


def test_kustomize_applies_every_manifest_in_the_directory() -> None:
    spec = kustomization()
    listed = set(spec["resources"]) | {patch["path"] for patch in spec["patches"]}
    present = {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_the_probes_ask_healthz_on_the_serving_port(container: dict[str, Any]) -> None:
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http", 8080)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    # /healthz pings the database, for at most the 5 s connect timeout when it is unreachable; a probe
    # that gave up sooner would take pods out (or restart them) for a database outage.
    assert container["readinessProbe"]["timeoutSeconds"] > 5
    assert container["livenessProbe"]["timeoutSeconds"] > 5


def test_the_pods_run_unprivileged_on_a_read_only_root(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    tmp = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}["/tmp"]
    assert "emptyDir" in {v["name"]: v for v in pod["volumes"]}[tmp]
    assert {"requests", "limits"} <= set(container["resources"])
    assert deployment["spec"]["replicas"] >= 2


def test_the_image_is_the_project_version_never_latest(container: dict[str, Any]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    name, _, tag = container["image"].rpartition(":")
    assert name and tag == version != "latest"
    assert f"cds-service:{version}" in (ROOT / "Dockerfile").read_text()


def test_every_variable_is_a_setting_and_the_settings_start(
    built: list[dict[str, Any]], container: dict[str, Any]
) -> None:
    env = _env(built, container)
    assert {name for name in env if name.startswith("CDS_")} <= SETTINGS
    settings = Settings.from_env(env)
    assert settings.auth_problem() is None
    assert settings.public_url is not None and settings.public_url.startswith("https://")
    assert settings.database_url.startswith("postgresql+psycopg://")  # several replicas need one database
    assert settings.host == "0.0.0.0" and settings.port == 8080


def test_the_database_url_comes_from_the_secret_which_holds_a_placeholder(
    built: list[dict[str, Any]], container: dict[str, Any]
) -> None:
    (variable,) = [v for v in container["env"] if v["name"] == "CDS_DATABASE_URL"]
    ref = variable["valueFrom"]["secretKeyRef"]
    secret = one(built, "Secret", ref["name"])
    assert "REPLACE-ME" in secret["stringData"][ref["key"]]
    assert all(
        "CDS_DATABASE_URL" not in configmap.get("data", {}) for configmap in load(KUBERNETES / "config.yaml")
    )


def _mounted(container: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The volume mount holding `path`, and the path below it."""
    for mount in container["volumeMounts"]:
        if PurePosixPath(path).is_relative_to(mount["mountPath"]):
            return mount, posixpath.relpath(path, mount["mountPath"])
    raise AssertionError(f"{path} is on no volume")


def test_the_rules_directory_is_where_the_rules_volume_puts_it(
    built: list[dict[str, Any]], deployment: dict[str, Any], container: dict[str, Any]
) -> None:
    env = _env(built, container)
    mount, below = _mounted(container, env["CDS_RULES_DIR"])
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    paths = {item["path"] for item in volumes[mount["name"]]["configMap"]["items"]}
    assert f"{below}/ruleset.yaml" in paths
    assert {p for p in paths if p.startswith(f"{below}/services/")}, "no service definitions"
    configmap = one(built, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    keys = {item["key"] for item in volumes[mount["name"]]["configMap"]["items"]}
    assert keys == set(configmap["data"]) | set(configmap.get("binaryData", {}))


def test_the_trust_file_is_where_its_volume_puts_it_and_loads(
    built: list[dict[str, Any]], deployment: dict[str, Any], container: dict[str, Any], tmp_path: Path
) -> None:
    env = _env(built, container)
    mount, key = _mounted(container, env["CDS_TRUST_FILE"])
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    trust = one(built, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    (tmp_path / "trust.yaml").write_text(trust["data"][key])
    (issuer,) = load_trust(tmp_path / "trust.yaml").values()
    assert issuer.iss.startswith("https://") and issuer.jwks_url


def test_the_service_and_the_disruption_budget_select_the_pods(
    built: list[dict[str, Any]], deployment: dict[str, Any]
) -> None:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = one(built, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    budget = one(built, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]
