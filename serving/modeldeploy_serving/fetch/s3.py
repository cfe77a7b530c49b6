"""`s3://BUCKET/KEY` (extra `s3`, boto3; `AWS_ENDPOINT_URL` for S3-compatible stores): an
object with the `reference.json` beside it, or every object under a prefix ending in `/`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from modeldeploy_serving.drift import REFERENCE_FILE
from modeldeploy_serving.errors import FetchError
from modeldeploy_serving.fetch.source import artifact_name, object_target


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
                    s3.download_file(self.bucket, key, str(object_target(staging, key, self.key)))
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
