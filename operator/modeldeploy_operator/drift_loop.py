"""The retraining loop on real drift, on the local cluster: the pieces that `make demo-loop`
(demo_loop.py) and the real-drift e2e test (tests/e2e/test_retraining_drift.py) share, so the
demo shows what the test checks.

The story both tell: a champion trained on iris as it was, registered with its drift reference
(`examples/retraining/train.py --drift-reference`), serves on the real node behind a
ModelDeployment that follows the alias `champion`. Then the world shifts: the petals are measured
with a recalibrated instrument that reads 2 cm and 0.8 cm longer (`SHIFT`). Requests of the
shifted world reach the model's Service, the server's PSI against the reference rises, the real
Prometheus scrapes it (the operator's PodMonitor), and the policy's metric trigger (its default
query: the target's largest PSI) holds above the threshold. The run trains the same example on
labelled data of the shifted world, the evaluator scores candidate and champion on a holdout of
the shifted world (where the champion's boundaries are off), the gate passes, the alias moves and
the canary promotes the candidate.

A developer tool (numpy, scikit-learn, httpx): it never runs in the operator image.
"""

from __future__ import annotations

import functools
import http.server
import ipaddress
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import httpx
import numpy as np

from modeldeploy_operator.local_mlflow import MlflowServer
from modeldeploy_operator.monitoring import metrics as m

ROOT: Final = Path(__file__).resolve().parents[2]
TRAINER: Final = ROOT / "examples" / "retraining" / "train.py"
TRAINER_CONFIG_MAP: Final = "trainer"
ALIAS: Final = "champion"
FEATURES: Final = ("sepal_length", "sepal_width", "petal_length", "petal_width")
LABEL: Final = "label"
# The shifted world: petal length and width read this much longer (centimetres).
SHIFT: Final = (0.0, 0.0, 2.0, 0.8)
# What the champion trained on (iris as it was), and what a run trains on and is judged on (the
# shifted world, a fixed split).
CHAMPION_DATA: Final = "champion.csv"
TRAIN_DATA: Final = "train.csv"
HOLDOUT_DATA: Final = "holdout.csv"
HOLDOUT_ROWS: Final = 45
# PSI above 0.25 is a significant shift by the usual rule of thumb (drift.py); the shifted
# requests give several times that, in-distribution ones well under 0.1.
THRESHOLD: Final = 0.25
# The gate: the candidate must be good in the shifted world, and clearly better than the
# champion there.
MIN_ACCURACY: Final = 0.8
MIN_IMPROVEMENT: Final = 0.1


def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True)
    return np.asarray(features, dtype=np.float64), np.asarray(labels)


def shifted(features: np.ndarray) -> np.ndarray:
    """Rows as the recalibrated instrument measures them."""
    moved: np.ndarray = features + np.array(SHIFT)
    return moved


