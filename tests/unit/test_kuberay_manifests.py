"""The KubeRay manifests in ``deploy/kuberay/``: our own parsers accept what they run, and KubeRay's CRD schema too.

No Ray is started. Every RayJob ``entrypoint`` is split like a shell would and parsed by the real command's
parser (a misspelt or removed flag fails here), the RayService's Serve config by Ray Serve's schema and our
:class:`~ray_backend.serve.ServeArgs`. The schema test validates each manifest against the ``v1`` OpenAPI schema
of KubeRay's CRDs when ``KUBERAY_CRD_DIR`` names a folder holding ``ray.io_rayservices.yaml`` and
``ray.io_rayjobs.yaml`` (copied from ``ray-project/kuberay``, ``ray-operator/config/crd/bases/``), with unknown
fields refused as ``kubectl apply`` (strict field validation) refuses them.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from instructor_plugins.cli import COMMANDS
from instructor_plugins.storage import is_uri

ROOT = Path(__file__).resolve().parents[2]
KUBERAY = ROOT / "deploy" / "kuberay"
MANIFESTS = {"rayservice.yaml": "RayService", "rayjob-batch.yaml": "RayJob", "rayjob-finetune.yaml": "RayJob"}
CRD_FILES = {"RayService": "ray.io_rayservices.yaml", "RayJob": "ray.io_rayjobs.yaml"}
SECRET_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def load(name: str) -> dict[str, Any]:
    """The single YAML document of ``deploy/kuberay/<name>``."""
    docs = list(yaml.safe_load_all((KUBERAY / name).read_text()))
    assert len(docs) == 1, f"{name}: expected one YAML document, got {len(docs)}"
    doc: dict[str, Any] = docs[0]
    return doc


def cluster_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    """The RayCluster spec inside a RayJob (``rayClusterSpec``) or a RayService (``rayClusterConfig``)."""
    spec: dict[str, Any] = manifest["spec"]
    return spec["rayClusterSpec"] if manifest["kind"] == "RayJob" else spec["rayClusterConfig"]


def pod_specs(manifest: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("head", pod spec)`` then ``(group name, pod spec)`` for each worker group."""
    cluster = cluster_spec(manifest)
    yield "head", cluster["headGroupSpec"]["template"]["spec"]
    for group in cluster.get("workerGroupSpecs", []):
        yield group["groupName"], group["template"]["spec"]


