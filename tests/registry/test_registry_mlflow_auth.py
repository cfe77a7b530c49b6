"""Following a real `mlflow server --app-name basic-auth`: the operator's poll with the
credentials from the source's Secret, the pods' fetch of the model file it pinned, and a
retraining run's trainer and evaluator with the variables their Jobs get from the Secret. A wrong
password is reported as AccessDenied; the right one resolves the alias."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import httpx
import pytest
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.local_mlflow import ADMIN, MlflowServer, iris_champion
from modeldeploy_operator.registry.follow import Answer, Problem, Resolved
from modeldeploy_operator.registry.poller import RegistryPoller
from modeldeploy_serving import evaluate
from modeldeploy_serving.errors import FetchError
from modeldeploy_serving.fetch import fetch

from tests.unit.operator.factories import md_body

PASSWORD = "not-the-default-1234"
SECRET = "mlflow-auth"


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with iris_champion(tmp_path_factory.mktemp("mlflow-auth"), admin_password=PASSWORD) as server:
        yield server


def following(server: MlflowServer, credentials: bool = True) -> ModelDeployment:
    body = md_body()
    mlflow: dict[str, Any] = {
        "trackingUri": server.url,
        "registeredModel": "iris",
        "follow": {"alias": "champion"},
    }
    if credentials:
        mlflow["credentialsSecretRef"] = {"name": SECRET}
    body["spec"]["model"] = {"format": "sklearn", "source": {"mlflow": mlflow}}
    return ModelDeployment.model_validate(body)


def poll(server: MlflowServer, secret: dict[str, str] | None, credentials: bool = True) -> Answer:
    """One poll of the operator's registry poller, the Secret read from `secret`."""

    async def read(namespace: str, name: str) -> dict[str, Any] | None:
        assert (namespace, name) == ("models", SECRET)
        if secret is None:
            return None
        data = {k: base64.b64encode(v.encode()).decode() for k, v in secret.items()}
        return {"metadata": {"name": name, "namespace": namespace}, "data": data}

    async def main() -> Answer:
        async with aiohttp.ClientSession() as session:
            poller = RegistryPoller(lambda: session, read)
            answer, _ = await poller.answer(("models", "iris"), following(server, credentials))
            return answer

    return asyncio.run(main())


def test_a_wrong_password_is_access_denied(mlflow: MlflowServer) -> None:
    answer = poll(mlflow, {"username": ADMIN, "password": "wrong-password"})
    assert isinstance(answer, Problem)
    assert answer.kind == "AccessDenied"
    assert "HTTP 401" in answer.message and f"Secret {SECRET}" in answer.message
    assert "wrong-password" not in answer.message


def test_no_credentials_is_access_denied_and_says_to_set_them(mlflow: MlflowServer) -> None:
    answer = poll(mlflow, None, credentials=False)
    assert isinstance(answer, Problem) and answer.kind == "AccessDenied"
    assert "set credentialsSecretRef" in answer.message


def test_a_missing_secret_asks_nothing(mlflow: MlflowServer) -> None:
    answer = poll(mlflow, None)
    assert isinstance(answer, Problem) and answer.kind == "CredentialsUnavailable"


