"""A real `mlflow server` as a local process, for the tests and `make demo-loop`: SQLite backend
store, artifacts served over HTTP by its artifact proxy, on 127.0.0.1 (or an address the real
node's pods reach: `host`); registered scikit-learn models logged by MLflow itself. With
`admin_password`, MLflow's own basic-auth app (`--app-name basic-auth`): every request but
/health needs the admin's credentials.

A developer tool (it needs the `mlflow` package of the dev extra): it never runs in the operator
image.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from modeldeploy_operator.demo import free_port

# Logs one scikit-learn model per argument (its C) in a run of its own, as a training script
# would, each registered as the next version of NAME.
REGISTER = """
import sys, mlflow, mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
for c in sys.argv[2:]:
    with mlflow.start_run():
        model = LogisticRegression(C=float(c), max_iter=1000).fit(X, y)
        mlflow.sklearn.log_model(model, name="model", registered_model_name=sys.argv[1])
"""
START_SECONDS = 120.0
ADMIN = "admin"
# MLflow's auth configuration (mlflow/server/auth/basic_auth.ini), its users in SQLite beside.
AUTH_CONFIG = """[mlflow]
default_permission = READ
database_uri = sqlite:///{root}/basic_auth.db
admin_username = {admin}
admin_password = {password}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
"""


class MlflowServer:
    """`mlflow server` in its own process group; stop() and start() again keep its data."""

    def __init__(
        self, root: Path, host: str = "127.0.0.1", admin_password: str | None = None
    ) -> None:
        self.root = root
        self.host = host
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self._env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self._app: list[str] = []
        self.auth: tuple[str, str] | None = None
        if admin_password is not None:
            config = root / "basic_auth.ini"
            config.write_text(AUTH_CONFIG.format(root=root, admin=ADMIN, password=admin_password))
            self.auth = (ADMIN, admin_password)
            self._app = ["--app-name", "basic-auth"]
            self._env |= {
                "MLFLOW_AUTH_CONFIG_PATH": str(config),
                "MLFLOW_FLASK_SERVER_SECRET_KEY": "modeldeploy-tests",
            }
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.root / "server.log"
        self._proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.root}/mlflow.db",
                "--artifacts-destination",
                str(self.root / "artifacts"),
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--workers",
                "1",
                *self._app,
            ],
            cwd=self.root,
            env=self._env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
            start_new_session=True,
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start in {START_SECONDS:.0f}s: {log}")
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)

    def stop(self) -> None:
        if self._proc is None:
            return
        os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._proc = None

    def register(self, name: str, count: int) -> None:
        """Versions 1..count of `name`, each a differently regularised model (distinct files)."""
        credentials = (
            {"MLFLOW_TRACKING_USERNAME": self.auth[0], "MLFLOW_TRACKING_PASSWORD": self.auth[1]}
            if self.auth is not None
            else {}
        )
        subprocess.run(
            [sys.executable, "-c", REGISTER, name, *(str(0.5 + i) for i in range(count))],
            env={**self._env, "MLFLOW_TRACKING_URI": self.url, **credentials},
            cwd=self.root,
            check=True,
            capture_output=True,
        )

    def set_alias(self, name: str, alias: str, version: str) -> None:
        answer = httpx.post(
            f"{self.url}/api/2.0/mlflow/registered-models/alias",
            json={"name": name, "alias": alias, "version": version},
            auth=self.auth,
        )
        answer.raise_for_status()

    def delete_alias(self, name: str, alias: str) -> None:
        answer = httpx.request(
            "DELETE",
            f"{self.url}/api/2.0/mlflow/registered-models/alias",
            json={"name": name, "alias": alias},
            auth=self.auth,
        )
        answer.raise_for_status()


@contextlib.contextmanager
def iris_champion(root: Path, admin_password: str | None = None) -> Iterator[MlflowServer]:
    """A started server (with basic auth when `admin_password` is given) holding iris versions 1
    and 2, alias champion on 2; stopped on exit."""
    server = MlflowServer(root, admin_password=admin_password)
    server.start()
    try:
        server.register("iris", 2)
        server.set_alias("iris", "champion", "2")
        yield server
    finally:
        server.stop()
