"""`modeldeploy fetch URI DEST [--sha256 HEX]`: the storage initializer.

Brings a model into DEST, the directory `modeldeploy serve --model-dir` reads, and checks it:

- `file:///path` or `/path` — a file or a directory on a mounted volume;
- `pvc://CLAIM/PATH` — the same, under `--pvc-root` (default `/mnt/pvc`, or
  `$MODELDEPLOY_PVC_ROOT`): the claim is expected mounted read-only at `/mnt/pvc/CLAIM`;
- `http://` / `https://` — one file, streamed; the length is checked against Content-Length and a
  broken transfer resumes with a Range request when the server takes them;
- `s3://BUCKET/KEY` (extra `s3`, boto3; `AWS_ENDPOINT_URL` for S3-compatible stores) and
  `gs://BUCKET/OBJECT` (extra `gcs`) — an object, or every object under a prefix ending in `/`;
- `models:/NAME/VERSION` and `models:/NAME@ALIAS` — MLflow's model registry, resolved through its
  REST API at `$MLFLOW_TRACKING_URI` (token or user/password from `MLFLOW_TRACKING_TOKEN`,
  `MLFLOW_TRACKING_USERNAME`/`PASSWORD`) and downloaded through its artifact proxy.

A single file lands as `model.skops` when its name ends in `.skops`, else as `model.joblib`; a
`reference.json` beside it is brought along when there is one. A directory is copied as it is.

DEST then must hold a model (model.joblib, model.skops or an MLflow `MLmodel`), and with
--sha256 that model file must have the digest. Atomic: everything is downloaded into a staging
directory first; when DEST can be replaced (absent or empty, and not a mount point) the staging
directory is renamed to DEST, otherwise (an emptyDir mounted at DEST) its entries are renamed into
DEST with the model file last. A failed or mismatching download leaves DEST as it was.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

import httpx

from modeldeploy_serving.drift import REFERENCE_FILE
from modeldeploy_serving.errors import FetchError, ModelLoadError
from modeldeploy_serving.model import (
    JOBLIB_FILE,
    SKOPS_FILE,
    locate_artifact,
    normalize_sha256,
    verify_sha256,
)

log = logging.getLogger("modeldeploy.fetch")

DEFAULT_PVC_ROOT = Path("/mnt/pvc")
HTTP_ATTEMPTS = 4
CHUNK = 1 << 20


@dataclass(frozen=True)
class FetchOptions:
    pvc_root: Path = DEFAULT_PVC_ROOT
    timeout: float = 60.0
    max_bytes: int | None = None
    mlflow_tracking_uri: str | None = None


class Source(Protocol):
    def download(self, staging: Path) -> None:
        """Write the artifact's files into `staging` (an existing, empty directory)."""


def artifact_name(filename: str) -> str:
    return SKOPS_FILE if filename.endswith(".skops") else JOBLIB_FILE


# -- local files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalSource:
    path: Path

    def download(self, staging: Path) -> None:
        if self.path.is_dir():
            shutil.copytree(self.path, staging, dirs_exist_ok=True, symlinks=False)
        elif self.path.is_file():
            shutil.copyfile(self.path, staging / artifact_name(self.path.name))
            sibling = self.path.parent / REFERENCE_FILE
            if sibling.is_file() and sibling != self.path:
                shutil.copyfile(sibling, staging / REFERENCE_FILE)
        else:
            raise FetchError(f"{self.path} does not exist (is the volume mounted?)")


# -- HTTP -------------------------------------------------------------------------------------


def download_http(
    client: httpx.Client,
    url: str,
    target: Path,
    *,
    max_bytes: int | None = None,
    expected_size: int | None = None,
    missing_ok: bool = False,
) -> bool:
    """Stream `url` into `target`, resuming with Range after a broken transfer.

    False (and no file) when `missing_ok` and the server answers 404 or 403; `FetchError` on any
    other failure, including a body shorter or longer than announced.
    """
    found = _download_http(client, url, target, max_bytes, expected_size, missing_ok)
    if not found:
        target.unlink(missing_ok=True)
    return found


