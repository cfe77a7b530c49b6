"""The MLflow registry client over real HTTP against a fake tracking server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from modeldeploy_operator.api import MlflowSource
from modeldeploy_operator.registry.credentials import RegistryCredentials
from modeldeploy_operator.registry.mlflow import (
    AccessDenied,
    ArtifactUnusable,
    MlflowClient,
    ModelFile,
    ReferenceNotFound,
    RegisteredVersion,
    RegistryUnreachable,
)

from tests.unit.operator.registry.fake_mlflow import FakeMlflow, running


def source(base: str, **follow: str) -> MlflowSource:
    return MlflowSource.model_validate(
        {"trackingUri": base, "registeredModel": "iris", "follow": follow or {"alias": "champion"}}
    )


def against(
    mlflow: FakeMlflow, test: Callable[[aiohttp.ClientSession, str], Awaitable[Any]]
) -> Any:
    async def main() -> Any:
        async with running(mlflow) as base, aiohttp.ClientSession() as session:
            return await test(session, base)

    return asyncio.run(main())


def test_an_alias_resolves_to_its_version_run_and_download_uri() -> None:
    mlflow = FakeMlflow()
    mlflow.register("1")
    mlflow.register("2")
    mlflow.aliases["champion"] = "2"

    async def test(session: aiohttp.ClientSession, base: str) -> RegisteredVersion:
        return await MlflowClient(session, source(base)).lookup()

    assert against(mlflow, test) == RegisteredVersion(
        version="2", run_id="run2", artifact_uri="mlflow-artifacts:/1/models/m-2/artifacts"
    )


def test_a_fixed_version_is_looked_up_as_it_is() -> None:
    mlflow = FakeMlflow()
    mlflow.register("7")

    async def test(session: aiohttp.ClientSession, base: str) -> RegisteredVersion:
        return await MlflowClient(session, source(base, version="7")).lookup()

    assert against(mlflow, test).version == "7"


def test_the_model_file_is_the_one_mlmodel_names_and_hashed_as_served() -> None:
    mlflow = FakeMlflow()
    model_bytes = b"\x80\x04 a pickled estimator"
    mlflow.register("3", model_bytes)
    mlflow.aliases["champion"] = "3"

    async def test(session: aiohttp.ClientSession, base: str) -> tuple[str, ModelFile]:
        client = MlflowClient(session, source(base))
        return base, await client.model_file(await client.lookup())

    base, model_file = against(mlflow, test)
    assert model_file.sha256 == hashlib.sha256(model_bytes).hexdigest()
    assert model_file.uri == (
        f"{base}/api/2.0/mlflow-artifacts/artifacts/1/models/m-3/artifacts/model.pkl"
    )


def test_a_model_joblib_beside_mlmodel_is_what_the_server_would_load() -> None:
    mlflow = FakeMlflow()
    mlflow.register("1")
    mlflow.versions["1"].files["model.joblib"] = b"joblib bytes"
    mlflow.aliases["champion"] = "1"

    async def test(session: aiohttp.ClientSession, base: str) -> ModelFile:
        client = MlflowClient(session, source(base))
        return await client.model_file(await client.lookup())

    found = against(mlflow, test)
    assert found.uri.endswith("/model.joblib")
    assert found.sha256 == hashlib.sha256(b"joblib bytes").hexdigest()


def test_a_deleted_alias_is_reference_not_found() -> None:
    mlflow = FakeMlflow()
    mlflow.register("1")

    async def test(session: aiohttp.ClientSession, base: str) -> None:
        await MlflowClient(session, source(base)).lookup()

    with pytest.raises(ReferenceNotFound, match="champion not found"):
        against(mlflow, test)


def test_a_registry_answering_503_is_unreachable_not_a_missing_reference() -> None:
    mlflow = FakeMlflow(down=True)

    async def test(session: aiohttp.ClientSession, base: str) -> None:
        await MlflowClient(session, source(base)).lookup()

    with pytest.raises(RegistryUnreachable, match="HTTP 503"):
        against(mlflow, test)


def test_a_registry_nobody_listens_for_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            await MlflowClient(session, source(f"http://127.0.0.1:{port}")).lookup()

    with pytest.raises(RegistryUnreachable):
        asyncio.run(main())


def test_artifacts_outside_the_proxy_cannot_be_pinned() -> None:
    mlflow = FakeMlflow()
    mlflow.register("1")
    mlflow.versions["1"].artifact_uri = "s3://bucket/models/m-1/artifacts"
    mlflow.aliases["champion"] = "1"

    async def test(session: aiohttp.ClientSession, base: str) -> None:
        client = MlflowClient(session, source(base))
        await client.model_file(await client.lookup())

    with pytest.raises(ArtifactUnusable, match="s3://bucket"):
        against(mlflow, test)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_every_request_carries_the_credentials_the_model_file_too() -> None:
    mlflow = FakeMlflow(authorization=basic("reader", "s3cret"))
    data = mlflow.register("1")
    mlflow.aliases["champion"] = "1"
    credentials = RegistryCredentials(basic("reader", "s3cret"))

    async def test(session: aiohttp.ClientSession, base: str) -> ModelFile:
        client = MlflowClient(session, source(base), credentials)
        return await client.model_file(await client.lookup())

    assert against(mlflow, test).sha256 == data


@pytest.mark.parametrize("sent", [None, basic("reader", "wrong")])
def test_refused_or_missing_credentials_are_access_denied_not_unreachable(
    sent: str | None,
) -> None:
    mlflow = FakeMlflow(authorization=basic("reader", "s3cret"))
    mlflow.register("1")
    mlflow.aliases["champion"] = "1"
    credentials = RegistryCredentials(sent) if sent is not None else None

    async def test(session: aiohttp.ClientSession, base: str) -> None:
        await MlflowClient(session, source(base), credentials).lookup()

    with pytest.raises(AccessDenied, match="HTTP 401"):
        against(mlflow, test)
