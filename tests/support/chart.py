"""The Helm chart installed into the test cluster, and the real operator running as its
ServiceAccount.

    with ChartInstaller(helm, kube, "tchart-mytest") as installer:
        release = installer.install({"watchNamespaces": ["tchart-models-1a2b3c"]})
        operator = release.operator("tchart-models-1a2b3c", tmp_path)   # started, authenticated
                                                                         # by the SA's token

Namespaces are named `<prefix>chart-*`, outside the `<prefix>-*` glob of every test operator
(this run's and those of other runs sharing the cluster under other prefixes), so no other
operator reconciles what a chart test's operator is being judged on.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import TracebackType

from tests.support.helm import Helm, Values
from tests.support.kube import TEST_PREFIX, Kubectl
from tests.support.operator_process import OperatorProcess
from tests.support.service_account import chart_service_account, username, write_kubeconfig

RELEASE = "md"
CHART_PREFIX = f"{TEST_PREFIX}chart"


def fresh_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


class Release:
    """An installed chart release: its namespace, values and ServiceAccount."""

    def __init__(self, helm: Helm, kube: Kubectl, name: str, namespace: str, values: Values):
        self.helm = helm
        self.kube = kube
        self.name = name
        self.namespace = namespace
        self.values = values
        self._operators: list[OperatorProcess] = []

    @property
    def service_account(self) -> str:
        return chart_service_account(self.kube, self.name, self.namespace)

    @property
    def user(self) -> str:
        """The user the apiserver sees for the release's operator."""
        return username(self.namespace, self.service_account)

    @property
    def cluster_name(self) -> str:
        """Name of the release's cluster-scoped objects (and of its Roles and peering object)."""
        return f"{self.namespace}-{self.name}-modeldeploy"

    def kubeconfig(self, path: Path) -> Path:
        return write_kubeconfig(self.kube, self.namespace, self.service_account, path)

    def operator(
        self, watched: str, workdir: Path, *extra: str, start: bool = True
    ) -> OperatorProcess:
        """The real operator watching `watched`, authenticated as the release's ServiceAccount;
        stopped with the release."""
        index = len(self._operators)
        kubeconfig = self.kubeconfig(workdir / f"{self.namespace}-{index}.kubeconfig")
        proc = OperatorProcess(
            kubeconfig, workdir / f"operator-{index}.log", *extra, namespaces=watched
        )
        self._operators.append(proc)
        if start:
            proc.start()
        return proc

    def stop_operators(self) -> None:
        for proc in self._operators:
            proc.stop()


class ChartInstaller:
    """Installs releases into fresh `c-*` namespaces (and creates their watched namespaces);
    removes all of it on close."""

    def __init__(self, helm: Helm, kube: Kubectl, prefix: str) -> None:
        self.helm = helm
        self.kube = kube
        self.prefix = prefix
        self.releases: list[Release] = []
        self.namespaces: list[str] = []

    def __enter__(self) -> ChartInstaller:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def namespace(self, name: str) -> str:
        self.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        self.namespaces.append(name)
        return name

    def install(self, values: Values | None = None) -> Release:
        values = dict(values or {})
        namespace = self.namespace(fresh_name(self.prefix))
        for watched in values.get("watchNamespaces", []):
            self.namespace(watched)
        self.helm.install(RELEASE, namespace, values)
        release = Release(self.helm, self.kube, RELEASE, namespace, values)
        self.releases.append(release)
        return release

    def close(self) -> None:
        for release in self.releases:
            release.stop_operators()
            self.helm.uninstall(release.name, release.namespace)
        for namespace in self.namespaces:
            self.kube.delete("namespace", namespace)
