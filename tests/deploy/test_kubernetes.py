"""deploy/kubernetes: every manifest valid against the Kubernetes 1.30 schemas (offline, strict), and the
web tier's probes, autoscaling bounds, disruption budget, spread and settings as docs/operations.md says."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client import REGISTRY
from pydantic import ValidationError
from typer.main import get_command

import studyshelf.ops.metrics  # noqa: F401 - registers the web metrics
from studyshelf.cli import app
from studyshelf.settings import Settings
from tests.deploy.env_names import DEPLOY, unknown_settings

MANIFESTS = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.30"
NAMESPACE = "studyshelf"
NOT_SETTINGS = {"PGPASSWORD"}  # libpq's, for both PostgreSQL URLs

Manifest = dict[str, Any]


def load_all() -> list[tuple[Path, Manifest]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        found += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


ALL = load_all()


def the(kind: str, name: str) -> Manifest:
    matches = [doc for _, doc in ALL if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"one {kind} {name}"
    return matches[0]


def pod_spec(deployment: Manifest) -> Manifest:
    spec: Manifest = deployment["spec"]["template"]["spec"]
    return spec


def container(deployment: Manifest) -> Manifest:
    containers: list[Manifest] = pod_spec(deployment)["containers"]
    assert len(containers) == 1
    return containers[0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def serve_labels() -> dict[str, str]:
    labels: dict[str, str] = the("Deployment", "studyshelf-serve")["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.mark.parametrize(("path", "manifest"), ALL, ids=[f"{p.name}:{d['kind']}" for p, d in ALL])
def test_manifest_is_valid_for_kubernetes(path: Path, manifest: Manifest) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    if manifest["kind"] != "Namespace":
        assert manifest["metadata"]["namespace"] == NAMESPACE, path.name


def test_the_validator_refuses_a_misspelt_field() -> None:
    broken = copy.deepcopy(the("Deployment", "studyshelf-serve"))
    container(broken)["readynessProbe"] = container(broken).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_web_tier_is_probed_sized_and_locked_down() -> None:
    serve = the("Deployment", "studyshelf-serve")
    assert serve["spec"]["replicas"] >= 2
    web = container(serve)
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= web["resources"]["requests"].keys()
    assert "memory" in web["resources"]["limits"]
    assert pod_spec(serve)["securityContext"]["runAsNonRoot"] is True
    assert web["securityContext"]["readOnlyRootFilesystem"] is True
    assert web["securityContext"]["allowPrivilegeEscalation"] is False
    empty_dirs = {volume["name"] for volume in pod_spec(serve)["volumes"] if "emptyDir" in volume}
    assert {"name": "tmp", "mountPath": "/tmp"} in web["volumeMounts"]
    assert "tmp" in empty_dirs
    ports = {port["name"] for port in web["ports"]}
    assert web["readinessProbe"]["httpGet"]["port"] in ports


def test_pods_spread_over_zones_and_machines() -> None:
    constraints = pod_spec(the("Deployment", "studyshelf-serve"))["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in constraints:
        assert selects(constraint["labelSelector"]["matchLabels"], serve_labels())


def test_autoscaling_between_2_and_8_on_cpu() -> None:
    hpa = the("HorizontalPodAutoscaler", "studyshelf-serve")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "studyshelf-serve"}
    cpu = [m["resource"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert [(m["name"], m["target"]["type"]) for m in cpu] == [("cpu", "Utilization")]


def test_the_optional_autoscaler_adds_requests_in_flight_to_cpu() -> None:
    (optional,) = yaml.safe_load_all((MANIFESTS / "optional" / "hpa-requests-in-flight.yaml").read_text())
    kubernetes_validate.validate(optional, KUBERNETES_VERSION, strict=True)
    default = the("HorizontalPodAutoscaler", "studyshelf-serve")
    assert optional["metadata"] == default["metadata"]  # it replaces the default one when applied after it
    assert optional["spec"]["scaleTargetRef"] == default["spec"]["scaleTargetRef"]
    assert [m["type"] for m in optional["spec"]["metrics"]] == ["Resource", "Pods"]
    in_flight = optional["spec"]["metrics"][1]["pods"]
    assert in_flight["metric"]["name"] == "studyshelf_http_requests_in_flight"
    assert REGISTRY.get_sample_value("studyshelf_http_requests_in_flight") is not None  # a gauge StudyShelf exports
    assert in_flight["target"]["type"] == "AverageValue"


def test_a_disruption_never_takes_the_last_web_pod() -> None:
    pdb = the("PodDisruptionBudget", "studyshelf-serve")
    assert pdb["spec"]["minAvailable"] == 1
    assert selects(pdb["spec"]["selector"]["matchLabels"], serve_labels())


def test_the_service_and_the_ingress_reach_the_web_pods() -> None:
    service = the("Service", "studyshelf")
    assert selects(service["spec"]["selector"], serve_labels())
    assert {port["targetPort"] for port in service["spec"]["ports"]} == {"http"}
    backend = the("Ingress", "studyshelf")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "studyshelf", "port": {"name": "http"}}


def test_the_worker_is_its_own_deployment_of_one() -> None:
    worker = the("Deployment", "studyshelf-worker")
    assert worker["spec"]["replicas"] == 1
    assert not selects(worker["spec"]["selector"]["matchLabels"], serve_labels())
    assert container(worker)["args"] == ["worker"]
    metrics_port = Settings.model_fields["worker_metrics_port"].default
    assert container(worker)["ports"] == [{"name": "metrics", "containerPort": metrics_port}]
    assert {e["name"] for e in container(worker)["env"]} == {"STUDYSHELF_WORKER_METRICS_HOST"}


def test_every_container_runs_a_command_the_cli_has() -> None:
    commands = get_command(app).commands  # type: ignore[attr-defined]
    for _, doc in ALL:
        if doc["kind"] in {"Deployment", "Job"}:
            assert container(doc)["args"][0] in commands


def test_settings_come_from_the_configmap_and_the_secret() -> None:
    config, secret = the("ConfigMap", "studyshelf-config"), the("Secret", "studyshelf-secrets")
    for _, doc in ALL:
        if doc["kind"] in {"Deployment", "Job"}:
            sources = container(doc)["envFrom"]
            assert {"configMapRef": {"name": "studyshelf-config"}} in sources
            assert {"secretRef": {"name": "studyshelf-secrets"}} in sources
    settings = config["data"]
    assert settings["STUDYSHELF_DATABASE_URL"].startswith("postgresql://")
    assert settings["STUDYSHELF_WAREHOUSE_URL"].startswith("postgresql://")
    assert settings["STUDYSHELF_STORAGE_URL"].startswith("s3://")
    assert settings["STUDYSHELF_REDIS_URL"].startswith("redis://")
    assert "STUDYSHELF_SECRET_KEY" in secret["stringData"]
    assert not settings.keys() & secret["stringData"].keys()
    assert unknown_settings((settings.keys() | secret["stringData"].keys()) - NOT_SETTINGS) == set()


def test_the_example_secret_key_is_refused_in_production(tmp_path: Path) -> None:
    example = the("Secret", "studyshelf-secrets")["stringData"]["STUDYSHELF_SECRET_KEY"]
    assert the("ConfigMap", "studyshelf-config")["data"]["STUDYSHELF_ENVIRONMENT"] == "production"
    with pytest.raises(ValidationError, match="STUDYSHELF_SECRET_KEY"):
        Settings(environment="production", secret_key=example, data_dir=tmp_path)
