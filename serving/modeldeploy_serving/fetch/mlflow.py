"""`models:/NAME/VERSION` and `models:/NAME@ALIAS`: MLflow's model registry, through its REST API
at `$MLFLOW_TRACKING_URI` (token or user/password from `MLFLOW_TRACKING_TOKEN`,
`MLFLOW_TRACKING_USERNAME`/`PASSWORD`); the files come through its artifact proxy, or from the
store the version's artifact URI names."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from modeldeploy_serving.errors import FetchError
from modeldeploy_serving.fetch.http import download_http, http_client, mlflow_credentials
from modeldeploy_serving.fetch.source import FetchOptions, Source

log = logging.getLogger("modeldeploy.fetch")

Resolver = Callable[[str, FetchOptions], Source]

# Where a registered version's files may be, by the scheme of the artifact URI the registry
# gives. The registry is a remote party: a local path (file:, a bare path, pvc:) would let it
# choose files of this pod to publish, a models: URI would loop, and an http(s) URL cannot be
# listed.
REGISTRY_LOCATIONS = ("mlflow-artifacts", "s3", "gs")


@dataclass(frozen=True)
class MlflowSource:
    """`models:/NAME/VERSION` or `models:/NAME@ALIAS` through MLflow's REST API."""

    name: str
    version: str | None
    alias: str | None
    options: FetchOptions
    # How the store a registered version's artifacts live in is read (resolve.py's resolve).
    resolve: Resolver

    def _tracking(self) -> tuple[str, dict[str, str], bool]:
        uri = self.options.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri or not uri.startswith(("http://", "https://")):
            raise FetchError(
                "models:/ URIs need the MLflow tracking server: set MLFLOW_TRACKING_URI "
                f"(or --mlflow-tracking-uri) to its http(s) address; got {uri!r}"
            )
        headers = mlflow_credentials()
        verify = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() != "true"
        return uri.rstrip("/"), headers, verify

    @staticmethod
    def _get(client: httpx.Client, url: str, params: dict[str, str]) -> Any:
        try:
            response = client.get(url, params=params)
        except httpx.HTTPError as e:
            raise FetchError(f"MLflow at {url}: {e}") from e
        if response.status_code != 200:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise FetchError(f"MLflow: {message} (HTTP {response.status_code})")
        return response.json()

    def download(self, staging: Path) -> None:
        base, headers, verify = self._tracking()
        with http_client(self.options.timeout, headers, verify) as client:
            version = self.version
            if self.alias is not None:
                found = self._get(
                    client,
                    f"{base}/api/2.0/mlflow/registered-models/alias",
                    {"name": self.name, "alias": self.alias},
                )
                version = str(found["model_version"]["version"])
                log.info("models:/%s@%s is version %s", self.name, self.alias, version)
            assert version is not None
            artifact_uri = self._get(
                client,
                f"{base}/api/2.0/mlflow/model-versions/get-download-uri",
                {"name": self.name, "version": version},
            )["artifact_uri"]
            log.info("models:/%s/%s is at %s", self.name, version, artifact_uri)
            scheme = urlsplit(artifact_uri).scheme
            if scheme not in REGISTRY_LOCATIONS:
                raise FetchError(
                    f"refusing the artifact location {artifact_uri!r} the registry gives for "
                    f"models:/{self.name}/{version}: a registry may point at its artifact proxy "
                    "(mlflow-artifacts:), s3:// or gs://, not at files of this pod or elsewhere"
                )
            if scheme == "mlflow-artifacts":
                path = urlsplit(artifact_uri).path.lstrip("/")
                self._download_proxied(client, base, path, staging, "")
            else:
                self.resolve(artifact_uri.rstrip("/") + "/", self.options).download(staging)

    def _download_proxied(
        self, client: httpx.Client, base: str, root: str, staging: Path, relative: str
    ) -> None:
        listing = self._get(
            client,
            f"{base}/api/2.0/mlflow-artifacts/artifacts",
            {"path": f"{root}/{relative}".rstrip("/")},
        )
        for entry in listing.get("files", []):
            name = str(entry["path"]).rsplit("/", 1)[-1]
            child = f"{relative}/{name}".lstrip("/")
            target = (staging / child).resolve()
            if staging.resolve() not in target.parents:
                raise FetchError(f"MLflow artifact {child!r} would land outside the destination")
            if entry.get("is_dir"):
                target.mkdir(parents=True, exist_ok=True)
                self._download_proxied(client, base, root, staging, child)
                continue
            size = entry.get("file_size")
            download_http(
                client,
                f"{base}/api/2.0/mlflow-artifacts/artifacts/{quote(f'{root}/{child}')}",
                target,
                max_bytes=self.options.max_bytes,
                expected_size=int(size) if size is not None else None,
            )
