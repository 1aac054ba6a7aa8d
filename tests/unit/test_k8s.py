"""deploy/k8s renders with kustomize, core resources validate against Kubernetes' schemas,
and the pieces agree with each other and with the CLI (offline: no cluster here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from agents.cli import cli

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBECTL = shutil.which("kubectl")
KUBERNETES_VERSION = "1.32"


@pytest.fixture(scope="module")
def resources() -> list[dict]:
    if KUBECTL is None:
        pytest.skip("kubectl not installed: it renders the kustomization (kubectl kustomize)")
    out = subprocess.run(
        [KUBECTL, "kustomize", str(K8S)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(resources: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [r for r in resources if r["kind"] == kind and name in (None, r["metadata"]["name"])]


def test_core_resources_validate_against_the_kubernetes_schema(resources):
    core = [r for r in resources if r["apiVersion"] in ("v1", "apps/v1", "policy/v1")]
    assert {r["kind"] for r in core} >= {"Deployment", "Service", "PodDisruptionBudget"}
    for resource in core:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_a_broken_resource_is_caught(resources):
    (deployment,) = find(resources, "Deployment", "worker")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_worker_is_probed_run_unprivileged_and_started_with_a_valid_command(resources):
    (deployment,) = find(resources, "Deployment", "worker")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"].startswith("/metrics")
    assert pod["securityContext"]["runAsNonRoot"] is True
    name, *args = container["args"]
    cli.commands[name].make_context(name, list(args))  # an option renamed breaks this
    env = {e["name"]: e["value"] for e in container["env"]}
    (kafka,) = find(resources, "Kafka")
    assert env["KAFKA_BOOTSTRAP"] == f"{kafka['metadata']['name']}-kafka-bootstrap:9092"


def test_topics_partitions_match_the_worker_and_monitors_select_it(resources):
    (deployment,) = find(resources, "Deployment", "worker")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    partitions = int(args[args.index("--partitions") + 1])
    topics = {t["metadata"]["name"]: t["spec"]["partitions"] for t in find(resources, "KafkaTopic")}
    assert topics == {"posts": partitions, "posts-rejected": partitions}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [
        find(resources, "PodMonitor")[0]["spec"]["selector"]["matchLabels"],
        find(resources, "PodDisruptionBudget")[0]["spec"]["selector"]["matchLabels"],
        find(resources, "Service", "worker")[0]["spec"]["selector"],
    ]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    (monitor,) = find(resources, "PodMonitor")
    assert pod_labels[monitor["spec"]["jobLabel"]] == "hashtag-spread"  # dashboards' job