def _download_http(
    client: httpx.Client,
    url: str,
    target: Path,
    max_bytes: int | None,
    expected_size: int | None,
    missing_ok: bool,
) -> bool:
    received = 0
    total: int | None = expected_size
    last_error = ""
    with target.open("wb") as out:
        for attempt in range(HTTP_ATTEMPTS):
            if attempt:
                time.sleep(min(0.2 * 2**attempt, 2.0))
            headers = {"accept-encoding": "identity"}
            if received:
                headers["range"] = f"bytes={received}-"
            try:
                with client.stream("GET", url, headers=headers) as response:
                    if response.status_code in (403, 404) and missing_ok and not received:
                        return False
                    if received and response.status_code == 206:
                        start = response.headers.get("content-range", "").split(" ")[-1]
                        if not start.startswith(f"{received}-"):
                            raise FetchError(f"GET {url}: server resumed at the wrong offset")
                    elif response.status_code == 200:
                        if received:  # the server ignored Range: start over
                            out.seek(0)
                            out.truncate()
                            received = 0
                        length = response.headers.get("content-length")
                        if length is not None and length.isdigit():
                            if total is not None and int(length) != total:
                                raise FetchError(
                                    f"GET {url}: {length} bytes announced, {total} expected"
                                )
                            total = int(length)
                    else:
                        raise FetchError(f"GET {url}: HTTP {response.status_code}")
                    if max_bytes is not None and total is not None and total > max_bytes:
                        raise FetchError(f"GET {url}: {total} bytes is over --max-bytes")
                    for chunk in response.iter_raw(CHUNK):
                        out.write(chunk)
                        received += len(chunk)
                        if max_bytes is not None and received > max_bytes:
                            raise FetchError(f"GET {url}: more than --max-bytes {max_bytes}")
                        if total is not None and received > total:
                            raise FetchError(f"GET {url}: more bytes than the {total} announced")
            except httpx.HTTPError as e:
                last_error = f"{type(e).__name__}: {e}"
                log.warning("GET %s broke after %d bytes (%s); retrying", url, received, e)
                continue
            if total is None or received == total:
                return True
            last_error = f"got {received} of {total} bytes"
            log.warning("GET %s: %s; retrying", url, last_error)
    raise FetchError(f"GET {url} failed after {HTTP_ATTEMPTS} attempts: {last_error}")


def _client(
    timeout: float, headers: dict[str, str] | None = None, verify: bool = True
) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=True,
        headers=headers,
        verify=verify,
    )


@dataclass(frozen=True)
class HttpSource:
    url: str
    options: FetchOptions

    def download(self, staging: Path) -> None:
        name = unquote(urlsplit(self.url).path.rsplit("/", 1)[-1])
        with _client(self.options.timeout) as client:
            download_http(
                client, self.url, staging / artifact_name(name), max_bytes=self.options.max_bytes
            )
            # A signed URL (with a query) signs only itself: no sibling to ask for.
            if "?" not in self.url and name != REFERENCE_FILE:
                sibling = f"{self.url.rsplit('/', 1)[0]}/{REFERENCE_FILE}"
                download_http(client, sibling, staging / REFERENCE_FILE, missing_ok=True)


# -- object stores (optional extras) ----------------------------------------------------------


def _object_target(staging: Path, key: str, prefix: str) -> Path:
    relative = key[len(prefix) :] if prefix else key.rsplit("/", 1)[-1]
    target = (staging / relative).resolve()
    if staging.resolve() not in target.parents:
        raise FetchError(f"object {key!r} would land outside the destination")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


