"""`make bench`: how fast the operator turns N applied ModelDeployments into Ready models.

For each N (`--sizes`, default 1, 100, 500): time from `kubectl apply` of N ModelDeployments to
all of them reporting Ready, against the floor — a plain client creating exactly the same
children directly and waiting for the same Deployments to be ready — the operator's memory (peak
RSS) and CPU time, its writes per model until Ready, and the writes it makes in a quiet window
after every model is Ready (counted twice: by the operator itself,
`modeldeploy_operator_api_writes_total`, and by the apiserver's audit log; zero at steady state).
`--unrelated-pods/-deployments/-services` first fill the watched namespace with objects that are
not the operator's (its watches select its own by label, so its memory should not grow with
them). Results go to `--results` (default bench/results/operator.md). Not a test: nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modeldeploy_operator.api import ModelDeployment  # noqa: E402
from modeldeploy_operator.builders import BuildContext, TrackPlan, desired_children  # noqa: E402

from tests.support.audit import AuditLog  # noqa: E402
from tests.support.images import SERVER_IMAGE  # noqa: E402
from tests.support.kube import Kubectl  # noqa: E402
from tests.support.nodes import on_fake_nodes  # noqa: E402
from tests.support.operator_process import OperatorProcess  # noqa: E402

# `make` exports the checkout's own; a helper's worktree points it at the shared cluster.
KUBECONFIG = Path(os.environ.get("KUBECONFIG", ROOT / ".cluster" / "kubeconfig"))
CRD = ROOT / "crds" / "modeldeploy.dev_modeldeployments.yaml"
RESULTS = ROOT / "bench" / "results" / "operator.md"
WRITES_METRIC = "modeldeploy_operator_api_writes_total"
PASSES_METRIC = "modeldeploy_operator_reconciles_total"
PASS_SECONDS_METRIC = "modeldeploy_operator_reconcile_duration_seconds_sum"
# Small requests, so that 2,000 models fit on the local cluster's three fake nodes (64 CPUs each:
# the operator's default of 100m would stop scheduling near 1,900).
SERVER_RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}}
# Unrelated objects are created by this many kubectl processes at once.
CREATE_PARALLELISM = 4
UNRELATED_LABELS = {"app": "unrelated"}


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
            "server": on_fake_nodes({"resources": SERVER_RESOURCES}),
        },
    }


def unrelated_objects(pods: int, deployments: int, services: int) -> list[dict[str, Any]]:
    """Objects that are not the operator's, as a busy namespace holds them: Pods that stay Pending
    (their node selector matches no node, like the issue's pods that never start), Deployments
    scaled to zero (their pods would only add to the Pods), headless Services (no cluster IP to
    allocate)."""
    meta = {"labels": UNRELATED_LABELS}
    container = {"name": "app", "image": "registry.invalid/unrelated:1"}
    return [
        *(
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {**meta, "name": f"unrelated-{i:05d}"},
             "spec": {"nodeSelector": {"type": "none"}, "containers": [container]}}
            for i in range(pods)
        ),
        *(
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {**meta, "name": f"unrelated-{i:05d}"},
             "spec": {"replicas": 0, "selector": {"matchLabels": {"unrelated": str(i)}},
                      "template": {"metadata": {"labels": {"unrelated": str(i)}},
                                   "spec": {"containers": [container]}}}}
            for i in range(deployments)
        ),
        *(
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {**meta, "name": f"unrelated-{i:05d}"},
             "spec": {"clusterIP": "None", "selector": {"unrelated": str(i)},
                      "ports": [{"port": 80}]}}
            for i in range(services)
        ),
    ]  # fmt: skip


def create_in_parallel(k: Kubectl, items: list[dict[str, Any]]) -> None:
    """`kubectl create` sends one request after another: a few processes at once go faster."""
    chunks = [items[i::CREATE_PARALLELISM] for i in range(CREATE_PARALLELISM)]
    running = []
    for chunk in filter(None, chunks):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump({"apiVersion": "v1", "kind": "List", "items": chunk}, handle)
        command = ["kubectl", f"--kubeconfig={k.kubeconfig}", f"--namespace={k.namespace}"]
        running.append((subprocess.Popen([*command, "create", "-f", handle.name],
                                          stdout=subprocess.DEVNULL), handle.name))  # fmt: skip
    for proc, name in running:
        code = proc.wait(timeout=1800)
        os.unlink(name)
        if code != 0:
            raise RuntimeError(f"kubectl create of unrelated objects exited with {code}")


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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric_total(operator: OperatorProcess, name: str) -> float:
    """The sum of a metric's series (every label value) as the operator reports it now."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in operator.metrics().splitlines()
        if line.startswith((f"{name}{{", f"{name} "))
    )


