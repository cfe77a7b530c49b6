"""Retraining against a real `mlflow server` (SQLite, proxied artifacts): the worked example's
trainer registers through the REST API, the operator's client finds the candidate by its run tag
and moves the alias, and `modeldeploy evaluate` scores candidate and champion on one holdout."""

from __future__ import annotations

import asyncio
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
from typing import Final

import aiohttp
import numpy as np
import pytest
from modeldeploy_operator.api import MlflowSource
from modeldeploy_operator.local_mlflow import MlflowServer
from modeldeploy_operator.registry.mlflow import MlflowClient
from modeldeploy_serving import evaluate
from modeldeploy_serving.contract import RETRAINING_RUN_TAG
from modeldeploy_serving.drift import load_reference
from modeldeploy_serving.fetch import fetch
from sklearn.datasets import load_iris

ROOT: Final = Path(__file__).resolve().parents[2]
TRAINER: Final = ROOT / "examples" / "retraining" / "train.py"
MODEL: Final = "retrained"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """train.csv and holdout.csv (iris, 105 and 45 rows) over HTTP; the base URL and the dir."""
    directory = tmp_path_factory.mktemp("data")
    features, labels = load_iris(return_X_y=True)
    order = np.random.default_rng(7).permutation(len(labels))
    header = "a,b,c,d,label\n"
    for name, rows in (("train.csv", order[:105]), ("holdout.csv", order[105:])):
        lines = [",".join(f"{v:g}" for v in features[i]) + f",{labels[i]}\n" for i in rows]
        (directory / name).write_text(header + "".join(lines))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", directory
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def mlflow(
    tmp_path_factory: pytest.TempPathFactory, data: tuple[str, Path]
) -> Iterator[MlflowServer]:
    """Version 1 trained on shuffled labels (the stale champion), version 2 on the real ones."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    try:
        for run, extra in (("initial", ["--shuffle-labels"]), ("run-2", [])):
            train(server, data[0], run, *extra)
        server.set_alias(MODEL, "champion", "1")
        yield server
    finally:
        server.stop()


def train(server: MlflowServer, data_url: str, run: str, *extra: str) -> str:
    env = {
        **os.environ,
        "MODELDEPLOY_RETRAINING_RUN": run,
        "MODELDEPLOY_REGISTERED_MODEL": MODEL,
        "MLFLOW_TRACKING_URI": server.url,
    }
    done = subprocess.run(
        [sys.executable, str(TRAINER), "--data", f"{data_url}/train.csv", *extra],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout


def client_call(server: MlflowServer, call: str, *args: str) -> object:
    source = MlflowSource.model_validate(
        {"trackingUri": server.url, "registeredModel": MODEL, "follow": {"alias": "champion"}}
    )

    async def ask() -> object:
        async with aiohttp.ClientSession() as session:
            return await getattr(MlflowClient(session, source), call)(*args)

    return asyncio.run(ask())


def test_the_candidate_is_found_by_its_run_tag(mlflow: MlflowServer) -> None:
    assert client_call(mlflow, "tagged_version", RETRAINING_RUN_TAG, "run-2") == "2"
    assert client_call(mlflow, "tagged_version", RETRAINING_RUN_TAG, "initial") == "1"
    assert client_call(mlflow, "tagged_version", RETRAINING_RUN_TAG, "never-ran") is None


def test_the_alias_is_read_and_moved(mlflow: MlflowServer) -> None:
    assert client_call(mlflow, "alias_version", "champion") == "1"
    assert client_call(mlflow, "alias_version", "nobody") is None
    client_call(mlflow, "set_alias", "challenger", "2")
    assert client_call(mlflow, "alias_version", "challenger") == "2"


def pinned(server: MlflowServer, version: str) -> tuple[str, str]:
    """The model file the operator pins for `version` (what the pods fetch), and its digest."""

    async def pin() -> tuple[str, str]:
        source = MlflowSource.model_validate(
            {"trackingUri": server.url, "registeredModel": MODEL, "follow": {"version": version}}
        )
        async with aiohttp.ClientSession() as session:
            client = MlflowClient(session, source)
            found = await client.model_file(await client.lookup())
            return found.uri, found.sha256

    return asyncio.run(pin())


def test_a_version_the_trainer_registered_can_be_pinned(mlflow: MlflowServer) -> None:
    uri, digest = pinned(mlflow, "2")
    assert uri.endswith("/model/model.joblib") and len(digest) == 64


def run_evaluate(
    mlflow: MlflowServer, data_url: str, tmp_path: Path, candidate: str, *extra: str
) -> tuple[int, dict[str, object] | None]:
    output = tmp_path / "result.json"
    status = evaluate.main(
        [
            "--tracking-uri", mlflow.url, "--registered-model", MODEL,
            "--candidate", candidate, "--champion", "1",
            "--holdout", f"{data_url}/holdout.csv",
            "--metrics", "accuracy,f1Macro,logLoss",
            "--output", str(output), *extra,
        ]
    )  # fmt: skip
    return status, json.loads(output.read_text()) if output.exists() else None


def test_evaluate_scores_both_versions_on_one_holdout(
    mlflow: MlflowServer, data: tuple[str, Path], tmp_path: Path
) -> None:
    data_url, directory = data
    status, result = run_evaluate(mlflow, data_url, tmp_path, "2")
    assert status == 0 and result is not None
    expected = hashlib.sha256((directory / "holdout.csv").read_bytes()).hexdigest()
    assert result["holdoutSha256"] == expected and result["rows"] == 45
    candidate, champion = result["candidate"], result["champion"]
    assert isinstance(candidate, dict) and isinstance(champion, dict)
    assert candidate["version"] == "2" and champion["version"] == "1"
    assert set(candidate["metrics"]) == {"accuracy", "f1Macro", "logLoss"}
    # Trained on the real labels against a model of shuffled ones.
    assert candidate["metrics"]["accuracy"] > 0.85
    assert champion["metrics"]["accuracy"] < 0.6


def test_evaluate_reports_a_version_it_cannot_fetch(
    mlflow: MlflowServer, data: tuple[str, Path], tmp_path: Path
) -> None:
    status, result = run_evaluate(mlflow, data[0], tmp_path, "99")
    assert status == 0 and result is not None
    candidate = result["candidate"]
    assert isinstance(candidate, dict)
    assert candidate["metrics"] == {} and candidate["error"]


def test_evaluate_refuses_a_holdout_other_than_the_pinned_one(
    mlflow: MlflowServer, data: tuple[str, Path], tmp_path: Path
) -> None:
    status, result = run_evaluate(mlflow, data[0], tmp_path, "2", "--holdout-sha256", "0" * 64)
    assert status == 1 and result is None


def test_a_version_trained_with_its_drift_reference_reaches_the_pods_with_it(
    mlflow: MlflowServer, data: tuple[str, Path], tmp_path: Path
) -> None:
    """`--drift-reference` registers reference.json beside the model file: the pods' fetch of
    the pinned file brings it along, and the server's drift metric reads it."""
    printed = train(mlflow, data[0], "with-reference", "--drift-reference")
    version = printed.split(f"registered {MODEL} version ")[1].split()[0]
    uri, digest = pinned(mlflow, version)
    assert uri.endswith("/model/model.joblib")
    fetch(uri, tmp_path / "with", digest)
    reference = load_reference(tmp_path / "with")
    assert reference is not None
    assert reference.features == ("a", "b", "c", "d") and reference.rows == 105
    # Without the flag, no reference: the server exports no drift for that version.
    uri, digest = pinned(mlflow, "2")
    fetch(uri, tmp_path / "without", digest)
    assert load_reference(tmp_path / "without") is None