def cpus(quantity: str | int | float) -> float:
    """A Kubernetes CPU quantity (``"4"``, ``"500m"``, ``2``) in CPUs."""
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def worker_capacity(manifest: dict[str, Any], per_unit_cpus: float) -> tuple[int, int]:
    """How many units of ``per_unit_cpus`` fit in all worker pods, and in the biggest single pod."""
    per_pod = []
    for group in cluster_spec(manifest)["workerGroupSpecs"]:
        (container,) = group["template"]["spec"]["containers"]
        fit = int(cpus(container["resources"]["limits"]["cpu"]) // per_unit_cpus)
        per_pod += [fit] * group["replicas"]
    return sum(per_pod), max(per_pod)


def entrypoint(manifest: dict[str, Any]) -> tuple[str, list[str]]:
    """A RayJob's ``instructor <command>`` and its arguments, split as the job's shell splits them."""
    argv = shlex.split(manifest["spec"]["entrypoint"])
    assert argv[0] == "instructor", f"entrypoint must run the instructor command: {argv[:2]}"
    assert argv[1] in COMMANDS, f"instructor has no subcommand {argv[1]!r} (valid: {sorted(COMMANDS)})"
    return argv[1], argv[2:]


def parsed(parse: Any, args: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``parse(args)`` taking each flag by its full name; a usage error (argparse exits) fails the test.

    argparse accepts an unambiguous prefix (``--num-worker``); a manifest must spell the flag out, so that a
    flag added later with the same prefix cannot change its meaning.
    """
    original = argparse.ArgumentParser.parse_args

    def exact(self: argparse.ArgumentParser, *a: Any, **k: Any) -> Any:
        self.allow_abbrev = False
        return original(self, *a, **k)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", exact)
    try:
        return parse(args)
    except SystemExit as exc:  # argparse: an unknown flag or a bad value (message on stderr)
        pytest.fail(f"our parser refused the manifest's arguments (exit {exc.code}): {args}")


def pip_requirements(manifest: dict[str, Any]) -> list[str]:
    """The runtime_env pip list: the RayJob's ``runtimeEnvYAML``, or each Serve application's ``runtime_env``."""
    if manifest["kind"] == "RayJob":
        return list(yaml.safe_load(manifest["spec"].get("runtimeEnvYAML") or "{}").get("pip", []))
    serve_config = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    return [req for app in serve_config["applications"] for req in app.get("runtime_env", {}).get("pip", [])]


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_manifest_is_a_ray_io_v1_resource_with_the_stock_ray_image(name: str) -> None:
    manifest = load(name)
    assert manifest["apiVersion"] == "ray.io/v1"
    assert manifest["kind"] == MANIFESTS[name]
    assert DNS_LABEL.match(manifest["metadata"]["name"]), manifest["metadata"]["name"]
    version = cluster_spec(manifest)["rayVersion"]
    head_params = cluster_spec(manifest)["headGroupSpec"]["rayStartParams"]
    assert head_params.get("num-cpus") == "0", "the head must take no replica, actor or Train worker"
    for group, pod in pod_specs(manifest):
        for container in pod["containers"]:
            assert container["image"].startswith(f"rayproject/ray:{version}-py311"), (group, container["image"])
            for var in container.get("env", []):
                if var["name"] in SECRET_ENV:  # keys come from a Secret, never written into the manifest
                    assert "value" not in var and "secretKeyRef" in var["valueFrom"], (group, var["name"])


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_pip_requirement_names_our_package_version_and_real_extras(name: str) -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (req,) = [r for r in pip_requirements(load(name)) if r.startswith(project["name"])]
    match = re.fullmatch(rf"{re.escape(project['name'])}\[([\w,-]+)\]==([\w.]+)", req)
    assert match, f"expected {project['name']}[extras]==version, got {req!r}"
    extras = set(match.group(1).split(","))
    assert extras <= set(project["optional-dependencies"]), extras - set(project["optional-dependencies"])
    assert match.group(2) == project["version"]
    needed = {"rayservice.yaml": "serve", "rayjob-batch.yaml": "data", "rayjob-finetune.yaml": "train"}[name]
    assert needed in extras


def test_batch_job_entrypoint_parses_with_our_batch_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray_backend.batch import config_from_args

    manifest = load("rayjob-batch.yaml")
    command, args = entrypoint(manifest)
    assert COMMANDS[command].module == "ray_backend.batch"
    config, address = parsed(config_from_args, args, monkeypatch)
    assert address is None  # a Ray job's driver joins its cluster through RAY_ADDRESS, set by Ray
    for flag, value in (("--input", config.input), ("--output", config.output)):
        assert is_uri(value) and not value.startswith("file://"), f"{flag} {value!r}: several nodes need object storage"
    assert not config.shared_storage
    assert config.progress is False  # progress bars are noise in a pod's log
    total, per_pod = worker_capacity(manifest, config.num_cpus)
    assert per_pod >= 1, f"an actor of {config.num_cpus} CPUs fits in no worker pod"
    assert total >= config.replicas + per_pod, "no spare pod for an actor restarted after losing its pod"


def test_finetune_job_entrypoint_parses_with_our_train_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.train import parse_args

    manifest = load("rayjob-finetune.yaml")
    command, args = entrypoint(manifest)
    assert COMMANDS[command].module == "training.train"
    cfg = parsed(parse_args, args, monkeypatch)
    for flag, value in (("--output", cfg.output), ("--storage-path", cfg.storage_path)):
        assert value and is_uri(value) and not value.startswith("file://"), f"{flag} {value!r}: use object storage"
    assert not cfg.shared_storage
    assert cfg.max_failures != 0, "a lost node must be recovered from the last checkpoint"
    if not is_uri(cfg.data) and cfg.data.startswith("/"):  # the driver (head) and every worker read it locally
        for group, pod in pod_specs(manifest):
            (container,) = pod["containers"]
            mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
            assert any(cfg.data.startswith(m.rstrip("/") + "/") for m in mounts), f"{group} does not mount {cfg.data}"
    total, per_pod = worker_capacity(manifest, cfg.cpus_per_worker)
    assert per_pod >= 1, f"a Train worker of {cfg.cpus_per_worker} CPUs fits in no worker pod"
    assert total >= cfg.num_workers + per_pod, "no spare pod to restart a lost rank on"


def test_rayservice_serve_config_builds_our_app_args_without_ray() -> None:
    pytest.importorskip("ray.serve")
    import ray
    from ray.serve.schema import ServeDeploySchema

    from ray_backend.serve import DEPLOYMENT_NAME, ServeArgs
    from ray_backend.serving.batching import BatchPolicy

    manifest = load("rayservice.yaml")
    config = ServeDeploySchema.model_validate(yaml.safe_load(manifest["spec"]["serveConfigV2"]))
    (app,) = config.applications
    module, _, attr = app.import_path.partition(":")
    target = getattr(importlib.import_module(module), attr)
    assert callable(target) and target.__name__ == "build_app"
    args = ServeArgs.model_validate(app.args)  # unknown keys and bad values raise; builds nothing
    (deployment,) = app.deployments
    assert deployment.name == DEPLOYMENT_NAME
    BatchPolicy.from_config(deployment.user_config)  # every key is a batch option
    assert not ray.is_initialized()
    # the proxy listens where the pods' Service reaches it
    (head,) = cluster_spec(manifest)["headGroupSpec"]["template"]["spec"]["containers"]
    assert config.http_options.host == "0.0.0.0"
    assert config.http_options.port in {p["containerPort"] for p in head["ports"]}
    assert args.num_gpus == 0 and args.num_cpus is not None  # the CPU worker group; GPU is the commented variant
    total, per_pod = worker_capacity(manifest, args.num_cpus)
    assert per_pod >= 1, f"a replica of {args.num_cpus} CPUs fits in no worker pod"
    assert total >= args.num_replicas + per_pod, "no spare pod for a replica replaced after losing its pod"


# --- KubeRay's CRD schema -----------------------------------------------------------------------------------------


def crd_schema(kind: str) -> dict[str, Any]:
    """The ``v1`` OpenAPI schema of KubeRay's CRD for ``kind``, from ``$KUBERAY_CRD_DIR`` (skip without it)."""
    folder = os.environ.get("KUBERAY_CRD_DIR")
    if not folder:
        pytest.skip("KUBERAY_CRD_DIR is not set (a folder with KubeRay's ray.io_rayservices.yaml, ray.io_rayjobs.yaml)")
    path = Path(folder) / CRD_FILES[kind]
    if not path.is_file():
        pytest.skip(f"KUBERAY_CRD_DIR has no {CRD_FILES[kind]}: {path}")
    crd = yaml.safe_load(path.read_text())
    assert crd["spec"]["group"] == "ray.io" and crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def strict(schema: Any) -> Any:
    """``schema`` with unknown fields refused wherever Kubernetes would (no ``x-kubernetes-preserve-unknown-fields``).

    A structural CRD schema leaves ``additionalProperties`` out; the API server then drops unknown fields, and
    ``kubectl apply`` (strict field validation) refuses them. JSON Schema would accept them silently.
    """
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    open_ended = "additionalProperties" in out or out.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and not open_ended:
        out["additionalProperties"] = False
    return out


def schema_errors(manifest: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every violation of ``schema`` by ``manifest``, as ``path: message``."""
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (the dev extra)")
    validator = jsonschema.Draft202012Validator(strict(schema))
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_manifest_validates_against_kuberay_crd(name: str) -> None:
    schema = crd_schema(MANIFESTS[name])
    errors = schema_errors(load(name), schema)
    assert not errors, f"{name} does not match KubeRay's CRD:\n" + "\n".join(errors)


def test_crd_check_refuses_a_misspelt_field_and_a_wrong_type() -> None:
    schema = crd_schema("RayJob")
    manifest = load("rayjob-finetune.yaml")
    typo = copy.deepcopy(manifest)
    typo["spec"]["rayClusterSpec"]["workerGroupSpec"] = typo["spec"]["rayClusterSpec"].pop("workerGroupSpecs")
    assert any("workerGroupSpec" in e for e in schema_errors(typo, schema))
    wrong = copy.deepcopy(manifest)
    wrong["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "three"
    assert any("replicas" in e for e in schema_errors(wrong, schema))
