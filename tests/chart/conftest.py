"""Fixtures for the chart tests: the real helm, a chart release in a fresh namespace, and the
real operator authenticated as the release's ServiceAccount."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.helm import Helm, Values, helm_binary
from tests.support.kube import Kubectl
from tests.support.operator_process import ROOT, OperatorProcess
from tests.support.service_account import chart_service_account, write_kubeconfig


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(helm_binary())


@pytest.fixture(scope="session")
def cluster_helm(helm: Helm, kubeconfig: Path) -> Helm:
    return Helm(helm.binary, kubeconfig)


class NamespacedOperator(OperatorProcess):
    """The real operator limited to some namespaces (`-n`), as the chart runs it with
    watchNamespaces; OperatorProcess runs it cluster-wide."""

    def __init__(self, kubeconfig: Path, log_path: Path, namespaces: list[str], *extra: str):
        super().__init__(kubeconfig, log_path, *extra)
        self.namespaces = namespaces

    def start(self, timeout: float = 60.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Starts the process without waiting for it to be ready."""
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        command = [
            sys.executable, "-m", "modeldeploy_operator.cli", "operator",
            *(f"--namespace={n}" for n in self.namespaces),
            "--metrics-port", str(self.port), *self.extra_args,
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}: {self.log()}")
            if self.probe("/readyz"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"operator not ready after {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Release:
    """An installed chart release: its namespace, values and ServiceAccount."""

    def __init__(self, helm: Helm, kube: Kubectl, name: str, namespace: str, values: Values):
        self.helm = helm
        self.kube = kube
        self.name = name
        self.namespace = namespace
        self.values = values

    @property
    def service_account(self) -> str:
        return chart_service_account(self.kube, self.name, self.namespace)

    def kubeconfig(self, path: Path) -> Path:
        return write_kubeconfig(self.kube, self.namespace, self.service_account, path)


def fresh_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def install(
    cluster_helm: Helm, kube: Kubectl, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Release]]:
    """install(values) → a Release in a namespace of its own (and `models` namespaces created
    for its watchNamespaces); everything is removed afterwards."""
    created: list[tuple[str, str]] = []
    namespaces: list[str] = []
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:20].strip("-")

    def make_namespace(name: str) -> None:
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        namespaces.append(name)

    def do_install(values: Values | None = None, **kw: Any) -> Release:
        values = dict(values or {})
        namespace = fresh_name(f"c-{base}")
        make_namespace(namespace)
        for watched in values.get("watchNamespaces", []):
            make_namespace(watched)
        release = "md"
        cluster_helm.install(release, namespace, values, **kw)
        created.append((release, namespace))
        return Release(cluster_helm, kube, release, namespace, values)

    yield do_install
    for release, namespace in created:
        cluster_helm.uninstall(release, namespace)
    for namespace in namespaces:
        kube.delete("namespace", namespace)


@pytest.fixture
def operator_as(
    tmp_path: Path,
) -> Iterator[Callable[[Release, list[str], tuple[str, ...]], NamespacedOperator]]:
    """operator_as(release, namespaces, extra_args) → the real operator, started, authenticated
    as the release's ServiceAccount and watching `namespaces`."""
    started: list[NamespacedOperator] = []

    def start(
        release: Release, namespaces: list[str], extra: tuple[str, ...] = ()
    ) -> NamespacedOperator:
        kubeconfig = release.kubeconfig(tmp_path / f"{release.namespace}.kubeconfig")
        proc = NamespacedOperator(
            kubeconfig, tmp_path / f"operator-{len(started)}.log", namespaces, *extra
        )
        started.append(proc)
        proc.start()
        return proc

    yield start
    for proc in started:
        proc.stop()
