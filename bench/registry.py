"""Registry-driven rollouts: the time from an MLflow alias moved to the canary in status, and to
the canary at its first step (pods ready on the fake nodes, the first weight in status).

A real `mlflow server` (SQLite, proxied artifacts) on 127.0.0.1 and the operator against the
local control plane; N ModelDeployments follow N registered models; each alias is moved 1 → 2
at its own uniformly random moment within one poll interval, so the figures spread over the poll
phase as a user's move would (expected: a mean of about half the interval, a max of about the
interval). Results: bench/results/registry.md. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modeldeploy_operator.local_mlflow import MlflowServer  # noqa: E402

from tests.support.kube import Kubectl  # noqa: E402
from tests.support.models import model  # noqa: E402
from tests.support.operator_process import OperatorProcess  # noqa: E402

KUBECONFIG = Path(os.environ.get("KUBECONFIG", ROOT / ".cluster" / "kubeconfig"))
CRD = ROOT / "crds" / "modeldeploy.dev_modeldeployments.yaml"
RESULTS = ROOT / "bench" / "results" / "registry.md"
POLL_SECONDS = 10
STEPS = [25, 50]


def following(name: str, url: str) -> dict[str, Any]:
    body = model(name, rollout={"steps": STEPS, "stepInterval": "60s"}, replicas=1)
    body["spec"]["model"] = {
        "format": "sklearn",
        "source": {
            "mlflow": {
                "trackingUri": url,
                "registeredModel": name,
                "follow": {"alias": "champion"},
                "pollInterval": f"{POLL_SECONDS}s",
            }
        },
    }
    return body


def statuses(k: Kubectl) -> dict[str, dict[str, Any]]:
    items = json.loads(k.run("get", "md", "-o", "json"))["items"]
    return {md["metadata"]["name"]: md.get("status", {}) for md in items}


def describe(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"mean {statistics.mean(values):.1f} s, p95 {p95:.1f} s, max {max(values):.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--namespace", default="bench-registry")
    args = parser.parse_args()
    names = [f"reg{i}" for i in range(args.models)]
    kube = Kubectl(KUBECONFIG)
    kube.run("delete", "namespace", args.namespace, "--ignore-not-found", "--wait=true")
    kube.run("create", "namespace", args.namespace)
    k = kube.in_namespace(args.namespace)
    with tempfile.TemporaryDirectory() as scratch:
        mlflow = MlflowServer(Path(scratch))
        mlflow.start()
        operator = OperatorProcess(
            KUBECONFIG, Path(scratch) / "operator.log", namespaces=args.namespace
        )
        operator.start()
        try:
            for name in names:
                mlflow.register(name, 2)
                mlflow.set_alias(name, "champion", "1")
            bodies = [following(name, mlflow.url) for name in names]
            # Just before use: other runs on a shared cluster apply their own (older) CRD.
            kube.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
            k.run(
                "apply", "-f", "-",
                stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": bodies}),
            )  # fmt: skip
            deadline = time.monotonic() + 300
            while not all(s.get("phase") == "Ready" for s in statuses(k).values()) or len(
                statuses(k)
            ) < len(names):
                assert time.monotonic() < deadline, statuses(k)
                time.sleep(0.5)
            # Each alias moves at its own uniformly random moment within one poll interval.
            start = time.monotonic()
            moments = sorted((random.uniform(0, POLL_SECONDS), name) for name in names)
            moved: dict[str, float] = {}
            for moment, name in moments:
                time.sleep(max(0.0, start + moment - time.monotonic()))
                mlflow.set_alias(name, "champion", "2")
                moved[name] = time.monotonic()
            in_status: dict[str, float] = {}
            at_step: dict[str, float] = {}
            deadline = time.monotonic() + 300
            while len(at_step) < len(names):
                assert time.monotonic() < deadline, statuses(k)
                now = time.monotonic()
                for name, status in statuses(k).items():
                    if status.get("canaryVersion") == "2":
                        in_status.setdefault(name, now - moved[name])
                        if status.get("canaryWeight") == STEPS[0]:
                            at_step.setdefault(name, now - moved[name])
                time.sleep(0.2)
        finally:
            operator.stop()
            mlflow.stop()
            kube.run("delete", "namespace", args.namespace, "--wait=false")
    lines = [
        "# Registry-driven rollouts: alias moved → canary",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} "
        f"cores), local control plane (fake nodes: pods ready without running), a real "
        f"`mlflow server` on 127.0.0.1, {len(names)} ModelDeployments, pollInterval "
        f"{POLL_SECONDS}s, each alias moved at a random moment of the interval; status read by "
        f"kubectl in a loop (0.2 s pauses); 1-minute load average at the end "
        f"{os.getloadavg()[0]:.1f}. Reproduce: `python bench/registry.py` with the cluster up.",
        "",
        "| measure | result |",
        "|---|---|",
        f"| alias moved → status.canaryVersion 2 | {describe(list(in_status.values()))} |",
        f"| alias moved → canary at its first step ({STEPS[0]}%) | "
        f"{describe(list(at_step.values()))} |",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
