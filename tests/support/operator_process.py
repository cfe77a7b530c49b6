"""Runs the real operator (`modeldeploy operator`) as a subprocess against the test cluster."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.images import SERVER_IMAGE
from tests.support.kube import TEST_PREFIX
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def _die_with_parent() -> None:
    """An interrupted test run must not leave an operator reconciling the shared cluster."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: Path,
        log_path: Path,
        *extra_args: str,
        namespaces: str = f"{TEST_PREFIX}-*",
    ) -> None:
        """`namespaces`: a glob; tests own `<TEST_PREFIX>-*` (see tests/conftest.py), so operators
        of other runs on the same cluster never reconcile the same objects."""
        self.kubeconfig = kubeconfig
        self.namespaces = namespaces
        self.log_path = log_path
        self.extra_args = extra_args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        command = [
            sys.executable, "-m", "modeldeploy_operator.cli", "operator",
            "--namespace", self.namespaces,
            "--metrics-port", str(self.port),
            "--server-image", SERVER_IMAGE,
            *self.extra_args,
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"operator exited with {self.proc.returncode}; see {self.log_path}"
                )
            if self.probe("/readyz"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"operator not ready after {timeout}s; see {self.log_path}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def probe(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def freeze(self) -> None:
        """Stop the process without letting it exit (SIGSTOP): it says and writes nothing more,
        as a replica whose node went away; `kill` ends it."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()