@dataclass(frozen=True)
class Row:
    n: int
    floor: float
    operator: float
    peak_rss_mb: float
    cpu_seconds: float
    writes_to_ready: int  # the apiserver's audit log: the operator's writes until all Ready
    quiet_writes: float  # the operator's own count in the quiet window
    quiet_audited: int  # the audit log's count in the same window
    passes: float  # reconcile passes until all Ready
    pass_seconds: float  # their total wall time (passes overlap: up to --workers at once)

    def line(self, quiet_seconds: float) -> str:
        return (
            f"n={self.n}: floor {self.floor:.1f}s, operator {self.operator:.1f}s "
            f"({self.operator / self.floor:.2f}x), peak RSS {self.peak_rss_mb:.0f} MB, "
            f"CPU {self.cpu_seconds:.1f}s ({self.cpu_seconds / self.n * 1000:.0f} ms/model), "
            f"{self.writes_to_ready / self.n:.1f} writes/model to Ready, "
            f"{self.passes / self.n:.1f} passes/model of {self.pass_seconds / self.passes:.3f}s, "
            f"quiet {quiet_seconds:.0f}s: {self.quiet_writes:.0f} writes (metric), "
            f"{self.quiet_audited} (audit log)"
        )

    def markdown(self) -> str:
        return (
            f"| {self.n} | {self.floor:.1f} | {self.operator:.1f} | "
            f"{self.operator / self.floor:.2f}x | {self.peak_rss_mb:.0f} | "
            f"{self.cpu_seconds:.1f} ({self.cpu_seconds / self.n * 1000:.0f} ms) | "
            f"{self.writes_to_ready / self.n:.1f} | {self.passes / self.n:.1f} | "
            f"{self.pass_seconds / self.passes * 1000:.0f} | "
            f"{self.quiet_writes:.0f} / {self.quiet_audited} |"
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
    parser.add_argument("--unrelated-pods", type=int, default=0)
    parser.add_argument("--unrelated-deployments", type=int, default=0)
    parser.add_argument("--unrelated-services", type=int, default=0)
    parser.add_argument(
        "--namespace-prefix",
        default="bench",
        help="namespaces are <prefix>-floor-N and <prefix>-operator-N (runs sharing a cluster "
        "use different prefixes)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the operator with py-spy until every model is Ready, as a speedscope "
        "file per size in this directory",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    unrelated = unrelated_objects(
        args.unrelated_pods, args.unrelated_deployments, args.unrelated_services
    )

    kube = Kubectl(KUBECONFIG)
    audit = AuditLog.beside(KUBECONFIG)
    if not audit.available:
        raise SystemExit(f"no audit log at {audit.path}: writes cannot be counted")
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.run("wait", "--for=condition=Established", "crd/modeldeployments.modeldeploy.dev")

    rows: list[Row] = []
    for n in sizes:
        timeout = 120 + n * 2.0
        # The floor: the same children applied directly, until every Deployment is ready.
        ns = f"{args.namespace_prefix}-floor-{n}"
        k = fresh_namespace(kube, ns)
        start = time.monotonic()
        apply_list(k, floor_children(ns, n))
        wait_until(lambda k=k, n=n: all_deployments_ready(k, n), timeout)
        floor = time.monotonic() - start
        kube.run("delete", "namespace", ns, "--wait=true", "--timeout=300s", timeout=330)

        ns = f"{args.namespace_prefix}-operator-{n}"
        k = fresh_namespace(kube, ns)
        if unrelated:
            create_in_parallel(k, unrelated)
            # Ours are the only Deployments counted ready: the unrelated ones want zero replicas.
            print(f"n={n}: {len(unrelated)} unrelated objects created", flush=True)
        # The operator, fresh for each size so its peak memory belongs to that size.
        log = ROOT / "bench" / "results" / f"operator-{n}.log"
        operator = OperatorProcess(
            KUBECONFIG,
            log,
            "--workers",
            str(args.workers),
            namespaces=f"{args.namespace_prefix}-operator-*",
        )
        operator.start()
        profiler: subprocess.Popen[bytes] | None = None
        try:
            assert operator.proc is not None
            pid = operator.proc.pid
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                profiler = subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
                     "--format", "speedscope", "--rate", "50", "--nonblocking",
                     "--output", str(args.profile / f"operator-{n}.speedscope.json")],
                )  # fmt: skip
            cpu_before = cpu_seconds(pid)
            mark = audit.mark()
            start = time.monotonic()
            apply_list(k, [manifest(i) for i in range(n)])
            wait_until(lambda k=k, n=n: all_models_ready(k, n), timeout)
            elapsed = time.monotonic() - start
            cpu = cpu_seconds(pid) - cpu_before
            if profiler is not None:
                profiler.send_signal(2)  # SIGINT: py-spy writes its file and exits
                profiler.wait(timeout=120)
            passes = metric_total(operator, PASSES_METRIC)
            pass_seconds = metric_total(operator, PASS_SECONDS_METRIC)
            converged = metric_total(operator, WRITES_METRIC)
            # The quiet window starts now. A write the operator sent before (the Events that
            # follow the last status patch) may reach the audit log later: it is told apart by
            # when the apiserver received it.
            quiet_start = datetime.now(UTC)
            time.sleep(args.quiet_seconds)
            quiet_writes = metric_total(operator, WRITES_METRIC) - converged
            audited = audit.writes_since(mark, ns)
            to_ready = sum(1 for w in audited if w.received < quiet_start)
            quiet_audited = len(audited) - to_ready
            rss = peak_rss_mb(pid)
        finally:
            if profiler is not None and profiler.poll() is None:
                profiler.kill()
            operator.stop()
        row = Row(
            n, floor, elapsed, rss, cpu, to_ready, quiet_writes, quiet_audited, passes,
            pass_seconds,
        )  # fmt: skip
        rows.append(row)
        # Printed before the namespace's deletion, which takes minutes on a busy cluster.
        print(row.line(args.quiet_seconds), flush=True)
        kube.run("delete", "namespace", ns, "--wait=true", "--timeout=300s", timeout=330)
        log.unlink(missing_ok=True)

    background = (
        f" The watched namespace also held {args.unrelated_pods} unrelated Pods (Pending), "
        f"{args.unrelated_deployments} Deployments (0 replicas) and {args.unrelated_services} "
        "headless Services, created before the operator started."
        if unrelated
        else ""
    )
    lines = [
        "# Operator benchmark: `kubectl apply` of N ModelDeployments → all Ready",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores, load average before the run's end "
        f"{os.getloadavg()[0]:.1f}), local control plane (kwok nodes), "
        f"operator `--workers {args.workers}`. Reproduce: `python bench/run.py "
        f"{' '.join(sys.argv[1:])}`.{background}",
        "",
        "The floor is a plain client applying exactly the same children (same builders, no "
        "owner) and waiting for every Deployment to be ready. Operator time includes its status "
        "reports (phase Ready seen by `kubectl get md`). CPU: the operator process's user + "
        "system time from the apply to all Ready (per model in brackets). Writes per model: the "
        "operator's write requests in the apiserver's audit log until all Ready (applies, status "
        "patches, Events). Passes per model: reconcile passes until all Ready "
        "(`modeldeploy_operator_reconciles_total`), and their mean wall time. Quiet writes: the "
        "operator's write requests in the "
        f"{args.quiet_seconds:.0f} s after every model was Ready, by its own metric / by the "
        "audit log.",
        "",
        "| N | floor (s) | operator (s) | operator / floor | operator peak RSS (MB) "
        "| operator CPU (s) | writes / model | passes / model | mean pass (ms) | quiet writes |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(row.markdown() for row in rows),
        "",
    ]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text("\n".join(lines))
    print(f"results written to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
