"""What an MLflow registry reference resolves to, through MLflow's REST API 2.0.

An alias → `registered-models/alias`; a version → `model-versions/get`; either version's files →
`model-versions/get-download-uri` (MLflow 3 registers versions whose `source` is a logged model,
`models:/m-...`: only the download URI says where the files are). The model file is found as the
model server finds it (`modeldeploy_serving.model.locate_artifact`: model.joblib, model.skops,
the sklearn flavor an `MLmodel` names, or the one artifact file) and hashed while it streams
through the artifact proxy, so the operator pins the exact bytes the pods will download.
Every request carries the source's credentials (`credentials`), if it has any.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlsplit

import aiohttp
import yaml
from modeldeploy_serving.contract import ARTIFACT_SUFFIXES, JOBLIB_FILE, MLFLOW_FILE, SKOPS_FILE

from modeldeploy_operator.api import MlflowSource
from modeldeploy_operator.registry.credentials import RegistryCredentials

API: Final = "api/2.0/mlflow"
ARTIFACTS_API: Final = "api/2.0/mlflow-artifacts/artifacts"
# The only artifact location the operator can hash and the pods can download from: the
# tracking server's own proxy. (s3:// or gs:// stores would need the store's credentials here.)
PROXIED_SCHEME: Final = "mlflow-artifacts"
# MLflow's answers for a reference that does not exist (a deleted alias, an unknown version).
NOT_FOUND_CODES: Final = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
CHUNK_BYTES: Final = 1 << 20


class RegistryUnreachable(Exception):
    """The registry did not answer usefully (connection, timeout, 5xx, an unreadable answer)."""


class AccessDenied(Exception):
    """The registry refused the credentials, or their absence (HTTP 401 or 403)."""


class ReferenceNotFound(Exception):
    """The registry answered: the alias or version does not exist (any more)."""


class ArtifactUnusable(Exception):
    """The version exists but its files cannot be pinned (no model file, an unproxied store)."""


@dataclass(frozen=True)
class RegisteredVersion:
    """A registered version as the registry describes it."""

    version: str
    run_id: str | None
    artifact_uri: str


@dataclass(frozen=True)
class ModelFile:
    """The model file of a version: where the pods download it and its digest."""

    uri: str
    sha256: str


class MlflowClient:
    """One tracking server's registry, over a shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        source: MlflowSource,
        credentials: RegistryCredentials | None = None,
    ) -> None:
        self._session = session
        self._source = source
        self._base = source.tracking_uri.rstrip("/")
        # Per request, not on the shared session: other registries and Prometheus use it too.
        self._headers = credentials.headers() if credentials is not None else {}

    async def lookup(self) -> RegisteredVersion:
        """The version the source's alias (or fixed version) names, with its download URI."""
        source = self._source
        name = source.registered_model
        if source.follow.alias is not None:
            found = await self._get_json(
                f"{API}/registered-models/alias", {"name": name, "alias": source.follow.alias}
            )
        else:
            assert source.follow.version is not None
            found = await self._get_json(
                f"{API}/model-versions/get", {"name": name, "version": source.follow.version}
            )
        try:
            described = found["model_version"]
            version = str(described["version"])
        except (KeyError, TypeError) as err:
            raise RegistryUnreachable(f"unexpected answer from {self._base}: {found!r}") from err
        download = await self._get_json(
            f"{API}/model-versions/get-download-uri", {"name": name, "version": version}
        )
        artifact_uri = download.get("artifact_uri") if isinstance(download, dict) else None
        if not isinstance(artifact_uri, str):
            raise RegistryUnreachable(f"no artifact_uri for {name}/{version}: {download!r}")
        return RegisteredVersion(version, described.get("run_id") or None, artifact_uri)

    async def alias_version(self, alias: str) -> str | None:
        """The version `alias` points at; None when the alias does not exist."""
        try:
            found = await self._get_json(
                f"{API}/registered-models/alias",
                {"name": self._source.registered_model, "alias": alias},
            )
        except ReferenceNotFound:
            return None
        try:
            return str(found["model_version"]["version"])
        except (KeyError, TypeError) as err:
            raise RegistryUnreachable(f"unexpected answer from {self._base}: {found!r}") from err

    async def tagged_version(self, tag: str, value: str) -> str | None:
        """The registered version carrying tag `tag` = `value` (the newest, if several); None
        when there is none. Filtered here, page by page: MLflow's search filter grammar for tag
        keys with dots and slashes differs between versions."""
        params = {"filter": f"name='{self._source.registered_model}'", "max_results": "200"}
        found: list[int] = []
        while True:
            page = await self._get_json(f"{API}/model-versions/search", params)
            for described in page.get("model_versions", []) if isinstance(page, dict) else []:
                tags = {t.get("key"): t.get("value") for t in described.get("tags", [])}
                if tags.get(tag) == value:
                    found.append(int(described["version"]))
            token = page.get("next_page_token") if isinstance(page, dict) else None
            if not token:
                break
            params = {**params, "page_token": str(token)}
        return str(max(found)) if found else None

    async def set_alias(self, alias: str, version: str) -> None:
        """Point `alias` at `version` (MLflow moves an existing alias)."""
        body = {"name": self._source.registered_model, "alias": alias, "version": version}
        url = f"{self._base}/{API}/registered-models/alias"
        try:
            async with self._session.post(url, json=body, headers=self._headers) as response:
                await self._check(response)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise RegistryUnreachable(f"{self._base}: {err!r}") from err

    async def model_file(self, registered: RegisteredVersion) -> ModelFile:
        """The version's model file, hashed as it streams through the artifact proxy."""
        location = urlsplit(registered.artifact_uri)
        if location.scheme != PROXIED_SCHEME:
            raise ArtifactUnusable(
                f"version {registered.version} is stored at {registered.artifact_uri}: the "
                f"operator pins artifacts served by the tracking server ({PROXIED_SCHEME}:), "
                "start `mlflow server` with artifact serving"
            )
        root = location.path.strip("/")
        path = await self._locate(root, registered.version)
        uri = f"{self._base}/{ARTIFACTS_API}/{quote(path)}"
        return ModelFile(uri=uri, sha256=await self._sha256(uri))

    async def _locate(self, root: str, version: str) -> str:
        """The model file's path under the proxy (the twin of the server's locate_artifact)."""
        listing = await self._get_json(ARTIFACTS_API, {"path": root})
        files = {
            str(entry["path"]).rsplit("/", 1)[-1]
            for entry in listing.get("files", [])
            if not entry.get("is_dir")
        }
        for name in (JOBLIB_FILE, SKOPS_FILE):
            if name in files:
                return f"{root}/{name}"
        if MLFLOW_FILE in files:
            text = await self._get_text(f"{ARTIFACTS_API}/{quote(f'{root}/{MLFLOW_FILE}')}")
            try:
                pickled = str(yaml.safe_load(text)["flavors"]["sklearn"]["pickled_model"])
            except (yaml.YAMLError, KeyError, TypeError) as err:
                raise ArtifactUnusable(
                    f"version {version}: its {MLFLOW_FILE} has no sklearn flavor"
                ) from err
            if pickled.startswith("/") or ".." in pickled.split("/"):
                raise ArtifactUnusable(f"version {version}: {MLFLOW_FILE} names {pickled!r}")
            return f"{root}/{pickled}"
        candidates = sorted(name for name in files if name.endswith(ARTIFACT_SUFFIXES))
        if len(candidates) == 1:
            return f"{root}/{candidates[0]}"
        raise ArtifactUnusable(
            f"version {version} holds no {JOBLIB_FILE}, {SKOPS_FILE}, {MLFLOW_FILE} or single "
            f"model file (it holds: {', '.join(sorted(files)) or 'nothing'})"
        )

    async def _sha256(self, uri: str) -> str:
        digest = hashlib.sha256()
        try:
            async with self._session.get(uri, headers=self._headers) as response:
                await self._check(response)
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    digest.update(chunk)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise RegistryUnreachable(f"{uri}: {err!r}") from err
        return digest.hexdigest()

    async def _get_text(self, path: str) -> str:
        try:
            async with self._session.get(f"{self._base}/{path}", headers=self._headers) as response:
                await self._check(response)
                return await response.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise RegistryUnreachable(f"{self._base}: {err!r}") from err

    async def _get_json(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self._base}/{path}"
        try:
            async with self._session.get(url, params=params, headers=self._headers) as response:
                await self._check(response)
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise RegistryUnreachable(f"{self._base}: {err!r}") from err

    @staticmethod
    async def _check(response: aiohttp.ClientResponse) -> None:
        """A 4xx naming a missing resource is ReferenceNotFound; 401 and 403 are AccessDenied;
        any other error answer is RegistryUnreachable (a 5xx is the registry's trouble, not the
        reference's)."""
        if response.status < 400:
            return
        text = await response.text()
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {}
        code = answer.get("error_code") if isinstance(answer, dict) else None
        message = answer.get("message") if isinstance(answer, dict) else None
        detail = f"{message or text[:200]} (HTTP {response.status})"
        if response.status in (400, 404) and code in NOT_FOUND_CODES:
            raise ReferenceNotFound(detail)
        if response.status in (401, 403):
            raise AccessDenied(detail)
        raise RegistryUnreachable(detail)
