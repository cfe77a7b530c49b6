"""`make bench` (second part): the cost of the rollout machinery itself.

20 ModelDeployments roll out at once with short step intervals: the overhead of each step beyond
its interval (when the next weight shows in status minus when it was due), and, for 20 canaries
whose analysis fails at its first check, the time from the check being due to 100% stable
(phase Failed, the model Service selecting the stable version only; the canary's Deployment then
lingers for spec.rollout.scaleDownDelay by design). Results: bench/results/rollouts.md. Not a test.

The failing analysis queries `FailingPrometheus`, a stand-in for Prometheus's query API that
answers every query with 0 (a success rate of 0%): what is measured is the operator's reaction
to a failed check, not Prometheus. (An unreachable Prometheus is no verdict: the step would
hold until progressDeadline, docs/rollouts.md.)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modeldeploy_operator import naming  # noqa: E402

from tests.support.failing_prometheus import failing_prometheus  # noqa: E402
from tests.support.kube import Kubectl  # noqa: E402
from tests.support.models import model  # noqa: E402
from tests.support.operator_process import OperatorProcess  # noqa: E402

# `make` exports the checkout's own; a helper's worktree points it at the shared cluster.
KUBECONFIG = Path(os.environ.get("KUBECONFIG", ROOT / ".cluster" / "kubeconfig"))
CRD = ROOT / "crds" / "modeldeploy.dev_modeldeployments.yaml"
RESULTS = ROOT / "bench" / "results" / "rollouts.md"
INTERVAL = 2.0


def statuses(k: Kubectl, prefix: str) -> dict[str, dict[str, Any]]:
    items = json.loads(k.run("get", "md", "-o", "json"))["items"]
    return {
        md["metadata"]["name"]: md.get("status", {})
        for md in items
        if md["metadata"]["name"].startswith(prefix)
    }


def apply_all(k: Kubectl, bodies: list[dict[str, Any]]) -> None:
    k.run(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": bodies})
    )


def wait_all(k: Kubectl, prefix: str, n: int, done: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for st in statuses(k, prefix).values() if done(st)) == n:
            return
        time.sleep(0.5)
    raise TimeoutError("rollouts did not finish")


def step_overheads(k: Kubectl, n: int, steps: list[int]) -> tuple[list[float], float]:
    rollout = {"steps": steps, "stepInterval": f"{INTERVAL:g}s"}
    apply_all(k, [model(f"m{i:02d}", "1", rollout=rollout) for i in range(n)])
    wait_all(k, "m", n, lambda st: st.get("phase") == "Ready")
    seen: dict[str, list[tuple[int, float]]] = {f"m{i:02d}": [] for i in range(n)}
    started = time.monotonic()
    apply_all(k, [model(f"m{i:02d}", "2", rollout=rollout) for i in range(n)])
    while time.monotonic() - started < 300:
        now = time.monotonic()
        current = statuses(k, "m")
        for name, st in current.items():
            weight = st.get("canaryWeight") or (100 if st.get("stableVersion") == "2" else 0)
            if weight and (not seen[name] or seen[name][-1][0] != weight):
                seen[name].append((weight, now))
        if all(st.get("stableVersion") == "2" for st in current.values()):
            break
        time.sleep(0.2)
    overheads = [
        (later - earlier) - INTERVAL
        for points in seen.values()
        for (_, earlier), (_, later) in itertools.pairwise(points)
    ]
    return overheads, time.monotonic() - started


def rollback_times(k: Kubectl, n: int, prometheus: str) -> list[float]:
    rollout = {
        "steps": [50],
        "stepInterval": f"{INTERVAL:g}s",
        "analysis": {
            "prometheusUrl": prometheus,
            "successRate": {"min": 99},
            "maxFailedChecks": 1,
        },
    }
    apply_all(k, [model(f"r{i:02d}", "1", rollout=rollout) for i in range(n)])
    wait_all(k, "r", n, lambda st: st.get("phase") == "Ready")
    apply_all(k, [model(f"r{i:02d}", "2", rollout=rollout) for i in range(n)])
    step_seen: dict[str, float] = {}
    failed_seen: dict[str, float] = {}
    deadline = time.monotonic() + 300
    while len(failed_seen) < n and time.monotonic() < deadline:
        now = time.monotonic()
        selectors = {
            svc["metadata"]["name"]: svc["spec"].get("selector", {})
            for svc in json.loads(k.run("get", "services", "-o", "json"))["items"]
        }
        for name, st in statuses(k, "r").items():
            if st.get("canaryWeight") == 50 and name not in step_seen:
                step_seen[name] = now
            stable_only = selectors.get(name, {}).get(naming.LABEL_VERSION) == "1"
            if st.get("phase") == "Failed" and stable_only and name in step_seen:
                failed_seen.setdefault(name, now)
        time.sleep(0.2)
    return [failed_seen[name] - step_seen[name] - INTERVAL for name in failed_seen]


def describe(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"mean {statistics.mean(values):.2f} s, p95 {p95:.2f} s, max {max(values):.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rollouts", type=int, default=20)
    parser.add_argument("--namespace", default="bench-rollouts")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    kube = Kubectl(KUBECONFIG)
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    namespace = args.namespace
    kube.run(
        "delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=300s",
        timeout=330,
    )  # fmt: skip
    kube.run("create", "namespace", namespace)
    k = kube.in_namespace(namespace)
    log = ROOT / "bench" / "results" / "operator-rollouts.log"
    operator = OperatorProcess(KUBECONFIG, log, namespaces=namespace)
    operator.start()
    try:
        steps = [20, 40, 60]
        overheads, total = step_overheads(k, args.rollouts, steps)
        with failing_prometheus() as prometheus:
            rollbacks = rollback_times(k, args.rollouts, prometheus)
    finally:
        operator.stop()
        kube.run("delete", "namespace", namespace, "--wait=false")
        log.unlink(missing_ok=True)
    lines = [
        "# Rollout benchmark: the machinery's own overhead",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} "
        f"cores), local control plane, {args.rollouts} rollouts at once, stepInterval "
        f"{INTERVAL:g}s, status polled every 0.2 s (so figures carry up to ~0.3 s of polling). "
        f"Reproduce: `python bench/rollouts.py {' '.join(sys.argv[1:])}`.",
        "",
        "| measure | result |",
        "|---|---|",
        f"| step overhead beyond stepInterval, steps {steps} → promotion "
        f"({len(overheads)} steps) | {describe(overheads)} |",
        f"| all {args.rollouts} rollouts, start → every one promoted | {total:.1f} s |",
        f"| failing check due → 100% stable (phase Failed, model Service on stable only), "
        f"{len(rollbacks)} rollbacks | {describe(rollbacks)} |",
        "",
    ]
    args.results.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
