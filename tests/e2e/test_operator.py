"""The operator on a real control plane: what a user sees after `kubectl apply`.

The operator runs as a real process (`modeldeploy operator`) against the cluster; kwok's fake
kubelet makes pods Running/Ready (or stuck, for images under `unpullable.invalid/`).
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from modeldeploy_operator import kinds, naming
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders import BuildContext, desired_children
from modeldeploy_operator.compare import is_subset
from modeldeploy_operator.health import deployment_health
from modeldeploy_operator.rollout.machine import plan_tracks
from modeldeploy_operator.rollout.plan import Routing
from modeldeploy_operator.rollout.routers.replica_ratio import ReplicaRatioRouter

from tests.support.audit import AuditLog
from tests.support.images import SERVER_IMAGE
from tests.support.kube import Kubectl, KubectlError, eventually
from tests.support.models import condition, model, wait_ready
from tests.support.operator_process import OperatorProcess

ROOT = Path(__file__).resolve().parents[2]


def test_apply_creates_children_exactly_as_built_and_becomes_ready(
    operator: OperatorProcess, k: Kubectl
) -> None:
    k.apply(model("iris", autoscaling={"minReplicas": 1, "maxReplicas": 4,
                                       "targetCPUUtilizationPercentage": 70}))  # fmt: skip
    md = wait_ready(k, "iris")

    parsed = ModelDeployment.model_validate(md)
    deployment = k.get("deployment", naming.track_name("iris", "1"))
    assert deployment is not None
    health = {"1": deployment_health(deployment)}
    router = ReplicaRatioRouter()
    routing = Routing(split_by_service=True, canary_replicas=router.canary_replicas)
    plan = plan_tracks(parsed, health, datetime.now(UTC), routing)
    expected = desired_children(
        parsed, plan.tracks, BuildContext(server_image=SERVER_IMAGE), plan.traffic_versions
    )
    kinds = sorted((m["kind"], m["metadata"]["name"]) for m in expected)
    assert kinds == sorted(
        [
            ("Deployment", "iris-v1"),
            ("HorizontalPodAutoscaler", "iris-v1"),
            ("Service", "iris"),
            ("Service", "iris-v1"),
        ]
    )
    plural = {"Deployment": "deployment", "Service": "service", "HorizontalPodAutoscaler": "hpa"}
    for manifest in expected:
        live = k.get(plural[manifest["kind"]], manifest["metadata"]["name"])
        assert live is not None, manifest["metadata"]["name"]
        assert is_subset(manifest, live), (manifest, live)
        refs = live["metadata"]["ownerReferences"]
        assert refs[0]["uid"] == md["metadata"]["uid"] and refs[0]["controller"] is True
        with_fields = json.loads(
            k.run("get", plural[manifest["kind"]], manifest["metadata"]["name"], "-o", "json",
                  "--show-managed-fields")
        )  # fmt: skip
        managers = {f["manager"] for f in with_fields["metadata"]["managedFields"]}
        assert "modeldeploy" in managers

    status = md["status"]
    assert status["stableVersion"] == "1"
    assert status["url"] == f"http://iris.{k.namespace}.svc.cluster.local"
    assert status["selector"] == "modeldeploy.dev/model=iris,modeldeploy.dev/version=1"
    assert {c["type"] for c in status["conditions"]} == {"Ready", "Progressing", "Degraded"}
    assert all(
        c["observedGeneration"] == md["metadata"]["generation"] for c in status["conditions"]
    )
    events = k.run("get", "events", "--field-selector", "involvedObject.name=iris", "-o", "json")
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert "AllReplicasReady" in reasons


def test_kubectl_scale_resizes_the_serving_deployment(
    operator: OperatorProcess, k: Kubectl
) -> None:
    k.apply(model("scaled"))
    wait_ready(k, "scaled")
    k.run("scale", "md/scaled", "--replicas=3")

    def scaled() -> bool:
        dep = k.get("deployment", "scaled-v1")
        md = k.get("md", "scaled")
        return bool(
            dep
            and dep["spec"]["replicas"] == 3
            and dep.get("status", {}).get("readyReplicas") == 3
            and md
            and md["status"].get("replicas") == 3
        )

    eventually(scaled, what="3 replicas")


def test_version_change_switches_without_a_gap(operator: OperatorProcess, k: Kubectl) -> None:
    immediate = {"strategy": "Immediate"}
    k.apply(model("switch", "1", rollout=immediate))
    wait_ready(k, "switch")
    k.apply(model("switch", "2", rollout=immediate))

    gaps: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        svc = k.get("service", "switch")
        assert svc is not None
        version = svc["spec"]["selector"].get(naming.LABEL_VERSION)
        slices = k.list("endpointslices", "kubernetes.io/service-name=switch")
        ready = [
            ep
            for s in slices
            for ep in s.get("endpoints") or []
            if ep.get("conditions", {}).get("ready")
        ]
        if not ready:
            gaps.append(f"no ready endpoint while selecting version {version}")
        md = k.get("md", "switch")
        settled = version == "2" and md and md["status"].get("phase") == "Ready"
        if settled and k.get("deployment", "switch-v1") is None:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the switch to version 2 did not complete in 60s")
    assert not gaps, gaps
    md = k.get("md", "switch")
    assert md is not None and md["status"]["stableVersion"] == "2"
    assert k.get("service", "switch-v1") is None


def test_edited_and_deleted_children_are_restored(operator: OperatorProcess, k: Kubectl) -> None:
    k.apply(model("heal"))
    wait_ready(k, "heal")
    k.run("patch", "deployment/heal-v1", "--type=merge", "-p",
          json.dumps({"spec": {"template": {"spec": {"containers": [
              {"name": "server", "image": "tampered.example.org/x:1"}]}}}}))  # fmt: skip
    k.run("scale", "deployment/heal-v1", "--replicas=5")
    k.delete("service", "heal")

    def restored() -> bool:
        dep = k.get("deployment", "heal-v1")
        svc = k.get("service", "heal")
        if not dep or not svc:
            return False
        images = {c["image"] for c in dep["spec"]["template"]["spec"]["containers"]}
        return dep["spec"]["replicas"] == 2 and images == {SERVER_IMAGE}

    eventually(restored, timeout=15, what="deployment and service restored")


def test_deleting_the_model_deployment_removes_everything(
    operator: OperatorProcess, k: Kubectl
) -> None:
    k.apply(model("gone"))
    wait_ready(k, "gone")
    k.run("delete", "md/gone", "--wait=true")
    selector = f"{naming.LABEL_MODEL}=gone"
    for kind in ("deployments", "services", "replicasets", "pods", "hpa"):
        eventually(lambda kind=kind: not k.list(kind, selector), what=f"{kind} removed")


RECONCILED_OK = 'modeldeploy_operator_reconciles_total{result="ok"}'


def test_restarted_operator_resumes_without_writing(
    operator: OperatorProcess, k: Kubectl, tmp_path: Path
) -> None:
    """A freshly started operator (as after a crash or an upgrade) lists everything, reconciles
    every model, and writes nothing: counted by the apiserver's audit log for this namespace and
    by the new operator's own write counter (it watches only this namespace)."""
    for name in ("quiet-a", "quiet-b"):
        k.apply(model(name, autoscaling={"minReplicas": 1, "maxReplicas": 3,
                                         "targetCPUUtilizationPercentage": 60}))  # fmt: skip
    for name in ("quiet-a", "quiet-b"):
        wait_ready(k, name)
    time.sleep(2)  # let the last status write and events settle

    audit = AuditLog.beside(k.kubeconfig)
    assert audit.available, f"no audit log at {audit.path} (cluster/up.sh links it there)"
    mark = audit.mark()
    fresh = OperatorProcess(k.kubeconfig, tmp_path / "fresh.log", namespaces=str(k.namespace))
    fresh.start()

    def reconciled_both() -> list[str] | None:
        metrics = fresh.metrics().splitlines()
        ok = [
            m for m in metrics if m.startswith('modeldeploy_operator_reconciles_total{result="ok"}')
        ]
        return metrics if ok and float(ok[0].split()[-1]) >= 2 else None

    try:
        # A pass counts its writes before it counts itself done.
        metrics = eventually(reconciled_both, timeout=60, what="both models reconciled")
    finally:
        fresh.stop()
    writes = [m for m in metrics if m.startswith("modeldeploy_operator_api_writes_total{")]
    assert writes == [], writes
    assert audit.writes_since(mark, str(k.namespace)) == []