@dataclass(frozen=True)
class S3Source:
    bucket: str
    key: str

    def download(self, staging: Path) -> None:
        try:
            import boto3
        except ImportError as e:
            raise FetchError(
                "s3:// needs boto3: install modeldeploy[s3] (pip install 'modeldeploy[s3]')"
            ) from e
        s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        try:
            if self.key.endswith("/") or not self.key:
                paginator = s3.get_paginator("list_objects_v2")
                keys = [
                    obj["Key"]
                    for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key)
                    for obj in page.get("Contents", [])
                    if not obj["Key"].endswith("/")
                ]
                if not keys:
                    raise FetchError(f"s3://{self.bucket}/{self.key} holds no objects")
                for key in keys:
                    s3.download_file(self.bucket, key, str(_object_target(staging, key, self.key)))
                return
            name = artifact_name(self.key.rsplit("/", 1)[-1])
            s3.download_file(self.bucket, self.key, str(staging / name))
            sibling = (
                f"{self.key.rsplit('/', 1)[0]}/{REFERENCE_FILE}"
                if "/" in self.key
                else REFERENCE_FILE
            )
            try:
                s3.download_file(self.bucket, sibling, str(staging / REFERENCE_FILE))
            except Exception:  # no reference next to the model: fine
                (staging / REFERENCE_FILE).unlink(missing_ok=True)
        except FetchError:
            raise
        except Exception as e:
            raise FetchError(f"s3://{self.bucket}/{self.key}: {e}") from e


@dataclass(frozen=True)
class GcsSource:
    bucket: str
    name: str

    def download(self, staging: Path) -> None:
        try:
            from google.cloud import storage
        except ImportError as e:
            raise FetchError("gs:// needs google-cloud-storage: install modeldeploy[gcs]") from e
        try:
            bucket = storage.Client().bucket(self.bucket)
            if self.name.endswith("/") or not self.name:
                blobs = [b for b in bucket.list_blobs(prefix=self.name) if not b.name.endswith("/")]
                if not blobs:
                    raise FetchError(f"gs://{self.bucket}/{self.name} holds no objects")
                for blob in blobs:
                    blob.download_to_filename(str(_object_target(staging, blob.name, self.name)))
                return
            bucket.blob(self.name).download_to_filename(
                str(staging / artifact_name(self.name.rsplit("/", 1)[-1]))
            )
            sibling = bucket.blob(f"{self.name.rsplit('/', 1)[0]}/{REFERENCE_FILE}")
            if "/" in self.name and sibling.exists():
                sibling.download_to_filename(str(staging / REFERENCE_FILE))
        except FetchError:
            raise
        except Exception as e:
            raise FetchError(f"gs://{self.bucket}/{self.name}: {e}") from e


# -- MLflow model registry --------------------------------------------------------------------


@dataclass(frozen=True)
class MlflowSource:
    """`models:/NAME/VERSION` or `models:/NAME@ALIAS` through MLflow's REST API."""

    name: str
    version: str | None
    alias: str | None
    options: FetchOptions

    def _tracking(self) -> tuple[str, dict[str, str], bool]:
        uri = self.options.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri or not uri.startswith(("http://", "https://")):
            raise FetchError(
                "models:/ URIs need the MLflow tracking server: set MLFLOW_TRACKING_URI "
                f"(or --mlflow-tracking-uri) to its http(s) address; got {uri!r}"
            )
        headers: dict[str, str] = {}
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if token:
            headers["authorization"] = f"Bearer {token}"
        elif user:
            import base64

            secret = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
            headers["authorization"] = f"Basic {base64.b64encode(secret).decode()}"
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
        with _client(self.options.timeout, headers, verify) as client:
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
            if scheme == "mlflow-artifacts":
                path = urlsplit(artifact_uri).path.lstrip("/")
                self._download_proxied(client, base, path, staging, "")
            else:
                inner = resolve(artifact_uri.rstrip("/") + "/", self.options)
                if isinstance(inner, HttpSource):
                    raise FetchError(f"cannot list the MLflow artifacts at {artifact_uri}")
                inner.download(staging)

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


# -- choosing a source, staging, publishing ---------------------------------------------------


