"""pytest plugin: every operator the test suite starts authenticates as the Helm chart's
ServiceAccount instead of the cluster admin, so the e2e suite proves the chart's RBAC is enough.

    pytest -p tests.chart.as_service_account tests/e2e

At session start the chart is installed (cluster-wide, into a namespace of its own) and a
kubeconfig with a token of its ServiceAccount is written; `OperatorProcess` then uses that
kubeconfig. The release and its namespace are removed at the end.

To see such a run fail, take one verb away from the installed ClusterRole:

    MODELDEPLOY_E2E_DROP_VERB=apps/deployments:create pytest -p tests.chart.as_service_account ...
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import operator_process
from tests.support.helm import Helm, helm_binary
from tests.support.kube import Kubectl
from tests.support.service_account import chart_service_account, username, write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
LOCAL_KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
RELEASE = "md"
TOKEN_DURATION = "6h"


class ChartServiceAccount:
    def __init__(self) -> None:
        self.namespace = f"e2e-sa-{uuid.uuid4().hex[:6]}"
        self.kubeconfig: Path | None = None
        self.admin: Kubectl | None = None
        self.helm: Helm | None = None
        self.patch = pytest.MonkeyPatch()

    def setup(self) -> None:
        configured = os.environ.get("KUBECONFIG")
        admin_config = Path(configured) if configured else LOCAL_KUBECONFIG
        if admin_config.resolve() == LOCAL_KUBECONFIG.resolve():
            subprocess.run([str(ROOT / "cluster" / "up.sh")], check=True)
        self.admin = Kubectl(admin_config)
        self.helm = Helm(helm_binary(), admin_config)
        self.admin.create({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": self.namespace}})  # fmt: skip
        self.helm.install(RELEASE, self.namespace, {"watchNamespaces": self._watched()})
        drop = os.environ.get("MODELDEPLOY_E2E_DROP_VERB")
        if drop:
            self._drop_verb(drop)
        account = chart_service_account(self.admin, RELEASE, self.namespace)
        path = Path(tempfile.mkdtemp(prefix="modeldeploy-sa-")) / "kubeconfig"
        self.kubeconfig = write_kubeconfig(
            self.admin, self.namespace, account, path, TOKEN_DURATION
        )
        original = operator_process.OperatorProcess.__init__
        kubeconfig = self.kubeconfig

        def as_service_account(
            process: operator_process.OperatorProcess, _: Path, *args: Any, **kwargs: Any
        ) -> None:
            original(process, kubeconfig, *args, **kwargs)

        self.patch.setattr(operator_process.OperatorProcess, "__init__", as_service_account)
        print(f"\noperators authenticate as {username(self.namespace, account)}")

    @staticmethod
    def _watched() -> list[str]:
        """What the suite's operators watch (OperatorProcess's `namespaces` glob, if it has one),
        so the chart grants for that scope."""
        parameter = inspect.signature(operator_process.OperatorProcess).parameters.get("namespaces")
        if parameter is None or not parameter.default:
            return []
        return [str(parameter.default)]

    def _drop_verb(self, spec: str) -> None:
        """`group/resource:verb` ("" group for core: `/pods:list`) removed from the ClusterRole."""
        assert self.admin is not None
        target, verb = spec.rsplit(":", 1)
        group, resource = target.split("/", 1)
        name = f"{self.namespace}-{RELEASE}-modeldeploy"
        role = json.loads(self.admin.run("get", "clusterrole", name, "-o", "json"))
        for field in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
            role["metadata"].pop(field, None)
        dropped = False
        for rule in role["rules"]:
            if (
                group in rule["apiGroups"]
                and resource in rule["resources"]
                and verb in rule["verbs"]
            ):
                rule["verbs"].remove(verb)
                dropped = True
        assert dropped, f"{spec} is not granted by the chart"
        self.admin.run("replace", "-f", "-", stdin=json.dumps(role))
        print(f"\ndropped {spec} from clusterrole/{name}")

    def teardown(self) -> None:
        self.patch.undo()
        if self.helm is not None:
            self.helm.uninstall(RELEASE, self.namespace)
        if self.admin is not None:
            self.admin.delete("namespace", self.namespace)


_SESSION = ChartServiceAccount()


def pytest_sessionstart(session: pytest.Session) -> None:
    _SESSION.setup()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _SESSION.teardown()
