"""Real model servers and a real Prometheus scraping them, for tests that need live metrics.

Each version of a model runs as a real `modeldeploy serve` process on loopback, labelled by the
server itself with `model` and `version`; Prometheus (the Debian `prometheus` binary) scrapes
them every second and adds `namespace` and `pod`, as a Prometheus Operator PodMonitor would.
`traffic()` sends a steady stream of predictions to every server, standing in for clients.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import httpx
import joblib
import numpy as np
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.prometheus.failing_model import ExplodingClassifier
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus")


class Served(Enum):
    """What a version's model does with the iris rows `traffic()` sends."""

    HEALTHY = "an iris LogisticRegression: every prediction answers 200"
    FAILING = "a classifier whose every prediction fails: HTTP 500"
    # A version retrained with a fifth feature: today's 4-feature rows are refused, HTTP 400.
    FIVE_FEATURES = "a LogisticRegression trained on 5 features: iris rows answer 400"


def write_model(directory: Path, served: Served = Served.HEALTHY) -> None:
    features, target = load_iris(return_X_y=True)
    directory.mkdir(parents=True, exist_ok=True)
    if served is Served.FIVE_FEATURES:
        features = np.column_stack([features, features[:, 0] * features[:, 1]])
    model = ExplodingClassifier() if served is Served.FAILING else LogisticRegression(max_iter=500)
    joblib.dump(model.fit(features, target), directory / "model.joblib")


@dataclass
class ServingStack:
    namespace: str
    model: str
    workdir: Path
    servers: dict[str, str] = field(default_factory=dict)  # version → base URL
    prometheus: str = ""
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _prometheus_argv: list[str] = field(default_factory=list)
    _prometheus_proc: subprocess.Popen[bytes] | None = None

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._procs.append(proc)
        return proc

    def start(self, versions: dict[str, Served]) -> None:
        """`versions`: version → what its model does with the traffic."""
        if PROMETHEUS is None:
            raise RuntimeError("the prometheus binary is missing (Debian package `prometheus`)")
        ports = {version: free_port() for version in versions}
        for version, served in versions.items():
            model_dir = self.workdir / f"model-v{version}"
            write_model(model_dir, served)
            self._start(
                f"serve-v{version}",
                [sys.executable, "-m", "modeldeploy_serving.server", "--model-dir",
                 str(model_dir), "--name", self.model, "--version", version, "--host",
                 "127.0.0.1", "--port", str(ports[version]), "--log-level", "warning"],
            )  # fmt: skip
            self.servers[version] = f"http://127.0.0.1:{ports[version]}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": f"{self.namespace}/{self.model}",
                    "static_configs": [
                        {
                            "targets": [f"127.0.0.1:{port}"],
                            "labels": {"namespace": self.namespace, "pod": f"v{version}-0"},
                        }
                        for version, port in ports.items()
                    ],
                }
            ],
        }
        config_file = self.workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        port = free_port()
        self._prometheus_argv = [
            PROMETHEUS, f"--config.file={config_file}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        ]  # fmt: skip
        self.prometheus = f"http://127.0.0.1:{port}"
        self.start_prometheus()
        self._wait(lambda: all(self._ready(url) for url in self.servers.values()), "servers")
        self._wait(lambda: self._scraped() == len(versions), "Prometheus scraping every server")

    def start_prometheus(self) -> None:
        """Start Prometheus (again, after `stop_prometheus`: same address, same storage)."""
        assert self._prometheus_proc is None, "Prometheus is already running"
        self._prometheus_proc = self._start("prometheus", self._prometheus_argv)

    def stop_prometheus(self) -> None:
        """An outage: the process ends, its address refuses connections."""
        proc, self._prometheus_proc = self._prometheus_proc, None
        assert proc is not None, "Prometheus is not running"
        proc.terminate()
        proc.wait(timeout=15)
        self._procs.remove(proc)

    def _ready(self, base: str) -> bool:
        try:
            return httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _scraped(self) -> int:
        try:
            response = httpx.get(
                f"{self.prometheus}/api/v1/query",
                params={"query": f'modeldeploy_model_loaded{{namespace="{self.namespace}"}}'},
                timeout=2,
            )
            return len(response.json()["data"]["result"])
        except (httpx.HTTPError, ValueError, KeyError):
            return 0

    def _wait(self, check: object, what: str, timeout: float = 60) -> None:
        assert callable(check)
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                logs = {p.name: p.read_text()[-400:] for p in self.workdir.glob("*.log")}
                raise AssertionError(f"timed out waiting for {what}; logs: {logs}")
            time.sleep(0.3)

    @contextlib.contextmanager
    def traffic(self, per_second: float = 20) -> Iterator[dict[str, list[int]]]:
        """Predictions to every server until the block ends; yields status codes per version."""
        codes: dict[str, list[int]] = {version: [] for version in self.servers}
        stop = threading.Event()
        rows = load_iris().data

        def send(version: str, base: str) -> None:
            rng = np.random.default_rng(int(version) if version.isdigit() else 0)
            with httpx.Client(timeout=5) as client:
                while not stop.is_set():
                    row = rows[rng.integers(len(rows))].tolist()
                    try:
                        response = client.post(
                            f"{base}/v1/models/{self.model}:predict", json={"instances": [row]}
                        )
                        codes[version].append(response.status_code)
                    except httpx.HTTPError:
                        codes[version].append(0)
                    stop.wait(1 / per_second)

        threads = [
            threading.Thread(target=send, args=item, daemon=True) for item in self.servers.items()
        ]
        for thread in threads:
            thread.start()
        try:
            yield codes
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
