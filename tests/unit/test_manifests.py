"""The production deployment files, checked offline: KubeRay manifests against the v1.7.0
CRDs and the operator's own rules, the Serve config against Ray 2.60's schema and against
the code it deploys, and the pieces that must agree with each other (RayService and
config/serve.yaml, Secret and Settings, image and Ray version, PodMonitor and pod labels)."""

from __future__ import annotations

import copy
import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml
from conftest import unavailable
from ray.serve import Application
from support.k8s_schema import (
    CRD_DIR,
    operator_errors,
    schema_errors,
    serve_config_errors,
)

from config.settings import Backend, load_settings
from deployments.app import APPLICATIONS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
SERVE_YAML = ROOT / "config" / "serve.yaml"


def load_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((str(path.relative_to(ROOT)), doc))
    return docs


DOCUMENTS = load_documents()
RAY_DOCUMENTS = [
    pytest.param(doc, id=f"{where}:{doc['kind']}/{doc['metadata']['name']}")
    for where, doc in DOCUMENTS
    if doc.get("apiVersion", "").startswith("ray.io/")
]


def only(kind: str) -> dict[str, Any]:
    found = [doc for _, doc in DOCUMENTS if doc.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind} under k8s/, found {len(found)}"
    return found[0]


def ray_groups(rayservice: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = rayservice["spec"]["rayClusterConfig"]
    return [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]


def ray_container(group: dict[str, Any]) -> dict[str, Any]:
    # KubeRay treats the first container of a pod as the Ray container.
    return group["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def bytes_of(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9}
    match = re.fullmatch(r"(\d+)([KMGT]i?)?", quantity)
    assert match, f"unsupported quantity {quantity!r}"
    return int(match[1]) * units.get(match[2] or "", 1)


@pytest.fixture(scope="module")
def crds() -> None:
    if not CRD_DIR.is_dir():
        unavailable(f"KubeRay CRDs not found at {CRD_DIR} (set NOVA_TEST_KUBERAY_CRDS)")


@pytest.fixture(scope="module")
def serve_config() -> dict[str, Any]:
    return yaml.safe_load(SERVE_YAML.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def rayservice() -> dict[str, Any]:
    return only("RayService")


# --- KubeRay manifests --------------------------------------------------------------------


def test_k8s_holds_a_rayservice() -> None:
    assert RAY_DOCUMENTS, "no ray.io documents under k8s/"
    only("RayService")


@pytest.mark.parametrize("doc", RAY_DOCUMENTS)
def test_ray_document_matches_its_crd_strictly(crds: None, doc: dict[str, Any]) -> None:
    assert doc["apiVersion"] == "ray.io/v1", "v1alpha1 is deprecated and goes away in KubeRay 1.9"
    assert schema_errors(doc, strict=True) == []


@pytest.mark.parametrize("doc", RAY_DOCUMENTS)
def test_ray_document_passes_the_operator_rules(doc: dict[str, Any]) -> None:
    assert operator_errors(doc) == []


def test_rayservice_embeds_exactly_config_serve_yaml(
    rayservice: dict[str, Any], serve_config: dict[str, Any]
) -> None:
    assert yaml.safe_load(rayservice["spec"]["serveConfigV2"]) == serve_config


def test_ray_version_matches_the_installed_ray_and_the_image(rayservice: dict[str, Any]) -> None:
    version = rayservice["spec"]["rayClusterConfig"]["rayVersion"]
    assert version == ray.__version__ == "2.60.0"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"^FROM rayproject/ray:{re.escape(version)}-py311\b", dockerfile, re.M)


def test_head_runs_no_workloads_and_has_room(rayservice: dict[str, Any]) -> None:
    head = rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    limits = ray_container(head)["resources"]["limits"]
    assert bytes_of(limits["memory"]) >= 4 * 2**30


def test_workers_autoscale(rayservice: dict[str, Any]) -> None:
    cluster = rayservice["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    for group in cluster["workerGroupSpecs"]:
        assert 1 <= group["minReplicas"] < group["maxReplicas"]


def test_ray_pods_get_settings_from_the_secret_and_the_haproxy_ingress(
    rayservice: dict[str, Any],
) -> None:
    secret = yaml.safe_load((K8S / "secrets.example.yaml").read_text())
    for group in ray_groups(rayservice):
        # Service links would add NOVA_PIXEL_*_SERVICE_* variables, which Settings rejects.
        assert group["template"]["spec"]["enableServiceLinks"] is False
        container = ray_container(group)
        assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
        assert env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
        assert not [name for name in env if name.startswith("NOVA_")], "NOVA_* belong in the Secret"


def test_ray_pods_expose_serve_metrics_and_dashboard(rayservice: dict[str, Any]) -> None:
    head, *workers = ray_groups(rayservice)

    def ports(group: dict[str, Any]) -> dict[str, int]:
        return {p["name"]: p["containerPort"] for p in ray_container(group)["ports"]}

    assert ports(head).items() >= {"serve": 8000, "metrics": 8080, "dashboard": 8265}.items()
    for worker in workers:
        assert ports(worker).items() >= {"serve": 8000, "metrics": 8080}.items()


def test_secret_template_holds_placeholders_that_settings_accept() -> None:
    secret = yaml.safe_load((K8S / "secrets.example.yaml").read_text())
    values = secret["stringData"]
    assert all(name.startswith("NOVA_") for name in values)
    assert all("CHANGE_ME" in value for value in values.values()), "placeholders only"
    settings = load_settings(values)
    assert settings.backend is Backend.PRODUCTION


def test_kustomization_applies_the_rayservice_but_no_secret_or_optional_crd() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    resources = kustomization["resources"]
    assert all((K8S / r).is_file() for r in resources)
    kinds = {doc["kind"] for r in resources for doc in yaml.safe_load_all((K8S / r).read_text())}
    assert kinds == {"RayService", "CronJob"}
    images = {ray_container(g)["image"].split(":")[0] for g in ray_groups(only("RayService"))}
    assert {image["name"] for image in kustomization["images"]} == images


def test_retraining_is_submitted_to_the_rayservice_cluster_on_a_schedule(
    rayservice: dict[str, Any],
) -> None:
    cron = only("CronJob")
    assert cron["apiVersion"] == "batch/v1" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert len(cron["spec"]["schedule"].split()) == 5
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:3] == ["ray", "job", "submit"]
    address = command[command.index("--address") + 1]
    # KubeRay names a RayService's stable head Service <name>-head-svc; 8265 is the Jobs API.
    assert address == f"http://{rayservice['metadata']['name']}-head-svc:8265"
    assert command[command.index("--") + 1 :] == ["python", "-m", "training", "retrain"]
    assert "--working-dir" not in command  # the image holds the code
    images = {ray_container(g)["image"] for g in ray_groups(rayservice)}
    assert container["image"] in images
    assert {"name": "RAY_AUTH_MODE", "value": "disabled"} in container["env"]


def test_podmonitor_selects_the_ray_pods_by_their_ports(rayservice: dict[str, Any]) -> None:
    monitor = only("PodMonitor")
    wanted = dict(monitor["spec"]["selector"]["matchLabels"])
    assert wanted.pop("ray.io/is-ray-node") == "yes"  # set by KubeRay on every Ray pod
    ports = set()
    for group in ray_groups(rayservice):
        assert group["template"]["metadata"]["labels"].items() >= wanted.items()
        ports |= {p["name"] for p in ray_container(group)["ports"]}
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports


def test_image_build_context_holds_every_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    allowed = (ROOT / ".dockerignore").read_text().splitlines()
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert f"!{pattern.rstrip('*')}/" in allowed


# --- Serve config -------------------------------------------------------------------------


def test_serve_config_is_valid_without_unknown_keys(serve_config: dict[str, Any]) -> None:
    assert serve_config_errors(serve_config) == []


def test_serve_config_downloads_nothing_and_holds_no_settings(
    serve_config: dict[str, Any],
) -> None:
    assert all("runtime_env" not in app for app in serve_config["applications"])
    for app in serve_config["applications"]:
        for deployment in app["deployments"]:
            assert "runtime_env" not in deployment.get("ray_actor_options", {})
    assert "NOVA_" not in yaml.safe_dump(serve_config)  # comments aside


def test_serve_applications_match_the_code(serve_config: dict[str, Any]) -> None:
    configured = {app["name"]: app["route_prefix"] for app in serve_config["applications"]}
    assert configured == {spec.name: spec.route_prefix for spec in APPLICATIONS}


@pytest.mark.parametrize("spec", APPLICATIONS, ids=lambda spec: spec.name)
def test_import_path_resolves_to_the_application(serve_config: dict[str, Any], spec: Any) -> None:
    app = next(a for a in serve_config["applications"] if a["name"] == spec.name)
    module, _, attribute = app["import_path"].partition(":")
    imported = getattr(importlib.import_module(module), attribute)
    assert isinstance(imported, Application)
    assert imported is spec.app


@pytest.mark.parametrize("spec", APPLICATIONS, ids=lambda spec: spec.name)
def test_configured_deployments_exist_with_the_codes_concurrency(
    serve_config: dict[str, Any], spec: Any
) -> None:
    # build_app is what Serve runs on a config's import path; it names the deployments
    # exactly as the config must (private, but ray is pinned to 2.60.0).
    from ray.serve._private.build_app import build_app

    built = {d.name: d for d in build_app(spec.app, name=spec.name).deployments}
    app = next(a for a in serve_config["applications"] if a["name"] == spec.name)
    for options in app["deployments"]:
        assert options["name"] in built, f"{spec.name} has no deployment {options['name']}"
        code = built[options["name"]]
        assert options["ray_actor_options"]["num_cpus"] > 0
        if "max_ongoing_requests" in options:
            assert options["max_ongoing_requests"] == code.max_ongoing_requests
        if "autoscaling_config" in options:
            scaling = options["autoscaling_config"]
            in_code = code._deployment_config.autoscaling_config
            assert in_code is not None, f"{options['name']} does not autoscale in code"
            assert scaling["target_ongoing_requests"] == in_code.target_ongoing_requests
            # Serve's default max_replicas is 1: an implicit one would never scale.
            assert 1 <= scaling["min_replicas"] < scaling["max_replicas"]
            assert scaling["target_ongoing_requests"] < options["max_ongoing_requests"]
        else:
            assert options["num_replicas"] >= 1


# --- the validators catch what they should ------------------------------------------------


def test_strict_mode_catches_a_misspelt_field(crds: None, rayservice: dict[str, Any]) -> None:
    doc = copy.deepcopy(rayservice)
    cluster = doc["spec"]["rayClusterConfig"]
    cluster["enableInTreeAutoScaling"] = cluster.pop("enableInTreeAutoscaling")
    assert schema_errors(doc, strict=False) == []  # why strict mode exists
    [error] = schema_errors(doc, strict=True)
    assert "spec.rayClusterConfig" in error and "enableInTreeAutoScaling" in error


def test_schema_catches_a_wrong_type_and_a_missing_field(
    crds: None, rayservice: dict[str, Any]
) -> None:
    doc = copy.deepcopy(rayservice)
    doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = "4"
    del ray_container(doc["spec"]["rayClusterConfig"]["headGroupSpec"])["name"]
    errors = schema_errors(doc)
    assert any("maxReplicas: '4' is not of type 'integer'" in e for e in errors)
    assert any("'name' is a required property" in e for e in errors)


def test_normalisation_prunes_nulls_and_applies_defaults(
    crds: None, rayservice: dict[str, Any]
) -> None:
    doc = copy.deepcopy(rayservice)
    worker = doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    del worker["minReplicas"], worker["maxReplicas"]  # required, but defaulted
    worker["template"]["metadata"] = None  # what an empty `metadata:` parses to
    assert schema_errors(doc) == []


def test_operator_rules_catch_bad_names_and_groups(rayservice: dict[str, Any]) -> None:
    doc = copy.deepcopy(rayservice)
    doc["metadata"]["name"] = "Nova-" + "x" * 50
    worker = doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    worker["minReplicas"], worker["maxReplicas"] = 3, 2
    doc["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"] = []
    errors = "\n".join(operator_errors(doc))
    assert "longer than 47" in errors
    assert "DNS-1035" in errors
    assert "minReplicas 3 > maxReplicas 2" in errors
    assert "headGroupSpec.template.spec.containers" in errors


def test_serve_checks_catch_unknown_keys_at_any_depth(serve_config: dict[str, Any]) -> None:
    config = copy.deepcopy(serve_config)
    ingest = config["applications"][0]["deployments"][0]
    ingest["max_ongoing_requestz"] = ingest.pop("max_ongoing_requests")
    scaling = ingest["autoscaling_config"]
    scaling["target_num_ongoing_requests_per_replica"] = scaling.pop("target_ongoing_requests")
    config["http_options"]["request_timeout"] = config["http_options"].pop("request_timeout_s")
    assert serve_config_errors(config) == [
        "http_options.request_timeout: unknown key for HTTPOptionsSchema",
        "applications[0].deployments[0].autoscaling_config."
        "target_num_ongoing_requests_per_replica: unknown key for AutoscalingConfig",
        "applications[0].deployments[0].max_ongoing_requestz: unknown key for DeploymentSchema",
    ]


def test_serve_checks_catch_wrong_types_and_conflicts(serve_config: dict[str, Any]) -> None:
    config = copy.deepcopy(serve_config)
    config["applications"][1]["deployments"][0]["max_ongoing_requests"] = "lots"
    assert any("max_ongoing_requests" in e for e in serve_config_errors(config))
    config = copy.deepcopy(serve_config)
    config["applications"][0]["deployments"][0]["num_replicas"] = 2  # with autoscaling_config
    assert serve_config_errors(config) != []
