"""A GitOps loop on the real control plane: the staging overlay synced the way Argo CD syncs
(server-side apply with its own field manager), served by the operator running as the chart's
ServiceAccount, judged by the real Argo CD health script.

What keeps an Application Synced and quiet: after the model is Ready, the live object has no
drift from Git (`kubectl diff --server-side` is empty), a re-sync changes nothing, and the
operator writes nothing — not after a restart either.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.gitops.lua import health
from tests.gitops.test_kustomize import GITOPS, build, bump
from tests.support.audit import WRITE_VERBS, AuditLog
from tests.support.chart import CHART_PREFIX, ChartInstaller, fresh_name
from tests.support.kube import Kubectl, eventually
from tests.support.nodes import on_fake_nodes

ARGOCD = "argocd-controller"  # the field manager Argo CD's server-side sync uses


def synced(md: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The built object as Argo CD applies it to its destination namespace, its pods on the
    fake nodes (its artifact URI is an example's, which no real pod could fetch)."""
    spec = {**md["spec"], "server": on_fake_nodes(md["spec"].get("server", {}))}
    return {**md, "metadata": {**md["metadata"], "namespace": namespace}, "spec": spec}


def sync(kube: Kubectl, md: dict[str, Any]) -> None:
    kube.run(
        "apply", "--server-side", f"--field-manager={ARGOCD}", "-f", "-", stdin=json.dumps(md)
    )  # fmt: skip


def out_of_sync(kube: Kubectl, md: dict[str, Any]) -> str:
    """What `kubectl diff` (Argo CD's server-side diff, in effect) finds; empty when in sync."""
    proc = subprocess.run(
        ["kubectl", f"--kubeconfig={kube.kubeconfig}", "diff", "--server-side",
         f"--field-manager={ARGOCD}", "-f", "-"],
        input=json.dumps(md), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout


def writes_by(audit: Path, user: str, namespace: str, offset: int) -> list[str]:
    found = []
    with audit.open("rb") as handle:
        handle.seek(offset)
        for line in handle:
            event = json.loads(line)
            ref = event.get("objectRef", {})
            if (
                event.get("stage") == "ResponseComplete"
                and event.get("verb") in WRITE_VERBS
                and event.get("user", {}).get("username") == user
                and ref.get("namespace") == namespace
            ):
                found.append(f"{event['verb']} {ref.get('resource')}/{ref.get('name')}")
    return found


def test_a_synced_model_stays_in_sync_and_quiet_and_rolls_out_by_one_line(
    installer: ChartInstaller, kube: Kubectl, tmp_path: Path
) -> None:
    namespace = fresh_name(f"{CHART_PREFIX}-staging")
    release = installer.install({"watchNamespaces": [namespace]})
    operator = release.operator(namespace, tmp_path)
    models = kube.in_namespace(namespace)
    tree = tmp_path / "repo"
    shutil.copytree(GITOPS, tree)
    overlay = tree / "overlays" / "staging"

    def live() -> dict[str, Any]:
        md = models.get("md", "iris")
        assert md is not None
        return md

    def argo_health() -> tuple[str, str]:
        got = health(live(), tmp_path)
        return got.status, got.message

    def healthy_at(version: str) -> bool:
        status, _ = argo_health()
        return status == "Healthy" and live()["status"].get("stableVersion") == version

    # The log of the cluster under test, which another checkout may have started.
    audit = AuditLog.beside(kube.kubeconfig).path
    start = audit.stat().st_size
    [built] = build(overlay)
    desired = synced(built, namespace)
    sync(kube, desired)
    eventually(lambda: healthy_at("1"), timeout=90, what="Healthy at version 1")
    assert out_of_sync(kube, desired) == ""
    # The operator (as the chart's ServiceAccount) did the work: its writes are what we count.
    assert any(
        w.startswith("patch deployments/") for w in writes_by(audit, release.user, namespace, start)
    )

    # Steady state: a re-sync and an operator restart change nothing and write nothing.
    before = live()["metadata"]["resourceVersion"]
    offset = audit.stat().st_size
    sync(kube, desired)
    operator.restart()
    time.sleep(8)  # the restarted operator lists, reconciles everything, and should write nothing
    assert writes_by(audit, release.user, namespace, offset) == []
    assert live()["metadata"]["resourceVersion"] == before
    # Nothing of the operator's in metadata (no finalizers, annotations or labels of its own),
    # so Git stays the only source of the object's metadata.
    metadata = live()["metadata"]
    assert not metadata.get("finalizers") and not metadata.get("annotations")
    assert metadata.get("labels", {}) == desired["metadata"].get("labels", {})
    assert out_of_sync(kube, desired) == ""
    assert argo_health()[0] == "Healthy"

    # The rollout: one line in Git, one sync.
    bump(overlay, "2")
    [built] = build(overlay)
    desired = synced(built, namespace)
    sync(kube, desired)
    eventually(lambda: healthy_at("2"), timeout=90, what="Healthy at version 2")
    md = live()
    assert md["spec"]["model"]["storageUri"].split("/")[4] == "2"
    assert out_of_sync(kube, desired) == ""


def test_a_paused_canary_is_suspended_and_a_revert_aborts_it(
    installer: ChartInstaller, kube: Kubectl, tmp_path: Path
) -> None:
    namespace = fresh_name(f"{CHART_PREFIX}-canary")
    release = installer.install({"watchNamespaces": [namespace]})
    release.operator(namespace, tmp_path)
    models = kube.in_namespace(namespace)
    [built] = build(GITOPS / "overlays" / "staging")
    built["spec"]["rollout"] = {"strategy": "Canary", "steps": [10, 50], "stepInterval": "1h"}
    sync(kube, synced(built, namespace))

    def argo() -> str:
        md = models.get("md", "iris")
        return health(md, tmp_path).status if md else "Missing"

    eventually(lambda: argo() == "Healthy", timeout=90, what="Healthy at version 1")

    # A commit that holds the next rollout, then one that starts it.
    held = json.loads(json.dumps(built))
    held["spec"]["rollout"]["paused"] = True
    held["spec"]["model"]["version"] = "2"
    held["spec"]["model"]["storageUri"] = built["spec"]["model"]["storageUri"].replace("/1/", "/2/")
    sync(kube, synced(held, namespace))
    eventually(lambda: argo() == "Suspended", timeout=90, what="a Suspended canary")
    md = models.get("md", "iris") or {}
    assert md["status"]["canaryVersion"] == "2" and md["status"]["stableVersion"] == "1"

    # Reverting the version in Git aborts the held canary at once.
    sync(
        kube, synced({**held, "spec": {**held["spec"], "model": built["spec"]["model"]}}, namespace)
    )
    eventually(lambda: argo() == "Healthy", timeout=90, what="Healthy at version 1 again")
    md = models.get("md", "iris") or {}
    assert md["status"].get("canaryVersion") is None and md["status"]["stableVersion"] == "1"
    deployments = {d["metadata"]["name"] for d in models.list("deployments")}
    eventually(lambda: {d["metadata"]["name"] for d in models.list("deployments")} == {"iris-v1"},
               timeout=60, what=f"only iris-v1 left, not {deployments}")  # fmt: skip
