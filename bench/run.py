"""`make bench`: how fast the operator turns N applied ModelDeployments into Ready models.

For N in 1, 100, 500: time from `kubectl apply` of N ModelDeployments to all of them reporting
Ready, against the floor — a plain client creating exactly the same children directly and
waiting for the same Deployments to be ready — the operator's memory (peak RSS), and the writes
it makes in a quiet window after every model is Ready (its own count of write requests,
`modeldeploy_operator_api_writes_total`; zero at steady state). Results go to
bench/results/operator.md. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modeldeploy_operator.api import ModelDeployment  # noqa: E402
from modeldeploy_operator.builders import BuildContext, TrackPlan, desired_children  # noqa: E402

from tests.support.images import SERVER_IMAGE  # noqa: E402
from tests.support.kube import Kubectl  # noqa: E402
from tests.support.nodes import on_fake_nodes  # noqa: E402
from tests.support.operator_process import OperatorProcess  # noqa: E402

KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
CRD = ROOT / "crds" / "modeldeploy.dev_modeldeployments.yaml"
RESULTS = ROOT / "bench" / "results" / "operator.md"
WRITES_METRIC = "modeldeploy_operator_api_writes_total"


def manifest(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": f"model-{i:04d}"},
        "spec": {
            "model": {
                "format": "sklearn",
                "version": "1",
                "storageUri": f"http://models.example.org/model-{i}/1/model.joblib",
            },
            "replicas": 1,
            # The benchmark measures the operator and the control plane: kwok's fake pods.
            "server": on_fake_nodes({}),
        },
    }


def apply_list(k: Kubectl, items: list[dict[str, Any]]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, handle)
    try:
        # Hundreds of objects, each admitted through the CRD's CEL rules: minutes on a busy machine.
        k.run("apply", "--server-side", "--field-manager=bench", "-f", handle.name, timeout=900)
    finally:
        os.unlink(handle.name)


def wait_until(predicate: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.5)
    raise TimeoutError(f"not done after {timeout}s")


def all_models_ready(k: Kubectl, n: int) -> bool:
    items = json.loads(k.run("get", "md", "-o", "json"))["items"]
    ready = sum(1 for md in items if md.get("status", {}).get("phase") == "Ready")
    return ready == n


def all_deployments_ready(k: Kubectl, n: int) -> bool:
    items = json.loads(k.run("get", "deployments", "-o", "json"))["items"]
    ready = sum(
        1 for d in items if d.get("status", {}).get("readyReplicas", 0) >= d["spec"]["replicas"]
    )
    return ready == n


def fresh_namespace(kube: Kubectl, name: str) -> Kubectl:
    kube.run(
        "delete",
        "namespace",
        name,
        "--ignore-not-found",
        "--wait=true",
        "--timeout=300s",
        timeout=330,
    )
    kube.run("create", "namespace", name)
    return kube.in_namespace(name)


def floor_children(namespace: str, n: int) -> list[dict[str, Any]]:
    """What the operator would create, built by the same pure builders, without owners."""
    children: list[dict[str, Any]] = []
    ctx = BuildContext(server_image=SERVER_IMAGE)
    for i in range(n):
        body = manifest(i)
        body["metadata"].update(namespace=namespace, uid=f"00000000-0000-0000-0000-{i:012d}")
        md = ModelDeployment.model_validate(body)
        plan = TrackPlan(track="stable", serving=md.spec.serving(), replicas=1, weight=100)
        for child in desired_children(md, [plan], ctx, ["1"]):
            child["metadata"].pop("ownerReferences", None)
            children.append(child)
    return children


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def writes(operator: OperatorProcess) -> float:
    """Every write request the operator has made so far (all verbs and kinds)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in operator.metrics().splitlines()
        if line.startswith(f"{WRITES_METRIC}{{")
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,100,500")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument(
        "--quiet-seconds",
        type=float,
        default=60,
        help="how long to count the operator's writes after every model is Ready",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    kube = Kubectl(KUBECONFIG)
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.run("wait", "--for=condition=Established", "crd/modeldeployments.modeldeploy.dev")

    rows: list[tuple[int, float, float, float, float]] = []
    for n in sizes:
        timeout = 120 + n * 2.0
        # The floor: the same children applied directly, until every Deployment is ready.
        ns = f"bench-floor-{n}"
        k = fresh_namespace(kube, ns)
        start = time.monotonic()
        apply_list(k, floor_children(ns, n))
        wait_until(lambda k=k, n=n: all_deployments_ready(k, n), timeout)
        floor = time.monotonic() - start
        kube.run("delete", "namespace", ns, "--wait=true", "--timeout=300s", timeout=330)

        # The operator, fresh for each size so its peak memory belongs to that size.
        log = ROOT / "bench" / "results" / f"operator-{n}.log"
        operator = OperatorProcess(
            KUBECONFIG, log, "--workers", str(args.workers), namespaces="bench-operator-*"
        )
        operator.start()
        try:
            ns = f"bench-operator-{n}"
            k = fresh_namespace(kube, ns)
            start = time.monotonic()
            apply_list(k, [manifest(i) for i in range(n)])
            wait_until(lambda k=k, n=n: all_models_ready(k, n), timeout)
            elapsed = time.monotonic() - start
            converged = writes(operator)
            time.sleep(args.quiet_seconds)
            quiet_writes = writes(operator) - converged
            assert operator.proc is not None
            rss = peak_rss_mb(operator.proc.pid)
        finally:
            operator.stop()
        kube.run("delete", "namespace", ns, "--wait=true", "--timeout=300s", timeout=330)
        log.unlink(missing_ok=True)
        rows.append((n, floor, elapsed, rss, quiet_writes))
        print(f"n={n}: floor {floor:.1f}s, operator {elapsed:.1f}s "
              f"({elapsed / floor:.2f}x), peak RSS {rss:.0f} MB, "
              f"{quiet_writes:.0f} writes in the {args.quiet_seconds:.0f}s after Ready",
              flush=True)  # fmt: skip

    lines = [
        "# Operator benchmark: `kubectl apply` of N ModelDeployments → all Ready",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores), local control plane (kwok nodes), "
        f"operator `--workers {args.workers}`. Reproduce: `make bench`.",
        "",
        "The floor is a plain client applying exactly the same children (same builders, no "
        "owner) and waiting for every Deployment to be ready. Operator time includes its status "
        "reports (phase Ready seen by `kubectl get md`). Quiet writes: the operator's write "
        f"requests in the {args.quiet_seconds:.0f} s after every model was Ready.",
        "",
        "| N | floor (s) | operator (s) | operator / floor | operator peak RSS (MB) "
        "| quiet writes |",
        "|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {n} | {f:.1f} | {o:.1f} | {o / f:.2f}x | {r:.0f} | {w:.0f} |"
            for n, f, o, r, w in rows
        ),
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print(f"results written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