def test_the_operator_asks_the_api_only_for_its_own_children(k: Kubectl, tmp_path: Path) -> None:
    """Children and pods are selected by label on the server (kopf's `labels=` filter is
    client-side): an unrelated object in a watched namespace never reaches the operator. Seen
    in the apiserver's audit log, which records every watch as it was requested."""
    audit = AuditLog.beside(k.kubeconfig)
    assert audit.available, f"no audit log at {audit.path} (cluster/up.sh links it there)"
    mark = audit.mark()
    fresh = OperatorProcess(k.kubeconfig, tmp_path / "watches.log", namespaces=str(k.namespace))
    required = {kind.plural for kind in (kinds.DEPLOYMENT, kinds.SERVICE, kinds.HPA, kinds.POD)}
    fresh.start()
    try:
        watches: dict[str, list[str]] = eventually(
            lambda: (w if (w := audit.operator_watches_since(mark, str(k.namespace))).keys()
                     >= required | {kinds.MODEL_DEPLOYMENT.plural} else None),
            timeout=60, what="the operator's watches in the audit log",
        )  # fmt: skip
    finally:
        fresh.stop()
    ours = [naming.MANAGED_SELECTOR]
    for resource, uris in watches.items():
        # The ModelDeployments are the user's: all of them, unselected.
        wanted = None if resource == kinds.MODEL_DEPLOYMENT.plural else ours
        for uri in uris:
            assert parse_qs(urlsplit(uri).query).get("labelSelector") == wanted, (resource, uri)


