"""`make demo-loop`: the demo's optional second act, the MLOps loop on real drift, narrated.

On the local cluster `make demo` left running (it starts the operator when none runs): a real
`mlflow server` on this host; a champion trained on iris as it was, registered with its drift
reference; a ModelDeployment of real pods following the alias `champion`, scraped by the
platform's Prometheus; a RetrainingPolicy whose trigger is the pods' real input-drift PSI. Then
requests of a shifted world (drift_loop.py tells the story) go to the model's Service, and the
act prints each phase with the time since the first shifted request: drift over the threshold,
the trigger held, the run, its training and evaluation Jobs, the alias moved, the canary at its
first step, the candidate promoted. Short intervals throughout (hold 10 s, registry poll 5 s,
one canary step of 10 s), so the loop closes in a few minutes.

It ends with the two figures the loop is judged by: "alias moved → canary at first step" and
"drift over threshold → candidate promoted", then deletes what it created (the policy and its
runs and Jobs, the ModelDeployment, the trainer's ConfigMap) and stops the MLflow server and the
file server. The cluster and the operator keep running, as after `make demo`.

`--namespace NS` plays the act in a namespace of its own instead of the demo's (on a cluster
others use too): it creates NS, runs an operator of its own for NS only, and removes both at the
end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from modeldeploy_operator import drift_loop
from modeldeploy_operator.demo import (
    DEMO_NAMESPACE,
    KUBECONFIG,
    OPERATOR_LOG,
    ROOT,
    STATE,
    free_port,
    kubectl,
    say,
    start_operator,
    wait_ready,
)
from modeldeploy_operator.local_mlflow import MlflowServer
from modeldeploy_operator.retraining.loop import default_query
from modeldeploy_operator.settings import DEFAULT_SERVER_IMAGE

NAME: Final = "iris-loop"
POLICY: Final = "iris-loop-drift"
REGISTERED: Final = "iris-loop"
WORK: Final = STATE / "demo-loop"
PLURALS: Final = ("modeldeployments", "retrainingpolicies", "retrainingruns")
# The platform's Prometheus (cluster/platform/monitoring.sh), which the Prometheus Operator
# configures from the ModelDeployment's PodMonitor.
PROMETHEUS_NAMESPACE: Final = "monitoring"
PROMETHEUS_SERVICE: Final = "prometheus"
PROMETHEUS_PORT: Final = 9090
# A new PodMonitor reaches Prometheus's configuration through a volume the kubelet refreshes
# about once a minute.
SCRAPE_TIMEOUT: Final = 300.0
LOOP_TIMEOUT: Final = 600.0
FINAL_PHASES: Final = ("Promoted", "GateFailed", "RolledBack", "Failed")
WATCH_PERIOD: Final = 0.5


@dataclass
class Site:
    """Where the act plays: the namespace (the demo's unless --namespace says) and the log of
    the operator that serves it."""

    namespace: str = DEMO_NAMESPACE
    operator_log: Path = OPERATOR_LOG


SITE: Final = Site()


def get(kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    out = kubectl(
        "get", kind, name, "-n", namespace or SITE.namespace, "-o", "json",
        "--ignore-not-found", capture=True,
    )  # fmt: skip
    return dict(json.loads(out)) if out.strip() else None


def apply(manifest: dict[str, Any]) -> None:
    """`kubectl apply` of one manifest, from stdin."""
    subprocess.run(
        ["kubectl", "apply", "-n", SITE.namespace, "-f", "-"],
        input=json.dumps(manifest), text=True, check=True, capture_output=True,
        env={**os.environ, "KUBECONFIG": str(KUBECONFIG)},
    )  # fmt: skip


def real_node() -> dict[str, Any]:
    nodes = json.loads(kubectl("get", "nodes", "-l", "type=real", "-o", "json", capture=True))
    if not nodes["items"]:
        raise SystemExit("the cluster has no real node (MODELDEPLOY_REAL_NODE=0?): no real drift")
    return dict(nodes["items"][0])


def prometheus_url() -> str:
    service = get("service", PROMETHEUS_SERVICE, PROMETHEUS_NAMESPACE)
    if service is None:
        raise SystemExit(
            f"no Service {PROMETHEUS_NAMESPACE}/{PROMETHEUS_SERVICE}: the platform's Prometheus "
            "is started by cluster/up.sh"
        )
    return f"http://{service['spec']['clusterIP']}:{PROMETHEUS_PORT}"


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    raise SystemExit(f"{what}: not within {timeout:.0f}s (operator log: {SITE.operator_log})")


def armed() -> bool:
    found = get("retrainingpolicy", POLICY) or {}
    conditions = found.get("status", {}).get("conditions", [])
    return any(c["type"] == "Armed" and c["status"] == "True" for c in conditions)


@dataclass
class Timeline:
    """What the watcher saw, first time each, in seconds since the first shifted request."""

    start: float = field(default_factory=time.time)
    seen: dict[str, float] = field(default_factory=dict)

    def mark(self, key: str, text: str) -> None:
        if key in self.seen:
            return
        self.seen[key] = time.time()
        print(f"    {self.seen[key] - self.start:6.1f}s  {text}", flush=True)


def alias_version(mlflow: MlflowServer) -> str | None:
    answer = httpx.get(
        f"{mlflow.url}/api/2.0/mlflow/registered-models/alias",
        params={"name": REGISTERED, "alias": drift_loop.ALIAS},
        timeout=5,
    )
    return str(answer.json()["model_version"]["version"]) if answer.status_code == 200 else None


def watch(mlflow: MlflowServer, prometheus: str, champion: str) -> tuple[Timeline, dict[str, Any]]:
    """Print each phase of the loop as it happens, until the run ends; the timeline and the
    run."""
    timeline = Timeline()
    query = default_query(SITE.namespace, NAME)
    deadline = time.monotonic() + LOOP_TIMEOUT
    run_name: str | None = None
    while time.monotonic() < deadline:
        result = drift_loop.prometheus_query(prometheus, query)
        if result:
            value = float(result[0]["value"][1])
            if value > drift_loop.THRESHOLD:
                timeline.mark(
                    "drift", f"Prometheus: largest PSI {value:.2f} > {drift_loop.THRESHOLD}"
                )
        policy = (get("retrainingpolicy", POLICY) or {}).get("status", {})
        if policy.get("heldSince"):
            timeline.mark("held", f"policy: trigger holding since {policy['heldSince']}")
        # The policy names its run while it is active; the watcher keeps the name after.
        run_name = run_name or policy.get("activeRun")
        run = get("retrainingrun", run_name) if run_name else None
        if run is not None:
            status = run.get("status", {})
            value = run["spec"]["trigger"].get("value")
            timeline.mark("run", f"run {run_name} created (trigger value {value})")
            phase = status.get("phase")
            if phase:
                timeline.mark(f"phase:{phase}", f"run phase {phase}")
            if phase in FINAL_PHASES:
                return timeline, run
        version = alias_version(mlflow)
        if version is not None and version != champion:
            timeline.mark("alias", f"MLflow: alias {drift_loop.ALIAS} → version {version}")
        md = (get("md", NAME) or {}).get("status", {})
        if md.get("canaryVersion") and md.get("canaryVersion") != champion:
            timeline.mark("canary", f"canary version {md['canaryVersion']} starting")
            if md.get("currentStep") == 0 and md.get("canaryWeight"):
                timeline.mark(
                    "first-step", f"canary at its first step: {md['canaryWeight']}% of traffic"
                )
        if md.get("stableVersion") not in (None, champion) and md.get("phase") == "Ready":
            timeline.mark("stable", f"version {md['stableVersion']} serves all traffic")
        time.sleep(WATCH_PERIOD)
    raise SystemExit(f"the loop did not finish in {LOOP_TIMEOUT:.0f}s")


def delete_objects() -> None:
    """What this act creates in the cluster (the runs and their Jobs go with the policy)."""
    for kind, name in (
        ("retrainingpolicy", POLICY),
        ("md", NAME),
        ("configmap", drift_loop.TRAINER_CONFIG_MAP),
    ):
        kubectl("delete", kind, name, "-n", SITE.namespace, "--ignore-not-found", "--wait")


def report(timeline: Timeline, run: dict[str, Any], prometheus: str) -> None:
    status = run.get("status", {})
    say(f"run {run['metadata']['name']}: {status.get('phase')} — {status.get('decision', '')}")
    for row in status.get("metrics", []):
        print(
            f"    {row['name']:<10} candidate {row.get('candidate')!s:<20} champion "
            f"{row.get('champion')!s:<20} {'passed' if row.get('passed') else 'FAILED'}",
            flush=True,
        )
    # When drift went over the threshold, as Prometheus scraped it (not when the watcher asked).
    samples = drift_loop.drift_samples(prometheus, SITE.namespace, NAME)
    over = drift_loop.first_over(samples, drift_loop.THRESHOLD, since=timeline.start)
    seen = timeline.seen
    if over is not None:
        seen["drift"] = min(seen.get("drift", over), over)
    # The operator moves the alias, then writes Promoting: whichever the watcher saw first.
    moved = [seen[key] for key in ("alias", "phase:Promoting") if key in seen]
    if moved:
        seen["alias"] = min(moved)
    say("the two figures:")
    if "alias" in seen and "first-step" in seen:
        print(f"    alias moved → canary at first step:       "
              f"{seen['first-step'] - seen['alias']:5.1f} s", flush=True)  # fmt: skip
    if "drift" in seen and "phase:Promoted" in seen:
        print(f"    drift over threshold → candidate promoted: "
              f"{seen['phase:Promoted'] - seen['drift']:5.1f} s", flush=True)  # fmt: skip
    print(f"    (the watcher looks every {WATCH_PERIOD} s plus its queries' time; drift's time is "
          "Prometheus's sample time)", flush=True)  # fmt: skip


@contextmanager
def own_operator(namespace: str) -> Iterator[None]:
    """A namespace and an operator of the act's own, for that namespace only; both removed at
    the end."""
    if get("namespace", namespace) is None:
        kubectl("create", "namespace", namespace)
    log = SITE.operator_log = WORK / "operator.log"
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modeldeploy_operator.cli", "operator", "--namespace",
             namespace, "--metrics-port", str(port)],
            env={**os.environ, "KUBECONFIG": str(KUBECONFIG)},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(
            f"the operator for {namespace} ready (log {log})",
            lambda: proc.poll() is None and _ready(port),
            60,
        )
        say(f"operator for namespace {namespace} running (pid {proc.pid}, log {log})")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make demo-loop", description="The demo's second act: retraining on real drift."
    )
    parser.add_argument(
        "--namespace",
        default=DEMO_NAMESPACE,
        help=f"play in this new namespace with an operator of its own (default: the demo's "
        f"{DEMO_NAMESPACE!r} and its operator)",
    )
    args = parser.parse_args(argv)
    SITE.namespace = args.namespace
    say("act two: retraining on real drift")
    for plural in PLURALS:
        crd = ROOT / "crds" / f"modeldeploy.dev_{plural}.yaml"
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
        kubectl("wait", "--for=condition=Established", f"crd/{plural}.modeldeploy.dev")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    if args.namespace == DEMO_NAMESPACE:
        start_operator()
        play()
    else:
        with own_operator(args.namespace):
            play()
    return 0


def play() -> None:
    host = drift_loop.host_address(real_node())
    prometheus = prometheus_url()
    delete_objects()  # a second run starts over
    (WORK / "data").mkdir()
    (WORK / "mlflow").mkdir()
    mlflow = MlflowServer(WORK / "mlflow", host=host)
    say(f"starting mlflow server at {mlflow.url} (SQLite, artifact proxy)")
    mlflow.start()
    try:
        drift_loop.write_data(WORK / "data")
        with drift_loop.served_files(WORK / "data", host) as data_url:
            champion = drift_loop.register_champion(mlflow, REGISTERED, data_url)
            say(
                f"registered {REGISTERED} version {champion} (iris as it was, with its drift "
                f"reference); alias {drift_loop.ALIAS} → {champion}"
            )
            apply(drift_loop.trainer_config_map())
            apply(drift_loop.target(NAME, mlflow.url, REGISTERED))
            say(f"ModelDeployment {NAME} follows {REGISTERED}@{drift_loop.ALIAS}")
            wait_ready(NAME, timeout=300, namespace=SITE.namespace)
            say(
                "waiting for Prometheus to scrape its pods (a new PodMonitor takes a minute or two)"
            )
            wait_for(
                "Prometheus scraping the pods",
                lambda: drift_loop.scraped(prometheus, SITE.namespace, NAME),
                SCRAPE_TIMEOUT,
            )
            apply(drift_loop.policy(POLICY, NAME, data_url, prometheus, DEFAULT_SERVER_IMAGE))
            say(
                f"RetrainingPolicy {POLICY}: the largest PSI of {NAME}'s pods above "
                f"{drift_loop.THRESHOLD} for 10s starts a run"
            )
            wait_for("the policy Armed", armed, 120)
            service = get("service", NAME)
            if service is None:
                raise SystemExit(f"no Service {NAME}: see {SITE.operator_log}")
            url = drift_loop.predict_url(service, NAME)
            features, _ = drift_loop.iris()
            say(f"sending the shifted world's requests to {url} (petals +2 cm, +0.8 cm)")
            with drift_loop.Traffic(url, drift_loop.shifted(features)) as traffic:
                timeline, run = watch(mlflow, prometheus, champion)
            print(f"    ({traffic.answered} requests answered, {traffic.failed} failed)")
            report(timeline, run, prometheus)
    finally:
        say("cleaning up: the policy, its runs and Jobs, the ModelDeployment, the MLflow server")
        delete_objects()
        mlflow.stop()


if __name__ == "__main__":
    raise SystemExit(main())
