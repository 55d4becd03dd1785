"""The Kubernetes path (deploy/helm/values.yaml for the official Dagster chart) checked without a
cluster: the run launcher and run coordinator blocks, which the chart writes into dagster.yaml as
they are (Custom* types), validate against the classes' own Dagster config schemas (and the
launcher's volumes against the Kubernetes models dagster-k8s builds from them); the
coordinator keeps the repository's limits; every component running our code gets the same
settings. Not checked here: the chart's values.schema.json and template rendering (README)."""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import kubernetes
import pytest
from dagster._config import process_config, resolve_to_config_type
from dagster._core.launcher import RunLauncher
from dagster._core.run_coordinator import RunCoordinator
from dagster_k8s.models import k8s_snake_case_dict

from elt_platform.configfile import parse_yaml
from elt_platform.settings import ENV_VARS, REPO_ROOT, load_settings

VALUES = REPO_ROOT / "deploy" / "helm" / "values.yaml"
SECRET = "elt-platform-env"  # holds ELT_METADATA_URL


def _values() -> dict:
    return parse_yaml(VALUES.read_text(), str(VALUES))[0]


def _launcher(values: dict) -> dict:
    assert values["runLauncher"]["type"] == "CustomRunLauncher"
    return values["runLauncher"]["config"]["customRunLauncher"]


def _coordinator(values: dict) -> dict:
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "CustomRunCoordinator"
    return coordinator["config"]["customRunCoordinator"]


def config_errors(block: dict, base: type) -> list[str]:
    """Why Dagster would refuse `block` (module, class, config) when loading its instance."""
    klass = getattr(importlib.import_module(block["module"]), block["class"])
    assert issubclass(klass, base), klass
    result = process_config(resolve_to_config_type(klass.config_type()), block["config"])
    if not result.success:
        return [e.message for e in result.errors]
    return _kubernetes_errors(block["config"]) if base is RunLauncher else []


def _kubernetes_errors(config: dict) -> list[str]:
    """Dagster's schema takes volumes and mounts as any mapping; dagster-k8s converts them to
    Kubernetes models when it builds a run's Job, refusing unknown keys: do the same here."""
    errors = []
    models = {
        "volumes": kubernetes.client.V1Volume,
        "volume_mounts": kubernetes.client.V1VolumeMount,
    }
    for key, model in models.items():
        for item in config.get(key, []):
            try:
                k8s_snake_case_dict(model, item)
            except Exception as exc:  # dagster-k8s raises a bare Exception
                errors.append(f"{key}: {exc}")
    return errors


def test_run_launcher_is_k8s_and_its_config_is_valid_for_dagster_k8s():
    launcher = _launcher(_values())
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert config_errors(launcher, RunLauncher) == []


def test_run_coordinator_is_the_guarded_queue_with_the_repository_limits():
    coordinator = _coordinator(_values())
    assert config_errors(coordinator, RunCoordinator) == []
    local = parse_yaml((REPO_ROOT / "dagster.yaml").read_text(), "dagster.yaml")[0]
    assert coordinator == local["run_coordinator"]  # same class, one writer per environment


BREAKAGES = {
    "misspelt launcher key": (
        _launcher,
        lambda c: c.update(job_namespce=c.pop("job_namespace")),
        "job_namespce",
    ),
    "misspelt Kubernetes key in a volume mount": (
        _launcher,
        lambda c: c["volume_mounts"][0].update(mountPth=c["volume_mounts"][0].pop("mountPath")),
        "mountPth",
    ),
    "misspelt Kubernetes key in a volume": (
        _launcher,
        lambda c: c["volumes"][0]["persistentVolumeClaim"].update(claimNme="x"),
        "claimNme",
    ),
    "required launcher key missing": (
        _launcher,
        lambda c: c.pop("instance_config_map"),
        "instance_config_map",
    ),
    "coordinator limit of the wrong type": (
        _coordinator,
        lambda c: c.update(max_concurrent_runs="four"),
        "max_concurrent_runs",
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_values_file_fails_validation_naming_the_key(breakage):
    section, edit, key = BREAKAGES[breakage]
    values = copy.deepcopy(_values())
    block = section(values)
    edit(block["config"])
    base = RunLauncher if section is _launcher else RunCoordinator
    errors = config_errors(block, base)
    assert errors and key in " ".join(errors), errors


def _components(values: dict) -> dict[str, tuple[dict[str, str], list[str], dict[str, str]]]:
    """Per pod kind that runs our code: (env vars, secrets, volume mount paths)."""

    def chart(spec: dict):
        env = {e["name"]: e["value"] for e in spec.get("env", [])}
        secrets = [s["name"] for s in spec.get("envSecrets", [])]
        mounts = {m["name"]: m["mountPath"] for m in spec.get("volumeMounts", [])}
        return env, secrets, mounts

    deployments = values["dagster-user-deployments"]["deployments"]
    assert len(deployments) == 1
    launcher = _launcher(values)["config"]
    return {
        "webserver": chart(values["dagsterWebserver"]),
        "daemon": chart(values["dagsterDaemon"]),
        "code server": chart(deployments[0]),
        "run pod": (
            dict(v.split("=", 1) for v in launcher["env_vars"]),
            launcher["env_secrets"],
            {m["name"]: m["mountPath"] for m in launcher["volume_mounts"]},
        ),
    }


def test_every_component_gets_the_same_settings_and_the_url_only_from_the_secret():
    components = _components(_values())
    known = set(ENV_VARS.values())
    for name, (env, secrets, mounts) in components.items():
        assert env, name
        assert set(env) <= known, (name, set(env) - known)  # a typo would be silently ignored
        assert "ELT_METADATA_URL" not in env and SECRET in secrets, name
        assert mounts == {"elt-warehouse": env["ELT_HOME"]}, name
    assert len({tuple(sorted(env.items())) for env, _, _ in components.values()}) == 1
    env = next(iter(components.values()))[0]
    settings = load_settings({**env, "ELT_METADATA_URL": "postgresql+psycopg2://u:p@db/elt"})
    assert settings.home == Path("/mnt/elt/home")
    assert settings.dbt_project_dir == Path("/opt/elt/dbt_project")
    assert settings.metadata_url == "postgresql+psycopg2://u:p@db/elt"


def test_the_image_holds_the_project_the_values_point_at():
    dockerfile = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
    env = _components(_values())["code server"][0]
    assert f"ELT_PROJECT_DIR={env['ELT_PROJECT_DIR']}" in dockerfile
    assert "COPY dbt_project ./dbt_project" in dockerfile and "WORKDIR /opt/elt" in dockerfile
    assert "'.[scale]'" in dockerfile  # dagster-k8s and psycopg2 for the launcher and storage
