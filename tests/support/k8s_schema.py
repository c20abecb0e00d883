"""Offline validation of KubeRay manifests and Serve configs, without a Kubernetes cluster.

`kubernetes-validate` knows no ray.io kinds (it warns and passes), so ray.io documents are
checked with jsonschema against the KubeRay v1.7.0 CRDs in /work/shared/kuberay-crds,
after normalising them the way the API server does (drop nulls, apply defaults). Strict
mode rejects unknown fields, as `kubectl apply` does by default. The operator's own rules,
which the CRD schema cannot express, are checked separately, and so is the Serve config
embedded as a string, which Serve itself would accept with typos silently ignored.
"""

from __future__ import annotations

import copy
import os
import re
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import yaml

CRD_DIR = Path(os.environ.get("NOVA_TEST_KUBERAY_CRDS", "/work/shared/kuberay-crds"))

Schema = dict[str, Any]

# ray-operator/controllers/ray/utils: names become Service names with suffixes of up to 10
# characters, and a RayService/RayJob name gets 6 more for its RayCluster.
MAX_NAME_LENGTH = {"RayCluster": 53, "RayService": 47, "RayJob": 47}
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
UPGRADE_TYPES = {"NewCluster", "NewClusterWithIncrementalUpgrade", "None"}


@cache
def crd_schemas(crd_dir: Path = CRD_DIR) -> dict[tuple[str, str], Schema]:
    """(apiVersion, kind) -> openAPIV3Schema for every version of every CRD in crd_dir."""
    schemas: dict[tuple[str, str], Schema] = {}
    for path in sorted(crd_dir.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def normalize(obj: Any, schema: Schema) -> None:
    """In place, in the API server's order: prune nulls of non-nullable fields, then default.
    Without this, KubeRay's own samples fail (`metadata:` left empty, defaulted
    `maxReplicas` reported missing)."""
    if isinstance(obj, dict) and schema.get("type") == "object":
        props = schema.get("properties", {})
        for key in [k for k, v in obj.items() if v is None and k in props]:
            if not props[key].get("nullable"):
                del obj[key]
        for key, sub in props.items():
            if key not in obj and "default" in sub:
                obj[key] = copy.deepcopy(sub["default"])
            if key in obj:
                normalize(obj[key], sub)
        if isinstance(schema.get("additionalProperties"), dict):
            for value in obj.values():
                normalize(value, schema["additionalProperties"])
    elif isinstance(obj, list) and "items" in schema:
        for item in obj:
            normalize(item, schema["items"])


def close(node: Any) -> None:
    """In place: forbid unknown fields wherever the schema lists the known ones, and spell
    `nullable` the way jsonschema understands."""
    if isinstance(node, dict):
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        if node.get("nullable") and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for key, value in node.items():
            for child in value.values() if key == "properties" else [value]:
                close(child)
    elif isinstance(node, list):
        for item in node:
            close(item)


def schema_errors(doc: dict[str, Any], strict: bool = True) -> list[str]:
    """'path: message' for each way doc breaks its CRD's schema."""
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    if key not in crd_schemas():
        return [f"no CRD for apiVersion={key[0]!r} kind={key[1]!r}"]
    schema = copy.deepcopy(crd_schemas()[key])
    doc = copy.deepcopy(doc)
    normalize(doc, schema)
    if strict:
        close(schema)
    validator = jsonschema.Draft202012Validator(schema)
    return sorted(
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(doc)
    )


def cluster_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    spec = doc.get("spec") or {}
    kind = doc.get("kind")
    if kind == "RayService":
        return spec.get("rayClusterConfig")
    if kind == "RayJob":
        return spec.get("rayClusterSpec")
    return spec if kind == "RayCluster" else None


def operator_errors(doc: dict[str, Any]) -> list[str]:
    """The KubeRay operator's own checks (validation.go) that the CRD schema lacks."""
    errors = []
    kind, name = doc.get("kind", ""), (doc.get("metadata") or {}).get("name", "")
    if len(name) > MAX_NAME_LENGTH.get(kind, 63):
        errors.append(f"metadata.name: {name!r} is longer than {MAX_NAME_LENGTH[kind]}")
    if not DNS_1035_LABEL.match(name):
        errors.append(f"metadata.name: {name!r} is not a DNS-1035 label")
    if kind == "RayService":
        upgrade = ((doc.get("spec") or {}).get("upgradeStrategy") or {}).get("type")
        if upgrade is not None and upgrade not in UPGRADE_TYPES:
            errors.append(f"spec.upgradeStrategy.type: {upgrade!r} not in {sorted(UPGRADE_TYPES)}")
    cluster = cluster_spec(doc)
    if cluster is not None:
        errors += _cluster_errors(cluster)
    return errors


def _cluster_errors(cluster: dict[str, Any]) -> list[str]:
    errors = []
    autoscaler_v2 = cluster.get("enableInTreeAutoscaling") and (
        (cluster.get("autoscalerOptions") or {}).get("version", "v2") == "v2"
    )
    groups = [("headGroupSpec", cluster.get("headGroupSpec") or {})]
    groups += [
        (f"workerGroupSpecs[{i}]", group)
        for i, group in enumerate(cluster.get("workerGroupSpecs") or [])
    ]
    names = [str(group.get("groupName")) for _, group in groups[1:]]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"workerGroupSpecs: groupName {dup!r} is used more than once")
    for where, group in groups:
        pod = (group.get("template") or {}).get("spec") or {}
        if not pod.get("containers"):
            errors.append(f"{where}.template.spec.containers: needs at least one container")
        params = group.get("rayStartParams") or {}
        if "labels" in params:
            errors.append(f"{where}.rayStartParams: 'labels' is not supported, use .labels")
        if group.get("resources") and {"num-cpus", "num-gpus", "memory", "resources"} & set(params):
            errors.append(f"{where}: Ray resources set in both rayStartParams and resources")
        if autoscaler_v2 and pod.get("restartPolicy") not in (None, "", "Never"):
            errors.append(f"{where}.template.spec.restartPolicy: must be Never or unset")
        if where != "headGroupSpec":
            low, high = group.get("minReplicas", 0), group.get("maxReplicas", 2**31 - 1)
            if low > high:
                errors.append(f"{where}: minReplicas {low} > maxReplicas {high}")
            elif "replicas" in group and not low <= group["replicas"] <= high:
                errors.append(f"{where}: replicas {group['replicas']} not in [{low}, {high}]")
    return errors


