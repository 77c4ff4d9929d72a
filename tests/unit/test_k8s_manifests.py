"""docker/k8s/ manifests against the KubeRay v1 CRD schemas (no cluster needed).

No PyPI or npm package ships KubeRay's CRD schemas, so `KUBERAY_V1` below is
a hand-written subset of them: the fields these manifests use, with the
types, enums and required lists of `ray.io_rayclusters.yaml` and
`ray.io_rayjobs.yaml` in ray-project/kuberay (ray-operator/config/crd/bases,
read at commit feeaf72). Objects marked closed accept no other field, so a
typo or an invented field fails here. Pod templates are Kubernetes' own
`PodTemplateSpec` and are left open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "docker" / "k8s"
STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OPEN = {"type": "object"}  # a PodTemplateSpec: Kubernetes' schema, not KubeRay's

HEAD_GROUP = {"type": "object", "closed": True, "required": ["template"], "properties": {
    "rayStartParams": STR_MAP, "template": OPEN, "serviceType": {"type": "string"},
    "enableIngress": {"type": "boolean"}, "labels": STR_MAP, "resources": STR_MAP}}
WORKER_GROUP = {"type": "object", "closed": True, "required": ["groupName", "maxReplicas", "minReplicas", "template"], "properties": {
    "groupName": {"type": "string"}, "replicas": {"type": "integer"}, "minReplicas": {"type": "integer"},
    "maxReplicas": {"type": "integer"}, "idleTimeoutSeconds": {"type": "integer"}, "rayStartParams": STR_MAP,
    "template": OPEN, "numOfHosts": {"type": "integer"}, "suspend": {"type": "boolean"}, "labels": STR_MAP,
    "resources": STR_MAP}}
CLUSTER_SPEC = {"type": "object", "closed": True, "required": ["headGroupSpec"], "properties": {
    "rayVersion": {"type": "string"}, "enableInTreeAutoscaling": {"type": "boolean"},
    "authOptions": {"type": "object", "closed": True, "properties": {
        "mode": {"type": "string", "enum": ["disabled", "token"]}, "secretName": {"type": "string"},
        "enableK8sTokenAuth": {"type": "boolean"}}},
    "headGroupSpec": HEAD_GROUP, "workerGroupSpecs": {"type": "array", "items": WORKER_GROUP},
    "suspend": {"type": "boolean"}}}
JOB_SPEC = {"type": "object", "closed": True, "properties": {
    "entrypoint": {"type": "string"}, "clusterSelector": STR_MAP, "rayClusterSpec": CLUSTER_SPEC,
    "shutdownAfterJobFinishes": {"type": "boolean"}, "ttlSecondsAfterFinished": {"type": "integer"},
    "submissionMode": {"type": "string"}, "runtimeEnvYAML": {"type": "string"}, "suspend": {"type": "boolean"}}}
KUBERAY_V1 = {"RayCluster": CLUSTER_SPEC, "RayJob": JOB_SPEC}
_TYPES: dict[str, type | tuple[type, ...]] = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int}


def violations(value: Any, schema: dict[str, Any], path: str = "spec") -> list[str]:
    """What in `value` the schema subset refuses, one line per problem."""
    want = _TYPES[schema["type"]]
    if not isinstance(value, want) or (schema["type"] == "integer" and isinstance(value, bool)):
        return [f"{path}: expected {schema['type']}, got {type(value).__name__}"]
    out = []
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not one of {schema['enum']}")
    if isinstance(value, list):
        for i, item in enumerate(value):
            out += violations(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [f"{path}: missing required {k}" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in props:
                out += violations(v, props[k], f"{path}.{k}")
            elif "additionalProperties" in schema:
                out += violations(v, schema["additionalProperties"], f"{path}.{k}")
            elif schema.get("closed"):
                out.append(f"{path}: unknown field {k}")
    return out


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def by_kind(kind: str) -> dict[str, Any]:
    found = [d for f in sorted(K8S.glob("*.yaml")) for d in docs(f.name) if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in docker/k8s, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("kind", list(KUBERAY_V1))
def test_manifest_matches_the_kuberay_schema(kind: str) -> None:
    obj = by_kind(kind)
    assert obj["apiVersion"] == "ray.io/v1"
    assert violations(obj["spec"], KUBERAY_V1[kind]) == []


def test_the_validator_refuses_what_the_crd_refuses() -> None:
    assert violations({"headGroupSpec": {"template": {}}, "enableInTreeAutoscaler": True}, CLUSTER_SPEC) == \
        ["spec: unknown field enableInTreeAutoscaler"]
    assert violations({"headGroupSpec": {"template": {}, "rayStartParams": {"num-cpus": 0}}}, CLUSTER_SPEC) == \
        ["spec.headGroupSpec.rayStartParams.num-cpus: expected string, got int"]
    assert violations({"workerGroupSpecs": [{"groupName": "w"}]}, CLUSTER_SPEC)[0] == "spec: missing required headGroupSpec"


def test_cluster_shape_head_without_cpus_autoscaling_and_token_auth() -> None:
    spec = by_kind("RayCluster")["spec"]
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # the Coordinator only
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["authOptions"]["mode"] == "token"
    token = [d for d in docs("secret.example.yaml") if d["metadata"]["name"] == spec["authOptions"]["secretName"]]
    assert token and "auth_token" in token[0]["stringData"]  # the key KubeRay reads
    for g in spec["workerGroupSpecs"]:
        assert 0 < g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]


def test_config_from_the_configmap_secrets_only_from_the_secret() -> None:
    spec = by_kind("RayCluster")["spec"]
    cm = by_kind("ConfigMap")
    templates = [spec["headGroupSpec"]["template"], *(g["template"] for g in spec["workerGroupSpecs"])]
    for t in templates:
        (c,) = t["spec"]["containers"]
        assert {m["mountPath"] for m in c["volumeMounts"]} == {"/etc/streamlearn"}
        assert {v["configMap"]["name"] for v in t["spec"]["volumes"]} == {cm["metadata"]["name"]}
        for env in c["env"]:
            if env["name"].startswith("STREAMLEARN_"):  # app settings: the ConfigMap's, or from the Secret
                assert "value" not in env and env["valueFrom"]["secretKeyRef"]["name"] == "streamlearn-secrets", env
        # Ray's settings of the node: workers at nice 0, not Ray's default 15 (ray.worker_niceness is for a local Ray).
        assert {e["name"]: e.get("value") for e in c["env"] if e["name"].startswith("RAY_")} == {"RAY_worker_niceness": "0"}
    app = yaml.safe_load(cm["data"]["app.yaml"])
    assert "secret" not in str(app.get("checkpoint", {})) and "url" not in app.get("redis", {})
    job = by_kind("RayJob")["spec"]
    assert job["clusterSelector"]["ray.io/cluster"] == by_kind("RayCluster")["metadata"]["name"]
    assert "-c /etc/streamlearn/app.yaml" in job["entrypoint"]


def test_app_config_in_the_configmap_is_valid(tmp_path: Path) -> None:
    from streamlearn.config import load_config

    path = tmp_path / "app.yaml"
    path.write_text(by_kind("ConfigMap")["data"]["app.yaml"])
    assert load_config(path, environ={}).processing.standby_workers == 2


def _kuberay_head_command(params: dict[str, str]) -> list[str]:
    """The head's `ray start` as KubeRay builds it (convertParamMap: sorted ` --key=value `, run by bash), split as bash would."""
    import shlex

    flags = "".join(f" --{k}={v} " for k, v in sorted(params.items()) if v.lower() not in ("true", "false"))
    return shlex.split(f"ulimit -n 65536; ray start --head {flags}")


