"""A small, synchronous view of a real cluster for tests: kubectl with JSON in and out.

Tests talk to the apiserver through the same CLI a user would, so a passing test says something
about what users see; the operator itself uses its own async client.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

Manifest = dict[str, Any]
# Namespaces a test run owns are `<prefix>-*`; runs with different prefixes (set
# MODELDEPLOY_TEST_PREFIX) share one cluster without their operators touching each other. Each
# pytest-xdist worker of a run is such a run of its own (`tgw0-*`, `tgw1-*`, ...; no dash, so
# that `t-*` does not match them).
TEST_PREFIX = os.environ.get("MODELDEPLOY_TEST_PREFIX", "t") + os.environ.get(
    "PYTEST_XDIST_WORKER", ""
)


class KubectlError(RuntimeError):
    """kubectl exited non-zero; `stderr` holds the apiserver's message."""

    def __init__(self, args: list[str], stderr: str) -> None:
        super().__init__(f"kubectl {' '.join(args)}: {stderr.strip()}")
        self.stderr = stderr


class Kubectl:
    def __init__(self, kubeconfig: Path, namespace: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace

    def in_namespace(self, namespace: str) -> Kubectl:
        return Kubectl(self.kubeconfig, namespace)

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> str:
        cmd = ["kubectl", f"--kubeconfig={self.kubeconfig}"]
        if self.namespace:
            cmd.append(f"--namespace={self.namespace}")
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        proc = subprocess.run(
            [*cmd, *args], input=stdin, capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise KubectlError(list(args), proc.stderr)
        return proc.stdout

    def apply(self, *manifests: Manifest, server_side: bool = False) -> None:
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(manifests)})
        extra = ["--server-side", "--field-manager=tests"] if server_side else []
        self.run("apply", *extra, "-f", "-", stdin=body)

    def create(self, manifest: Manifest) -> Manifest:
        out = self.run("create", "-o", "json", "-f", "-", stdin=json.dumps(manifest))
        return dict(json.loads(out))

    def get(self, kind: str, name: str) -> Manifest | None:
        out = self.run("get", kind, name, "-o", "json", "--ignore-not-found")
        return dict(json.loads(out)) if out.strip() else None

    def list(self, kind: str, selector: str | None = None) -> list[Manifest]:
        args = ["get", kind, "-o", "json"]
        if selector:
            args += ["-l", selector]
        return list(json.loads(self.run(*args))["items"])

    def delete(self, kind: str, name: str, wait: bool = False) -> None:
        self.run("delete", kind, name, "--ignore-not-found", f"--wait={str(wait).lower()}")

    @contextlib.contextmanager
    def watch(self, kind: str, name: str, template: str) -> Iterator[Watch]:
        """Every state of one object while the block runs, one per watch event rendered with a
        kubectl jsonpath `template`: unlike polling, no transient value is missed."""
        # A field selector, not a name: the object may not exist yet when the watch starts.
        cmd = ["kubectl", f"--kubeconfig={self.kubeconfig}", "get", kind, "--watch"]
        cmd.append(f"--field-selector=metadata.name={name}")
        if self.namespace:
            cmd.append(f"--namespace={self.namespace}")
        cmd += ["-o", f'jsonpath={{.metadata.resourceVersion}} {template}{{"\\n"}}']
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        watch = Watch(self, kind, name)
        assert proc.stdout is not None
        reader = threading.Thread(target=watch.read, args=(proc.stdout,))
        reader.start()
        try:
            yield watch
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            reader.join(timeout=10)


class Watch:
    """What `Kubectl.watch` has seen so far: `states`, in order."""

    def __init__(self, k: Kubectl, kind: str, name: str) -> None:
        self.k, self.kind, self.name = k, kind, name
        self.states: list[str] = []
        self._versions: list[str] = []

    def read(self, lines: Iterable[str]) -> None:
        for line in lines:
            version, _, state = line.rstrip("\n").partition(" ")
            if version:
                self._versions.append(version)
                self.states.append(state)

    def wait_caught_up(self) -> None:
        """Until the watch has delivered the object's current version: every write made so far
        is then in `states`."""
        body = self.k.get(self.kind, self.name)
        assert body is not None, f"{self.kind}/{self.name} does not exist"
        latest = body["metadata"]["resourceVersion"]
        eventually(lambda: latest in self._versions, what=f"{self.kind}/{self.name}@{latest}")


def eventually(
    probe: Callable[[], Any],
    timeout: float = 60.0,
    interval: float = 0.5,
    what: str = "",
    retrying: tuple[type[Exception], ...] = (),
) -> Any:
    """Poll `probe` until it returns something truthy; fail with the last value seen. A
    KubectlError, or one of the `retrying` errors, counts as a falsy answer."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except (KubectlError, *retrying) as err:
            last = err
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or probe}: {last!r}"
            )
        time.sleep(interval)
