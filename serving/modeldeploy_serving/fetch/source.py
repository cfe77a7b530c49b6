"""What every source is: something that writes an artifact's files into a staging directory,
given the options of one fetch; and the file names a single artifact lands under."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modeldeploy_serving.contract import JOBLIB_FILE, PVC_MOUNT_ROOT, SKOPS_FILE, SKOPS_SUFFIX
from modeldeploy_serving.errors import FetchError

# Where the operator mounts pvc://CLAIM (as CLAIM/), so `modeldeploy fetch` finds it there.
DEFAULT_PVC_ROOT = Path(PVC_MOUNT_ROOT)


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
    """The name a single downloaded file takes in the model directory."""
    return SKOPS_FILE if filename.endswith(SKOPS_SUFFIX) else JOBLIB_FILE


def object_target(staging: Path, key: str, prefix: str) -> Path:
    """Where the object `key`, listed under `prefix`, lands in `staging` (never outside it)."""
    relative = key[len(prefix) :] if prefix else key.rsplit("/", 1)[-1]
    target = (staging / relative).resolve()
    if staging.resolve() not in target.parents:
        raise FetchError(f"object {key!r} would land outside the destination")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target
