"""Real `modeldeploy serve` processes on free loopback ports, for the integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    """`python -m modeldeploy_serving.server ARGS` on 127.0.0.1:<free port>."""

    def __init__(
        self, model_dir: Path, *args: str, name: str = "m", env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "modeldeploy_serving.server",
            "--model-dir",
            str(model_dir),
            "--name",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *args,
        ]
        environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc = subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def wait_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                self.client.get("/v2/health/live")
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("server did not start listening")

    def wait_ready(self, timeout: float = 30) -> None:
        self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client.get("/v2/health/ready").status_code == 200:
                return
            time.sleep(0.05)
        raise AssertionError("server did not become ready")

    def output(self) -> str:
        if self.proc.poll() is None or self.proc.stdout is None:
            return ""
        return self.proc.stdout.read().decode(errors="replace")
