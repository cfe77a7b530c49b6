"""From a storage URI to its source: the one place that knows the schemes."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from modeldeploy_serving.errors import FetchError
from modeldeploy_serving.fetch.gcs import GcsSource
from modeldeploy_serving.fetch.http import HttpSource
from modeldeploy_serving.fetch.local import LocalSource
from modeldeploy_serving.fetch.mlflow import MlflowSource
from modeldeploy_serving.fetch.s3 import S3Source
from modeldeploy_serving.fetch.source import FetchOptions, Source


def resolve(uri: str, options: FetchOptions) -> Source:
    """The source of `uri`; `FetchError` naming the accepted forms when there is none."""
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
                return MlflowSource(name, None, alias, options, resolve)
        else:
            name, _, version = target.rpartition("/")
            if name and version.isdigit():
                return MlflowSource(name, version, None, options, resolve)
        raise FetchError(f"{uri}: MLflow URIs are models:/NAME/VERSION or models:/NAME@ALIAS")
    raise FetchError(
        f"{uri}: unsupported storage URI; use file://, pvc://, http(s)://, s3://, gs:// or models:/"
    )
