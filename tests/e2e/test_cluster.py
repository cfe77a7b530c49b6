"""The cluster under test is a real Kubernetes: scheduling, controllers, GC, CEL admission, RBAC.

These hold on the local kwok-backed control plane and on any real cluster (kind, cloud).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.kube import Kubectl, KubectlError, eventually
from tests.support.nodes import on_fake_nodes


def deployment(
    name: str, replicas: int, image: str = "registry.k8s.io/pause:3.10"
) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": on_fake_nodes({"containers": [{"name": "main", "image": image}]}),
            },
        },
    }


def test_deployment_reaches_three_ready_replicas(k: Kubectl) -> None:
    k.apply(deployment("web", 3))

    def ready() -> bool:
        dep = k.get("deployment", "web")
        return bool(dep and dep.get("status", {}).get("readyReplicas") == 3)

    eventually(ready, what="3 ready replicas")
    pods = k.list("pods", "app=web")
    assert len(pods) == 3
    assert all(p["status"]["phase"] == "Running" for p in pods)
    assert len({p["spec"]["nodeName"] for p in pods}) >= 1
    assert all(p["status"].get("podIP") for p in pods)


def test_deleting_an_owner_cascades_to_its_children(k: Kubectl) -> None:
    k.apply(deployment("cascade", 2))
    eventually(lambda: len(k.list("pods", "app=cascade")) == 2, what="pods")
    owner = k.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}})
    owner_ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    k.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "child", "ownerReferences": [owner_ref]},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "cascade"}},
        }
    )

    k.delete("deployment", "cascade")
    k.delete("configmap", "owner")

    eventually(lambda: not k.list("replicasets", "app=cascade"), what="replicasets gone")
    eventually(lambda: not k.list("pods", "app=cascade"), what="pods gone")
    eventually(lambda: k.get("service", "child") is None, what="owned service gone")


def test_a_crd_cel_rule_rejects_a_bad_object_with_its_message(kube: Kubectl, k: Kubectl) -> None:
    group = f"{k.namespace}.cluster-test.modeldeploy.dev"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"ranges.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "ranges", "singular": "range", "kind": "Range"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "min": {"type": "integer"},
                                        "max": {"type": "integer"},
                                    },
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.min <= self.max",
                                            "message": "spec.min must be <= spec.max",
                                        }
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    kube.apply(crd)
    try:
        kube.run("wait", "--for=condition=Established", f"crd/ranges.{group}", "--timeout=30s")

        def make(name: str, lo: int, hi: int) -> dict[str, Any]:
            return {
                "apiVersion": f"{group}/v1",
                "kind": "Range",
                "metadata": {"name": name},
                "spec": {"min": lo, "max": hi},
            }

        k.create(make("good", 1, 2))
        with pytest.raises(KubectlError, match=r"spec\.min must be <= spec\.max"):
            k.create(make("bad", 3, 2))
    finally:
        kube.delete("crd", f"ranges.{group}")


def test_a_service_gets_a_cluster_ip(k: Kubectl) -> None:
    svc = k.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "svc"},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "none"}},
        }
    )
    ip = svc["spec"].get("clusterIP")
    assert ip and ip != "None"
    assert all(part.isdigit() for part in ip.split("."))


def test_job_pods_complete_and_terminating_pods_go_away(k: Kubectl) -> None:
    k.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {
                "template": {
                    "spec": on_fake_nodes(
                        {
                            "restartPolicy": "Never",
                            "containers": [{"name": "main", "image": "busybox"}],
                        }
                    )
                }
            },
        }
    )

    def complete() -> bool:
        job = k.get("job", "once")
        return bool(job and job.get("status", {}).get("succeeded") == 1)

    eventually(complete, what="job succeeded")

    k.apply(deployment("shrink", 2))
    eventually(lambda: len(k.list("pods", "app=shrink")) == 2, what="2 pods")
    k.run("scale", "deployment/shrink", "--replicas=0")
    eventually(lambda: not k.list("pods", "app=shrink"), what="terminated pods removed")


def test_rbac_is_enforced(kube: Kubectl, namespace: str) -> None:
    """An unprivileged ServiceAccount is denied: the apiserver really authorizes requests."""
    as_sa = f"--as=system:serviceaccount:{namespace}:default"
    out = kube.run("auth", "can-i", "create", "deployments", "-n", namespace, as_sa, check=False)
    assert out.strip() == "no"
    with pytest.raises(KubectlError, match="forbidden"):
        kube.run("get", "pods", "-n", namespace, as_sa)
