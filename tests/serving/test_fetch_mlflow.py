"""`modeldeploy fetch models:/...` against a real `mlflow server` (sqlite backend, local artifact
root, artifact proxy) holding a registered scikit-learn model with an alias; then served."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from modeldeploy_serving.errors import FetchError
from modeldeploy_serving.fetch import FetchOptions, fetch
from modeldeploy_serving.model import ServedModel
from sklearn.datasets import load_iris

from tests.serving.process import ServerProcess
from tests.support.ports import free_port

X, _ = load_iris(return_X_y=True)

REGISTER = """
import sys, joblib, mlflow, mlflow.sklearn
from mlflow import MlflowClient
model = joblib.load(sys.argv[1])
mlflow.sklearn.log_model(model, name="model", registered_model_name="iris")
mlflow.sklearn.log_model(model, name="model", registered_model_name="iris")
MlflowClient().set_registered_model_alias("iris", "champion", "2")
"""


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root}/mlflow.db",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(root / "server.log", "wb"),  # noqa: SIM115 - closed with the process
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (root / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        model = LogisticRegression(max_iter=1000).fit(*load_iris(return_X_y=True))
        joblib.dump(model, root / "model.joblib")
        subprocess.run(
            [sys.executable, "-c", REGISTER, str(root / "model.joblib")],
            env={**env, "MLFLOW_TRACKING_URI": url},
            cwd=root,
            check=True,
            capture_output=True,
        )
        yield url, model
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_version_and_alias_resolve_download_and_serve(
    mlflow_server: tuple[str, object], tmp_path: Path
) -> None:
    url, model = mlflow_server
    options = FetchOptions(mlflow_tracking_uri=url)
    by_version = fetch("models:/iris/1", tmp_path / "v1", None, options)
    assert by_version.name == "model.skops"  # MLflow 3 saves scikit-learn models with skops
    assert {p.name for p in (tmp_path / "v1").iterdir()} >= {"MLmodel", "model.skops"}
    loaded = ServedModel.load(tmp_path / "v1")
    assert np.array_equal(loaded.predict(X), model.predict(X))  # type: ignore[attr-defined]

    by_alias = fetch("models:/iris@champion", tmp_path / "champion", None, options)
    digest = ServedModel.load(tmp_path / "champion").sha256
    # the alias points at version 2: fetch it by number too and compare the artifacts
    fetch("models:/iris/2", tmp_path / "v2", digest, options)
    assert by_alias.read_bytes() == (tmp_path / "v2" / "model.skops").read_bytes()

    with ServerProcess(tmp_path / "champion", "--sha256", digest, name="iris") as server:
        server.wait_ready()
        reply = server.client.post("/v1/models/iris:predict", json={"instances": X[:9].tolist()})
        assert reply.json()["predictions"] == model.predict(X[:9]).tolist()  # type: ignore[attr-defined]


def test_registry_errors_are_clear(mlflow_server: tuple[str, object], tmp_path: Path) -> None:
    url, _ = mlflow_server
    options = FetchOptions(mlflow_tracking_uri=url)
    with pytest.raises(FetchError, match="alias nope not found"):
        fetch("models:/iris@nope", tmp_path / "a", None, options)
    with pytest.raises(FetchError, match="not found"):
        fetch("models:/absent/1", tmp_path / "b", None, options)
    with pytest.raises(FetchError, match="refusing"):
        fetch("models:/iris/1", tmp_path / "c", "0" * 64, options)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FetchError, match="MLFLOW_TRACKING_URI"):
        fetch("models:/iris/1", tmp_path / "d", None, FetchOptions(mlflow_tracking_uri="x"))
