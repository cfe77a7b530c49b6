"""`make bench-gateway`: what the data path costs. One version of the iris model (a
LogisticRegression, one replica, a real pod on the real node, the operator under test routing it
with the Gateway API router) is loaded by `wrk` with the same V2 request three ways: straight to
the pod's IP, through the model's Service (kube-proxy's rules), and through the Gateway (Traefik,
following the operator's HTTPRoute). Throughput and latency of each, and the Gateway's overhead
against the pod. Results: bench/results/gateway.md. Not a test.

Everything shares this machine's cores: the server, Traefik, wrk and the control plane. The
ratio says what the extra hop costs here, not what a dedicated gateway node would add.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modeldeploy_operator import naming  # noqa: E402

from tests.support.kube import Kubectl, eventually  # noqa: E402
from tests.support.load import v2_request  # noqa: E402
from tests.support.model_store import STABLE, STORE, artifact_uri, store_objects  # noqa: E402
from tests.support.models import wait_ready  # noqa: E402
from tests.support.operator_process import OperatorProcess  # noqa: E402
from tests.support.platform import (  # noqa: E402
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    gateway_url,
)

KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
CRD = ROOT / "crds" / "modeldeploy.dev_modeldeployments.yaml"
RESULTS = ROOT / "bench" / "results" / "gateway.md"
WORK = ROOT / ".cluster" / "bench-gateway"
MODEL = "iris"


def log(message: str) -> None:
    print(f"[bench-gateway] {message}", flush=True)


def model_deployment(hostname: str) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": MODEL},
        "spec": {
            "model": {"format": "sklearn", "version": STABLE, "storageUri": artifact_uri(STABLE)},
            "replicas": 1,
            "traffic": {
                "router": "GatewayAPI",
                "gatewayRef": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
                "hostnames": [hostname],
            },
        },
    }


@dataclass(frozen=True)
class Measure:
    path: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    failed: int


def _ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {percentile}% latency in wrk's output:\n{text}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(path: str, url: str, host: str | None, seconds: int, connections: int) -> Measure:
    route, body = v2_request(MODEL)
    script = WORK / f"wrk-{path.replace(' ', '-')}.lua"
    headers = {"Content-Type": "application/json", **({"Host": host} if host else {})}
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [=[{body.decode()}]=]\n"
        + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
         url + route],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rate is None or total is None:
        raise ValueError(f"cannot read wrk's output:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(g) for g in errors.groups()) if errors else 0
    )
    return Measure(
        path, float(rate.group(1)), _ms(out, "50"), _ms(out, "99"), int(total.group(1)), failed
    )


def write_results(measures: list[Measure], seconds: int, connections: int) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    pod = measures[0]
    lines = [
        "# The data path: pod, Service, Gateway",
        "",
        f"`make bench-gateway` ({Path(__file__).name}) at {commit}, "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, {platform.machine()}, "
        f"{os.cpu_count()} cores shared by the server pod, Traefik, wrk and the control plane.",
        f"One iris LogisticRegression pod; V2 inference, one row per request; `wrk -t1 "
        f"-c{connections} -d{seconds}s` per path.",
        "",
        "| path | requests/s | p50 ms | p99 ms | requests | failed | throughput vs pod |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in measures:
        ratio = m.requests_per_s / pod.requests_per_s
        lines.append(
            f"| {m.path} | {m.requests_per_s:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | "
            f"{m.requests:,} | {m.failed} | {ratio:.2f} |"
        )
    RESULTS.write_text("\n".join(lines) + "\n")
    log(f"results in {RESULTS.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    kube = Kubectl(KUBECONFIG)
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    namespace = f"bench-gateway-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    k = kube.in_namespace(namespace)
    operator = OperatorProcess(KUBECONFIG, WORK / "operator.log", namespaces=namespace)
    operator.start()
    try:
        hostname = f"{MODEL}.{namespace}.test"
        k.apply(*store_objects())
        k.run("rollout", "status", f"deployment/{STORE}", "--timeout=180s")
        k.apply(model_deployment(hostname))
        wait_ready(k, MODEL, timeout=300)
        [pod] = k.list("pods", f"{naming.LABEL_MODEL}={MODEL}")
        port = pod["spec"]["containers"][0]["ports"][0]["containerPort"]
        service = k.get("service", MODEL) or {}
        gateway = gateway_url(kube)
        paths = [
            ("pod", f"http://{pod['status']['podIP']}:{port}", None),
            ("Service (kube-proxy)", f"http://{service['spec']['clusterIP']}", None),
            ("Gateway (Traefik)", gateway, hostname),
        ]
        route, body = v2_request(MODEL)

        def routed() -> bool:
            out = subprocess.run(
                ["curl", "-fsS", "-H", f"Host: {hostname}", "-H", "Content-Type: application/json",
                 "-d", body.decode(), gateway + route],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            return out.returncode == 0 and json.loads(out.stdout)["model_version"] == STABLE

        eventually(routed, timeout=60, what="an answer through the Gateway")
        measures = []
        for path, url, host in paths:
            wrk(path, url, host, 3, args.connections)  # warm up
            measure = wrk(path, url, host, args.seconds, args.connections)
            log(f"{path}: {measure.requests_per_s:,.0f} requests/s, p99 {measure.p99_ms:.2f} ms")
            measures.append(measure)
        write_results(measures, args.seconds, args.connections)
    finally:
        operator.stop()
        kube.delete("namespace", namespace)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