# --- Serve config ----------------------------------------------------------------------------


def _models(annotation: Any) -> Iterator[type[pydantic.BaseModel]]:
    """The pydantic models inside an annotation such as Optional[List[Model]]."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models(arg)


def unknown_keys(data: Any, model: type[pydantic.BaseModel], path: str = "") -> list[str]:
    """Keys a Serve schema model would silently ignore (its pydantic `extra` is unset), at
    any depth: a typo would otherwise fall back to a default without a word."""
    if not isinstance(data, dict):
        return []
    fields = model.model_fields
    known = set(fields) | {f.alias for f in fields.values() if f.alias}
    errors = []
    for key, value in data.items():
        if key not in known:
            errors.append(f"{path}{key}: unknown key for {model.__name__}")
            continue
        sub = next(_models(fields[key].annotation), None)
        if sub is None:
            continue
        if isinstance(value, list):
            for i, item in enumerate(value):
                errors += unknown_keys(item, sub, f"{path}{key}[{i}].")
        else:
            errors += unknown_keys(value, sub, f"{path}{key}.")
    return errors


def serve_config_errors(config: Any) -> list[str]:
    """Everything wrong with a multi-application Serve config: what ServeDeploySchema
    rejects, plus the unknown keys it would ignore."""
    from ray.serve.schema import ServeDeploySchema

    try:
        ServeDeploySchema.model_validate(config)
    except pydantic.ValidationError as exc:
        return [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()]
    return unknown_keys(config, ServeDeploySchema)
