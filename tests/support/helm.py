"""The real `helm` (built by `cluster/build.sh`) driving the chart in `charts/modeldeploy`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.nodes import FAKE_NODE_SELECTOR, FAKE_NODE_TOLERATIONS

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modeldeploy"
BUILD = ROOT / "cluster" / "build.sh"
# `helm template` renders for this Kubernetes version (the local control plane's).
KUBE_VERSION = "1.34.0"

Manifest = dict[str, Any]
Values = dict[str, Any]
# Releases installed into the test cluster run the operator's pods on the fake nodes: the tests
# run the real operator as a process (tests/support/chart.py); the pods prove the chart deploys.
ON_FAKE_NODES: Values = {"nodeSelector": FAKE_NODE_SELECTOR, "tolerations": FAKE_NODE_TOLERATIONS}


class HelmError(RuntimeError):
    """helm exited non-zero; `stderr` holds its message."""

    def __init__(self, args: list[str], stderr: str) -> None:
        super().__init__(f"helm {' '.join(args)}: {stderr.strip()}")
        self.stderr = stderr


def helm_binary() -> Path:
    """The pinned helm, built on first use like the rest of the cluster tooling."""
    paths = subprocess.run([str(BUILD), "paths"], capture_output=True, text=True, check=True)
    line = next(line for line in paths.stdout.splitlines() if line.startswith("HELM="))
    path = Path(line.split("=", 1)[1])
    if not os.access(path, os.X_OK):
        subprocess.run([str(BUILD), "required"], check=True)
    return path


class Helm:
    def __init__(self, binary: Path, kubeconfig: Path | None = None) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(self, *args: str, values: Values | None = None, check: bool = True) -> str:
        """Runs helm; `values` go in as one values file on stdin (JSON is YAML, and keeps every
        type exact where --set would guess)."""
        env = {**os.environ}
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        argv = [*args, "--values", "-"] if values is not None else list(args)
        proc = subprocess.run(
            [str(self.binary), *argv],
            input=json.dumps(values) if values is not None else None,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise HelmError(argv, proc.stderr)
        return proc.stdout

    def template_text(
        self,
        values: Values | None = None,
        *,
        release: str = "modeldeploy",
        namespace: str = "modeldeploy-system",
        chart: Path = CHART,
    ) -> str:
        """The rendered templates as text, comments included (`crds/` is not rendered)."""
        return self.run(
            "template", release, str(chart), "--namespace", namespace,
            "--kube-version", KUBE_VERSION, values=values,
        )  # fmt: skip

    def template(
        self,
        values: Values | None = None,
        *,
        release: str = "modeldeploy",
        namespace: str = "modeldeploy-system",
        chart: Path = CHART,
    ) -> list[Manifest]:
        """The rendered templates, parsed."""
        text = self.template_text(values, release=release, namespace=namespace, chart=chart)
        return [doc for doc in yaml.safe_load_all(text) if doc]

    def install(
        self, release: str, namespace: str, values: Values | None = None, *, chart: Path = CHART
    ) -> None:
        self.run(
            "install", release, str(chart), "--namespace", namespace,
            "--wait", "--timeout", "180s", values={**ON_FAKE_NODES, **(values or {})},
        )  # fmt: skip

    def upgrade(
        self, release: str, namespace: str, values: Values | None = None, *, chart: Path = CHART
    ) -> None:
        self.run(
            "upgrade", release, str(chart), "--namespace", namespace,
            "--wait", "--timeout", "180s", values={**ON_FAKE_NODES, **(values or {})},
        )  # fmt: skip

    def uninstall(self, release: str, namespace: str) -> None:
        self.run("uninstall", release, "--namespace", namespace, "--wait", check=False)