def test_never_ready_pods_make_the_model_degraded_with_the_reason(
    operator: OperatorProcess, k: Kubectl
) -> None:
    k.apply(model("broken", server={"image": "unpullable.invalid/modeldeploy-server:missing"}))

    def degraded() -> dict[str, Any] | None:
        md = k.get("md", "broken")
        cond = condition(md, "Degraded")
        return md if cond.get("status") == "True" else None

    md = eventually(degraded, timeout=60, what="Degraded")
    cond = condition(md, "Degraded")
    assert cond["reason"] == "ImagePullBackOff"
    assert "unpullable.invalid/modeldeploy-server:missing" in cond["message"]
    assert md["status"]["phase"] == "Degraded"
    assert condition(md, "Ready")["status"] == "False"


def test_a_service_someone_else_made_is_left_alone_and_reported(
    operator: OperatorProcess, k: Kubectl
) -> None:
    users = k.create({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "taken"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    })  # fmt: skip
    k.apply(model("taken"))

    def conflict() -> dict[str, Any] | None:
        md = k.get("md", "taken")
        return md if condition(md, "Degraded").get("reason") == "ChildConflict" else None

    md = eventually(conflict, what="Degraded: ChildConflict")
    assert md["status"]["phase"] == "Degraded"
    assert "Service taken" in condition(md, "Degraded")["message"]
    selector = "involvedObject.name=taken,reason=ChildConflict"
    events = k.run("get", "events", "-o", "json", "--field-selector", selector)
    assert [e["involvedObject"]["kind"] for e in json.loads(events)["items"]] == ["ModelDeployment"]
    after = k.get("service", "taken")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == users["metadata"]["resourceVersion"]
    assert after["spec"]["selector"] == {"app": "web"}
    assert k.get("deployment", "taken-v1") is None  # nothing of a half-made model

    k.run("delete", "md/taken", "--wait=true")
    survivor = k.get("service", "taken")
    # Without an owner reference the garbage collector has no reason ever to delete it.
    assert survivor is not None and survivor["metadata"]["uid"] == users["metadata"]["uid"]
    assert "ownerReferences" not in survivor["metadata"]


DENIAL = "Services are frozen in this namespace"


@pytest.fixture
def services_denied(kube: Kubectl, namespace: str) -> Iterator[None]:
    """A ValidatingAdmissionPolicy that refuses every Service write in this test's namespace
    (policies are cluster-scoped: bound to the namespace by name, removed afterwards)."""
    name = f"{namespace}-deny-services"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"], "resources": ["services"],
                "operations": ["CREATE", "UPDATE"],
            }]},
            "validations": [{"expression": "false", "message": DENIAL}],
        },
    }  # fmt: skip
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    try:
        kube.apply(policy, binding)
        k = kube.in_namespace(namespace)

        def enforced() -> bool:
            try:
                k.run("create", "service", "clusterip", "probe", "--tcp=80", "--dry-run=server")
            except KubectlError as err:
                return DENIAL in err.stderr
            return False

        eventually(enforced, what="the admission policy enforced")
        yield
    finally:
        kube.run("delete", "validatingadmissionpolicybinding", name, "--ignore-not-found")
        kube.run("delete", "validatingadmissionpolicy", name, "--ignore-not-found")