def _write_csv(path: Path, features: np.ndarray, labels: np.ndarray) -> None:
    lines = [",".join([*FEATURES, LABEL])]
    lines += [
        ",".join([*(f"{v:g}" for v in row), str(int(label))])
        for row, label in zip(features, labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")


def write_data(directory: Path) -> None:
    """`CHAMPION_DATA`: every iris row as it was; `TRAIN_DATA` and `HOLDOUT_DATA`: the shifted
    world, 105 and 45 rows of a fixed permutation."""
    features, labels = iris()
    _write_csv(directory / CHAMPION_DATA, features, labels)
    order = np.random.default_rng(7).permutation(len(labels))
    train, holdout = order[:-HOLDOUT_ROWS], order[-HOLDOUT_ROWS:]
    moved = shifted(features)
    _write_csv(directory / TRAIN_DATA, moved[train], labels[train])
    _write_csv(directory / HOLDOUT_DATA, moved[holdout], labels[holdout])


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: every trainer and evaluator downloads."""


@contextmanager
def served_files(directory: Path, host: str) -> Iterator[str]:
    """`directory` over HTTP on `host` (an address the real node's pods reach); its base URL."""
    handler = functools.partial(_QuietFiles, directory=str(directory))
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def host_address(node: Mapping[str, Any]) -> str:
    """This host's address on the real node's network: what its pods reach the host at (the
    node's own InternalIP when the node's address is the host's, as cluster/node/up.sh sets)."""
    internal = ipaddress.ip_address(
        next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    )
    listing = subprocess.run(
        ["ip", "-o", "-4", "addr"], check=True, capture_output=True, text=True
    ).stdout
    interfaces = [ipaddress.ip_interface(line.split()[3]) for line in listing.splitlines()]
    if any(interface.ip == internal for interface in interfaces):
        return str(internal)
    for interface in interfaces:
        if internal in interface.network:
            return str(interface.ip)
    raise RuntimeError(f"no address of this host on the network of the real node ({internal})")


def register_champion(mlflow: MlflowServer, registered: str, data_url: str) -> str:
    """Train the example on iris as it was, register it with its drift reference, point the
    alias at it; its version."""
    env = {
        **os.environ,
        "MODELDEPLOY_RETRAINING_RUN": "initial",
        "MODELDEPLOY_REGISTERED_MODEL": registered,
        "MLFLOW_TRACKING_URI": mlflow.url,
    }
    trained = subprocess.run(
        [sys.executable, str(TRAINER), "--data", f"{data_url}/{CHAMPION_DATA}",
         "--drift-reference"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    version = trained.stdout.split(f"registered {registered} version ")[1].split()[0]
    mlflow.set_alias(registered, ALIAS, version)
    return version


def trainer_config_map() -> dict[str, Any]:
    """The example trainer, mounted into the run's training Job."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": TRAINER_CONFIG_MAP},
        "data": {"train.py": TRAINER.read_text()},
    }


def target(
    name: str,
    tracking_uri: str,
    registered: str,
    node_selector: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A ModelDeployment of real pods following `ALIAS`, scraped by the Prometheus Operator (a
    PodMonitor), with one short canary step: the registry-driven rollout a run's promotion
    starts."""
    server: dict[str, Any] = {"resources": {"requests": {"cpu": "50m", "memory": "128Mi"}}}
    if node_selector is not None:
        server["nodeSelector"] = dict(node_selector)
    return {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {
                "format": "sklearn",
                "source": {
                    "mlflow": {
                        "trackingUri": tracking_uri,
                        "registeredModel": registered,
                        "follow": {"alias": ALIAS},
                        "pollInterval": "5s",
                    }
                },
            },
            "replicas": 1,
            "server": server,
            "rollout": {"strategy": "Canary", "steps": [50], "stepInterval": "10s"},
            "monitoring": {"serviceMonitor": "Enabled", "rules": "Disabled"},
        },
    }


def policy(
    name: str,
    target_name: str,
    data_url: str,
    prometheus_url: str,
    image: str,
    hold_for: str = "10s",
    node_selector: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A RetrainingPolicy on the target's real drift: the default query (its largest PSI) above
    `THRESHOLD` for `hold_for`; the example trainer on the shifted world's data; a cooldown
    that lets one run start in the time a demo or a test takes."""
    pod: dict[str, Any] = {
        "containers": [
            {
                "name": "train",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["python", "/opt/trainer/train.py"],
                "args": ["--data", f"{data_url}/{TRAIN_DATA}", "--drift-reference"],
                "volumeMounts": [{"name": "trainer", "mountPath": "/opt/trainer"}],
            }
        ],
        "volumes": [{"name": "trainer", "configMap": {"name": TRAINER_CONFIG_MAP}}],
    }
    if node_selector is not None:
        pod["nodeSelector"] = dict(node_selector)
    return {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "RetrainingPolicy",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"name": target_name},
            "triggers": {
                "metric": {
                    "above": THRESHOLD,
                    "holdFor": hold_for,
                    "prometheusUrl": prometheus_url,
                }
            },
            "guards": {"cooldown": "30m", "maxRuns": 3, "window": "1h"},
            "training": {"timeout": "5m", "jobTemplate": {"template": {"spec": pod}}},
            "evaluation": {
                "holdoutUri": f"{data_url}/{HOLDOUT_DATA}",
                "metrics": [
                    {
                        "name": "accuracy",
                        "threshold": MIN_ACCURACY,
                        "minImprovement": MIN_IMPROVEMENT,
                    },
                    {"name": "f1Macro"},
                ],
                "timeout": "5m",
                "promotionTimeout": "10m",
            },
        },
    }


def predict_url(service: Mapping[str, Any], model: str) -> str:
    """The KServe V1 predict endpoint of a model's Service, at its cluster IP."""
    port = service["spec"]["ports"][0]["port"]
    return f"http://{service['spec']['clusterIP']}:{port}/v1/models/{model}:predict"


class Traffic:
    """Requests from a background thread to a model's V1 predict endpoint: `batch` rows each,
    cycling through `rows`, `rate` requests a second, until stopped. A request that fails is
    counted, not raised (pods come and go during a rollout)."""

    def __init__(self, url: str, rows: np.ndarray, rate: float = 5.0, batch: int = 10) -> None:
        self.url = url
        self.rows = rows
        self.rate = rate
        self.batch = batch
        self.answered = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        start = 0
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                picked = np.take(self.rows, range(start, start + self.batch), axis=0, mode="wrap")
                start += self.batch
                try:
                    response = client.post(self.url, json={"instances": picked.tolist()})
                    if response.status_code == 200:
                        self.answered += 1
                    else:
                        self.failed += 1
                except httpx.HTTPError:
                    self.failed += 1
                self._stop.wait(1 / self.rate)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def drift_selector(namespace: str, model: str) -> str:
    return m.selector(m.FEATURE_DRIFT, m.model_scope(namespace, model))


def prometheus_query(prometheus_url: str, query: str) -> list[dict[str, Any]]:
    """An instant query's result (Prometheus's HTTP API)."""
    answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=10)
    answer.raise_for_status()
    body = answer.json()
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus answered {json.dumps(body)[:500]}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scraped(prometheus_url: str, namespace: str, model: str) -> bool:
    """Whether Prometheus holds the model's series yet (a new PodMonitor reaches Prometheus's
    configuration within about a minute or two)."""
    loaded = m.selector(m.MODEL_LOADED, m.model_scope(namespace, model))
    return bool(prometheus_query(prometheus_url, loaded))


def drift_samples(
    prometheus_url: str, namespace: str, model: str, lookback: str = "30m"
) -> list[tuple[float, str, float]]:
    """Every PSI sample Prometheus scraped from the model's pods in `lookback`, as (time,
    feature, value), oldest first."""
    series = prometheus_query(prometheus_url, f"{drift_selector(namespace, model)}[{lookback}]")
    samples = [
        (float(t), str(s["metric"].get("feature", "")), float(v))
        for s in series
        for t, v in s["values"]
    ]
    return sorted(samples)


def first_over(
    samples: list[tuple[float, str, float]], threshold: float, since: float
) -> float | None:
    """The time of the first sample above `threshold` at or after `since` (a Unix time: an
    earlier run of the same model in the same namespace left its samples): when drift went over
    it, as scraped."""
    return next((t for t, _, value in samples if t >= since and value > threshold), None)