def resolve(uri: str, options: FetchOptions) -> Source:
    parts = urlsplit(uri)
    scheme = parts.scheme
    if scheme == "" and uri.startswith("/"):
        return LocalSource(Path(uri))
    if scheme == "file":
        return LocalSource(Path(unquote(parts.path)))
    if scheme == "pvc":
        if not parts.netloc:
            raise FetchError(f"{uri}: pvc:// URIs are pvc://CLAIM/PATH")
        return LocalSource(options.pvc_root / parts.netloc / unquote(parts.path).lstrip("/"))
    if scheme in ("http", "https"):
        return HttpSource(uri, options)
    if scheme == "s3":
        return S3Source(parts.netloc, parts.path.lstrip("/"))
    if scheme == "gs":
        return GcsSource(parts.netloc, parts.path.lstrip("/"))
    if scheme == "models":
        target = uri[len("models:/") :].strip("/")
        if "@" in target:
            name, _, alias = target.partition("@")
            if name and alias and "/" not in alias:
                return MlflowSource(name, None, alias, options)
        else:
            name, _, version = target.rpartition("/")
            if name and version.isdigit():
                return MlflowSource(name, version, None, options)
        raise FetchError(f"{uri}: MLflow URIs are models:/NAME/VERSION or models:/NAME@ALIAS")
    raise FetchError(
        f"{uri}: unsupported storage URI; use file://, pvc://, http(s)://, s3://, gs:// or models:/"
    )


def _replaceable(dest: Path) -> bool:
    if not os.access(dest.parent, os.W_OK):
        return False
    if not dest.exists():
        return True
    return dest.is_dir() and not os.path.ismount(dest) and not any(dest.iterdir())


def _publish_inside(staging: Path, dest: Path, artifact: Path) -> None:
    entries = sorted(staging.iterdir(), key=lambda p: p == artifact)  # the model file last
    for entry in entries:
        target = dest / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()


def fetch(
    uri: str, dest: Path, sha256: str | None = None, options: FetchOptions | None = None
) -> Path:
    """Bring `uri` into `dest` (see the module docstring); the path of the model file."""
    options = options or FetchOptions()
    expected = normalize_sha256(sha256) if sha256 else None
    source = resolve(uri, options)
    dest = dest.absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    replace = _replaceable(dest)
    if not replace:
        dest.mkdir(exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(
            prefix=f".{dest.name}.fetch-" if replace else ".fetch-",
            dir=dest.parent if replace else dest,
        )
    )
    try:
        source.download(staging)
        try:
            artifact = locate_artifact(staging)
            digest = verify_sha256(artifact, expected)
        except ModelLoadError as e:
            raise FetchError(f"{uri}: {e}".replace(str(staging), "the download")) from e
        relative = artifact.resolve().relative_to(staging.resolve())
        if replace:
            os.rename(staging, dest)  # onto an absent or empty directory: atomic
        else:
            _publish_inside(staging, dest, staging / relative)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("fetched %s into %s: %s (sha256 %s)", uri, dest, relative, digest)
    return dest / relative


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="modeldeploy fetch",
        description="Download a model into a directory and verify its sha256.",
    )
    parser.add_argument("uri", help="file://, pvc://, http(s)://, s3://, gs:// or models:/")
    parser.add_argument("dest", type=Path, help="the model directory the server will read")
    parser.add_argument("--sha256", default=os.environ.get("MODELDEPLOY_SHA256") or None)
    parser.add_argument(
        "--pvc-root",
        type=Path,
        default=Path(os.environ.get("MODELDEPLOY_PVC_ROOT") or DEFAULT_PVC_ROOT),
        help="where pvc://CLAIM is mounted as CLAIM/ (default /mnt/pvc)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per network step")
    parser.add_argument("--max-bytes", type=int, default=None, help="refuse larger downloads")
    parser.add_argument("--mlflow-tracking-uri", default=None, help="default $MLFLOW_TRACKING_URI")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = FetchOptions(
        pvc_root=args.pvc_root,
        timeout=args.timeout,
        max_bytes=args.max_bytes,
        mlflow_tracking_uri=args.mlflow_tracking_uri,
    )
    try:
        fetch(args.uri, args.dest, args.sha256, options)
    except (FetchError, ValueError, OSError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
