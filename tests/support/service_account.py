"""Authenticating as the Helm chart's ServiceAccount, so the operator under test has exactly the
permissions the chart grants it (and the tests see a 403 when one is missing).

    sa = chart_service_account(kube, release="md", namespace="md-system")
    path = write_kubeconfig(kube, "md-system", sa, tmp_path / "operator.kubeconfig")
    OperatorProcess(path, log)  # the real operator, authenticated by the SA's token

The token comes from the TokenRequest API (`kubectl create token`), like the projected token a pod
gets; the cluster (server and CA) is the admin kubeconfig's current one.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.support.kube import Kubectl

TOKEN_DURATION = "2h"


def username(namespace: str, name: str) -> str:
    """The user the apiserver sees for a ServiceAccount (audit log, RBAC messages)."""
    return f"system:serviceaccount:{namespace}:{name}"


def chart_service_account(kube: Kubectl, release: str, namespace: str) -> str:
    """The ServiceAccount the installed release's operator Deployment runs as."""
    [deployment] = kube.in_namespace(namespace).list(
        "deployments",
        f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator",
    )
    return str(deployment["spec"]["template"]["spec"]["serviceAccountName"])


def write_kubeconfig(
    kube: Kubectl, namespace: str, name: str, path: Path, duration: str = TOKEN_DURATION
) -> Path:
    """A kubeconfig at `path` for ServiceAccount `namespace/name` with a fresh token."""
    token = kube.run("create", "token", name, "-n", namespace, f"--duration={duration}").strip()
    admin = json.loads(kube.run("config", "view", "--raw", "--minify", "-o", "json"))
    [cluster] = admin["clusters"]
    user = username(namespace, name)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster["name"], "cluster": cluster["cluster"]}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": user,
                "context": {"cluster": cluster["name"], "user": user, "namespace": namespace},
            }
        ],
        "current-context": user,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
