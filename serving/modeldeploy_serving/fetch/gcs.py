"""`gs://BUCKET/OBJECT` (extra `gcs`, google-cloud-storage): an object with the `reference.json`
beside it, or every object under a prefix ending in `/`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from modeldeploy_serving.drift import REFERENCE_FILE
from modeldeploy_serving.errors import FetchError
from modeldeploy_serving.fetch.source import artifact_name, object_target

log = logging.getLogger("modeldeploy.fetch")


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
                    blob.download_to_filename(str(object_target(staging, blob.name, self.name)))
                return
            bucket.blob(self.name).download_to_filename(
                str(staging / artifact_name(self.name.rsplit("/", 1)[-1]))
            )
            sibling = bucket.blob(f"{self.name.rsplit('/', 1)[0]}/{REFERENCE_FILE}")
            try:
                if "/" in self.name and sibling.exists():
                    sibling.download_to_filename(str(staging / REFERENCE_FILE))
            except Exception as e:  # optional: never worth failing the model's fetch
                (staging / REFERENCE_FILE).unlink(missing_ok=True)
                log.warning("skipping %s: %s", REFERENCE_FILE, e)
        except FetchError:
            raise
        except Exception as e:
            raise FetchError(f"gs://{self.bucket}/{self.name}: {e}") from e