def test_head_sets_the_node_death_detection_of_the_recipe() -> None:
    import json

    from tests.chaos.ray_cluster import HEALTH_CHECK
    from tests.readme_blocks import blocks

    params = by_kind("RayCluster")["spec"]["headGroupSpec"]["rayStartParams"]
    (arg,) = [a for a in _kuberay_head_command(params) if a.startswith("--system-config=")]
    assert json.loads(arg.removeprefix("--system-config=")) == HEALTH_CHECK
    # The README's recipe sets the same detection values (a subset: the three that decide it).
    recipe = next(b.body for b in blocks() if "ray start --head" in b.body)
    readme_cfg = json.loads(recipe.split("--system-config='", 1)[1].split("'", 1)[0])
    assert readme_cfg and all(HEALTH_CHECK[k] == v for k, v in readme_cfg.items())


def test_head_probes_ray_node_health_without_the_token() -> None:
    from ray._private.ray_constants import DEFAULT_DASHBOARD_AGENT_LISTEN_PORT
    from ray.dashboard.http_server_agent import PUBLIC_EXACT_PATHS

    (c,) = by_kind("RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    for probe in (c["livenessProbe"], c["readinessProbe"]):
        assert probe["httpGet"]["path"] in PUBLIC_EXACT_PATHS  # token auth does not apply to it
        assert probe["httpGet"]["port"] == DEFAULT_DASHBOARD_AGENT_LISTEN_PORT
        assert probe["failureThreshold"] * probe["periodSeconds"] >= 30  # not a hair trigger on a busy head
    # The agent that serves it ships with ray[default]; the image installs it.
    assert '"ray[default]"' in (K8S.parent / "Dockerfile").read_text()