def test_the_right_password_resolves_the_alias_and_the_pods_fetch_the_pinned_file(
    mlflow: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = poll(mlflow, {"username": ADMIN, "password": PASSWORD})
    assert isinstance(answer, Resolved), answer
    assert answer.registered.version == "2"
    model_file = answer.model_file
    assert model_file.uri.startswith(f"{mlflow.url}/api/2.0/mlflow-artifacts/artifacts/")
    # The proxy itself wants the credentials: the digest is of what it serves with them.
    assert httpx.get(model_file.uri).status_code == 401
    served = httpx.get(model_file.uri, auth=(ADMIN, PASSWORD))
    assert model_file.sha256 == hashlib.sha256(served.content).hexdigest()
    # What the serving pod's fetch init container does, with the variables the operator sets
    # from the Secret.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow.url)
    with pytest.raises(FetchError, match="HTTP 401"):
        fetch(model_file.uri, tmp_path / "anonymous", model_file.sha256)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    fetch(model_file.uri, tmp_path / "model", model_file.sha256)
    assert any((tmp_path / "model").iterdir())


TRAINER = Path(__file__).resolve().parents[2] / "examples" / "retraining" / "train.py"
IRIS_CSV = "a,b,c,d,label\n" + "".join(
    f"{5 + i % 3 * 0.7:g},{3 + i % 2 * 0.4:g},{1 + i % 3 * 2:g},{0.2 + i % 3 * 0.9:g},{i % 3}\n"
    for i in range(60)
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """train.csv and holdout.csv (three separable classes) over HTTP on loopback."""
    directory = tmp_path_factory.mktemp("files")
    for name in ("train.csv", "holdout.csv"):
        (directory / name).write_text(IRIS_CSV)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_trainer_and_the_evaluator_use_the_variables_their_jobs_get(
    mlflow: MlflowServer, files: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Jobs get MLFLOW_TRACKING_USERNAME and _PASSWORD from the Secret
    (retraining.jobs): with them the example trainer registers and the evaluator scores."""
    job_env = {
        "MODELDEPLOY_RETRAINING_RUN": "iris-drift-1",
        "MODELDEPLOY_REGISTERED_MODEL": "iris",
        "MLFLOW_TRACKING_URI": mlflow.url,
    }
    command = [sys.executable, str(TRAINER), "--data", f"{files}/train.csv"]
    anonymous = subprocess.run(
        command, env={**os.environ, **job_env}, capture_output=True, text=True
    )
    assert anonymous.returncode != 0 and "401" in anonymous.stderr
    credentials = {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": PASSWORD}
    trained = subprocess.run(
        command, env={**os.environ, **job_env, **credentials}, capture_output=True, text=True
    )
    assert trained.returncode == 0, trained.stderr
    candidate = trained.stdout.split("registered iris version ")[1].split()[0]
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    output = tmp_path / "result.json"
    status = evaluate.main(
        [
            "--tracking-uri", mlflow.url, "--registered-model", "iris",
            "--candidate", candidate, "--champion", "2",
            "--holdout", f"{files}/holdout.csv", "--metrics", "accuracy",
            "--output", str(output),
        ]
    )  # fmt: skip
    assert status == 0
    result = json.loads(output.read_text())
    for side in ("candidate", "champion"):
        assert "error" not in result[side], result[side]
        assert set(result[side]["metrics"]) == {"accuracy"}


class RecordingFiles(http.server.SimpleHTTPRequestHandler):
    """Files that note the Authorization header of every request (None: none was sent)."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        RecordingFiles.seen.append(self.headers.get("authorization"))
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def test_the_evaluator_reads_a_holdout_on_the_tracking_server_with_its_credentials(
    mlflow: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holdout kept in MLflow (its artifact proxy, which wants the credentials too) is
    downloaded with the variables the evaluator Job gets from the Secret; a holdout elsewhere
    is downloaded without them (no other host ever sees MLflow's credentials)."""
    holdout = f"{mlflow.url}/api/2.0/mlflow-artifacts/artifacts/datasets/iris/holdout.csv"
    httpx.put(holdout, content=IRIS_CSV.encode(), auth=(ADMIN, PASSWORD)).raise_for_status()
    assert httpx.get(holdout).status_code == 401
    # The evaluator Job's environment: the credentials, and the tracking server only as an
    # argument (jobs.evaluation_job sets no MLFLOW_TRACKING_URI).
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)

    def scored(holdout_url: str) -> dict[str, Any]:
        output = tmp_path / "result.json"
        output.unlink(missing_ok=True)
        status = evaluate.main(
            [
                "--tracking-uri", mlflow.url, "--registered-model", "iris",
                "--candidate", "2", "--champion", "1",
                "--holdout", holdout_url, "--metrics", "accuracy",
                "--output", str(output),
            ]
        )  # fmt: skip
        assert status == 0, f"the evaluator could not read {holdout_url}"
        result: dict[str, Any] = json.loads(output.read_text())
        return result

    result = scored(holdout)
    assert result["holdoutSha256"] == hashlib.sha256(IRIS_CSV.encode()).hexdigest()
    for side in ("candidate", "champion"):
        assert "error" not in result[side], result[side]
        assert set(result[side]["metrics"]) == {"accuracy"}

    directory = tmp_path / "elsewhere"
    directory.mkdir()
    (directory / "holdout.csv").write_text(IRIS_CSV)
    handler = functools.partial(RecordingFiles, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        RecordingFiles.seen.clear()
        scored(f"http://127.0.0.1:{server.server_address[1]}/holdout.csv")
    finally:
        server.shutdown()
        server.server_close()
    assert RecordingFiles.seen == [None]
