"""The operator's MLflow client against a real `mlflow server` (SQLite, proxied artifacts): what
the fake in the unit tests stands in for, checked against the real answers."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from modeldeploy_operator.api import MlflowSource
from modeldeploy_operator.local_mlflow import MlflowServer, iris_champion
from modeldeploy_operator.registry.mlflow import (
    MlflowClient,
    ModelFile,
    ReferenceNotFound,
    RegisteredVersion,
)


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with iris_champion(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


def resolve(server: MlflowServer, **follow: str) -> tuple[RegisteredVersion, ModelFile]:
    source = MlflowSource.model_validate(
        {"trackingUri": server.url, "registeredModel": "iris", "follow": follow}
    )

    async def main() -> tuple[RegisteredVersion, ModelFile]:
        async with aiohttp.ClientSession() as session:
            client = MlflowClient(session, source)
            registered = await client.lookup()
            return registered, await client.model_file(registered)

    return asyncio.run(main())


def test_an_alias_resolves_to_the_version_and_the_file_the_pods_download(
    mlflow: MlflowServer,
) -> None:
    registered, model_file = resolve(mlflow, alias="champion")
    assert registered.version == "2"
    assert registered.run_id
    assert registered.artifact_uri.startswith("mlflow-artifacts:/")
    # MLflow 3 saves scikit-learn models with skops; the MLmodel's flavor names the file.
    assert model_file.uri.endswith("/model.skops")
    assert model_file.sha256 == hashlib.sha256(httpx.get(model_file.uri).content).hexdigest()


def test_versions_have_distinct_files(mlflow: MlflowServer) -> None:
    first: Any = resolve(mlflow, version="1")
    second: Any = resolve(mlflow, version="2")
    assert first[1].sha256 != second[1].sha256


def test_a_deleted_alias_and_an_unknown_version_are_not_found(mlflow: MlflowServer) -> None:
    with pytest.raises(ReferenceNotFound):
        resolve(mlflow, alias="nope")
    with pytest.raises(ReferenceNotFound):
        resolve(mlflow, version="99")
