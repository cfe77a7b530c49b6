"""The generated alert rules, proven in a real Prometheus scraping real model servers.

Two `modeldeploy serve` processes stand for two versions of ModelDeployment ml/iris: version 1
a healthy LogisticRegression with a drift reference, version 2 a model whose predict crashes.
A real `prometheus` scrapes both every second, exactly as the PodMonitor asks (port `http`'s
server, path `/metrics`, the Prometheus Operator's `namespace`/`pod`/`container` target labels),
and evaluates the `spec.groups` of the PrometheusRule that `desired_monitoring` returns, with
short `for` durations set through `spec.monitoring.thresholds`. Then:

- traffic to version 2 fails → ModelDeploymentHighErrorRate fires for version 2, not for 1;
- normal inputs to version 1 keep drift low and the drift alert quiet; shifted inputs (one
  feature moved beyond its training range) → ModelDeploymentInputDrift fires for that feature.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
import yaml
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.monitoring import desired_monitoring, scrape
from modeldeploy_serving.drift import build_reference, save_reference
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.prometheus.failing_model import ExplodingClassifier
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus")
NAMESPACE, NAME = "ml", "iris"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
DRIFTING = 2  # petal_length
DRIFT_PSI = 0.25

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.timeout(180),
    pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus binary (Debian: prometheus)"),
]


def _wait_until(what: str, check: Callable[[], bool], timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if check():
                return
        time.sleep(0.2)
    tails = "\n".join(f"--- {p.name}:\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tails}")


def _answers_200(url: str) -> Callable[[], bool]:
    return lambda: httpx.get(url).status_code == 200


def _model_deployment() -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "0000-test"},
            "spec": {
                "model": {"format": "sklearn", "version": "2", "storageUri": "file:///m/x"},
                "monitoring": {
                    "thresholds": {"errorRateFor": "1s", "driftFor": "1s", "driftPsi": DRIFT_PSI}
                },
            },
        }
    )


@dataclass
class Stack:
    prometheus: str
    servers: dict[str, str]  # version → base URL
    training: np.ndarray
    logs: list[Path]

    def alerts(self, name: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus}/api/v1/alerts", timeout=5)
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == name]

    def firing(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts(name) if a["state"] == "firing"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=5)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result


def _write_models(tmp: Path) -> tuple[Path, Path, np.ndarray]:
    iris = load_iris()
    X, y = iris.data.astype(np.float64), iris.target
    good, bad = tmp / "model-v1", tmp / "model-v2"
    good.mkdir()
    bad.mkdir()
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), good / "model.joblib")
    save_reference(build_reference(X, FEATURES), good)
    joblib.dump(ExplodingClassifier().fit(X, y), bad / "model.joblib")
    return good, bad, X


def _prometheus_config(
    md: ModelDeployment, servers: dict[str, int], rules_file: Path
) -> dict[str, Any]:
    """What the Prometheus Operator would generate from the PodMonitor, with static targets and
    1s intervals instead of Kubernetes service discovery and 15s."""
    manifests, _ = desired_monitoring(
        md, service_monitor_available=True, rules_available=True, extra_labels={}
    )
    (monitor,) = [m for m in manifests if m["kind"] == scrape.KIND]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_file)],
        "scrape_configs": [
            {
                "job_name": f"{NAMESPACE}/{monitor['metadata']['name']}",
                "metrics_path": endpoint["path"],
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{port}"],
                        "labels": {
                            "namespace": NAMESPACE,
                            "pod": f"{NAME}-v{version}-0",
                            "container": "server",
                        },
                    }
                    for version, port in servers.items()
                ],
            }
        ],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("prometheus")
    good, bad, training = _write_models(tmp)
    md = _model_deployment()
    manifests, status = desired_monitoring(
        md, service_monitor_available=True, rules_available=True, extra_labels={}
    )
    assert status == "PodMonitor and PrometheusRule created"
    (rule,) = [m for m in manifests if m["kind"] == "PrometheusRule"]
    rules_file = tmp / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))

    ports = {"1": free_port(), "2": free_port()}
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump(_prometheus_config(md, ports, rules_file)))
    prometheus_port = free_port()

    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    def start(name: str, argv: list[str]) -> None:
        log = tmp / f"{name}.log"
        logs.append(log)
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    argv,
                    cwd=ROOT,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )

    try:
        for version, model_dir in (("1", good), ("2", bad)):
            start(
                f"serve-v{version}",
                [
                    sys.executable,
                    "-m",
                    "modeldeploy_serving.server",
                    "--model-dir",
                    str(model_dir),
                    "--name",
                    NAME,
                    "--version",
                    version,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports[version]),
                    "--drift-window",
                    "8",
                    "--drift-min-rows",
                    "50",
                    "--log-level",
                    "warning",
                ],
            )
        assert PROMETHEUS is not None
        start(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--log.level=warn",
            ],
        )
        stack = Stack(
            prometheus=f"http://127.0.0.1:{prometheus_port}",
            servers={v: f"http://127.0.0.1:{p}" for v, p in ports.items()},
            training=training,
            logs=logs,
        )
        for base in stack.servers.values():
            _wait_until(f"{base} ready", _answers_200(f"{base}/v2/health/ready"), 60, logs)
        _wait_until(
            "Prometheus to load the rules and scrape both servers",
            lambda: (
                len(stack.query(f'modeldeploy_model_loaded{{namespace="{NAMESPACE}"}} == 1')) == 2
            ),
            30,
            logs,
        )
        yield stack
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def _traffic(base: str, rows: Callable[[], np.ndarray]) -> Iterator[list[int]]:
    """Predict requests against `base` in a background thread until the block ends; yields the
    status codes seen so far."""
    codes: list[int] = []
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(base_url=base, timeout=5) as client:
            while not stop.is_set():
                body = {"instances": rows().tolist()}
                codes.append(client.post(f"/v1/models/{NAME}:predict", json=body).status_code)
                stop.wait(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield codes
    finally:
        stop.set()
        thread.join(timeout=10)


def _sampler(training: np.ndarray, shift: float = 0.0) -> Callable[[], np.ndarray]:
    rng = np.random.default_rng(7)

    def rows() -> np.ndarray:
        batch = training[rng.integers(0, len(training), size=20)].copy()
        batch[:, DRIFTING] += shift
        return batch

    return rows


def test_error_rate_alert_fires_for_the_failing_version(stack: Stack) -> None:
    with (
        _traffic(stack.servers["2"], _sampler(stack.training)) as failing,
        _traffic(stack.servers["1"], _sampler(stack.training)) as healthy,
    ):
        _wait_until(
            "ModelDeploymentHighErrorRate to fire",
            lambda: bool(stack.firing("ModelDeploymentHighErrorRate")),
            60,
            stack.logs,
        )
    assert failing and set(failing) == {500}
    assert healthy and set(healthy) == {200}
    (alert,) = stack.firing("ModelDeploymentHighErrorRate")
    assert alert["labels"]["version"] == "2"
    assert alert["labels"]["namespace"] == NAMESPACE and alert["labels"]["model"] == NAME
    assert alert["labels"]["severity"] == "critical"
    assert float(alert["value"]) == pytest.approx(100.0)
    annotations = alert["annotations"]
    assert "version 2" in annotations["summary"] and "<no value>" not in str(annotations)
    assert f"{NAMESPACE}/{NAME}" in annotations["description"]
    assert "modeldeploy.dev/version=2" in annotations["runbook"]


def test_drift_alert_fires_on_shifted_inputs_only(stack: Stack) -> None:
    drift = f'modeldeploy_feature_drift{{namespace="{NAMESPACE}",model="{NAME}",version="1"}}'
    with _traffic(stack.servers["1"], _sampler(stack.training)):
        _wait_until(
            "drift of normal inputs to be reported for every feature",
            lambda: len(stack.query(drift)) == len(FEATURES),
            30,
            stack.logs,
        )
        time.sleep(2)  # a few evaluations with the normal inputs
        normal = {r["metric"]["feature"]: float(r["value"][1]) for r in stack.query(drift)}
        assert max(normal.values()) < DRIFT_PSI, normal
        assert stack.alerts("ModelDeploymentInputDrift") == []

    with _traffic(stack.servers["1"], _sampler(stack.training, shift=4.0)):
        _wait_until(
            "ModelDeploymentInputDrift to fire",
            lambda: bool(stack.firing("ModelDeploymentInputDrift")),
            60,
            stack.logs,
        )
    shifted = {r["metric"]["feature"]: float(r["value"][1]) for r in stack.query(drift)}
    assert shifted[FEATURES[DRIFTING]] > DRIFT_PSI, shifted
    features = {a["labels"]["feature"] for a in stack.alerts("ModelDeploymentInputDrift")}
    assert features == {FEATURES[DRIFTING]}, shifted
    (alert,) = stack.firing("ModelDeploymentInputDrift")
    assert alert["labels"]["version"] == "1" and alert["labels"]["severity"] == "warning"
    assert FEATURES[DRIFTING] in alert["annotations"]["summary"]