def _errors(operator: OperatorProcess, reason: str) -> float:
    prefix = f'modeldeploy_operator_reconcile_errors_total{{error="{reason}"}}'
    lines = [m for m in operator.metrics().splitlines() if m.startswith(prefix)]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_an_apply_the_api_refuses_is_reported_once_and_retried(
    operator: OperatorProcess, k: Kubectl, services_denied: None
) -> None:
    before = _errors(operator, "ApplyFailed")
    k.apply(model("refused"))

    def refused() -> dict[str, Any] | None:
        md = k.get("md", "refused")
        return md if condition(md, "Degraded").get("reason") == "ApplyFailed" else None

    md = eventually(refused, what="Degraded: ApplyFailed")
    assert md["status"]["phase"] == "Degraded"
    message = condition(md, "Degraded")["message"]
    assert "Service refused" in message and DENIAL in message, message
    # Refused again on every later pass (timed retries and passes the pods' events start):
    # still a single Event.
    eventually(
        lambda: _errors(operator, "ApplyFailed") >= before + 4, timeout=120, what="4 refusals"
    )
    selector = "involvedObject.name=refused,reason=ApplyFailed"
    events = json.loads(k.run("get", "events", "-o", "json", "--field-selector", selector))
    assert len(events["items"]) == 1, events["items"]


@pytest.fixture
def own_namespace(kube: Kubectl) -> Iterator[Kubectl]:
    # Outside `<prefix>-*`: only the test's own operator (with its own settings) acts here.
    name = f"images-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield kube.in_namespace(name)
    kube.delete("namespace", name)


def test_images_outside_the_allowed_prefixes_are_refused(
    own_namespace: Kubectl, tmp_path: Path
) -> None:
    k = own_namespace
    policy = ("--allowed-image-prefix", "allowed.example/models/")
    limited = OperatorProcess(
        k.kubeconfig, tmp_path / "operator.log", *policy, namespaces=str(k.namespace)
    )
    limited.start()
    try:
        k.apply(model("elsewhere", server={"image": "elsewhere.example/miner:1"}))
        k.apply(model("allowed", server={"image": "allowed.example/models/server:1"}))
        k.apply(model("default"))  # the operator's own server image

        def refused() -> dict[str, Any] | None:
            md = k.get("md", "elsewhere")
            return md if condition(md, "Degraded").get("reason") == "ImageNotAllowed" else None

        md = eventually(refused, what="Degraded: ImageNotAllowed")
        assert md["status"]["phase"] == "Degraded"
        assert "elsewhere.example/miner:1" in condition(md, "Degraded")["message"]
        selector = "involvedObject.name=elsewhere,reason=ImageNotAllowed"
        events = json.loads(k.run("get", "events", "-o", "json", "--field-selector", selector))
        assert len(events["items"]) == 1
        for name, image in (
            ("allowed", "allowed.example/models/server:1"),
            ("default", SERVER_IMAGE),
        ):
            ready = wait_ready(k, name)
            assert condition(ready, "Degraded")["status"] == "False"
            deployment = k.get("deployment", f"{name}-v1")
            assert deployment is not None
            containers = deployment["spec"]["template"]["spec"]["containers"]
            assert {c["image"] for c in containers} == {image}
        # Nothing of the refused model was made.
        assert k.list("deployments", f"{naming.LABEL_MODEL}=elsewhere") == []
        assert k.list("services", f"{naming.LABEL_MODEL}=elsewhere") == []
    finally:
        limited.stop()


def _invalid_examples() -> list[Path]:
    return sorted((ROOT / "examples" / "invalid").glob("*.yaml"))


def test_there_are_at_least_twelve_invalid_examples() -> None:
    assert len(_invalid_examples()) >= 12


@pytest.mark.parametrize("path", _invalid_examples(), ids=lambda p: p.stem)
def test_invalid_manifest_is_rejected_naming_the_field(
    operator: OperatorProcess, k: Kubectl, path: Path
) -> None:
    text = path.read_text()
    first = text.splitlines()[0]
    assert first.startswith("# expect: "), f"{path} must start with '# expect: <message part>'"
    expected = first.removeprefix("# expect: ").strip()
    manifest = yaml.safe_load(text)
    manifest = copy.deepcopy(manifest)
    manifest["metadata"].pop("namespace", None)
    with pytest.raises(KubectlError) as err:
        k.create(manifest)
    assert expected in err.value.stderr, err.value.stderr
