"""`file://`, plain paths and `pvc://` (a path under the mounted claims): a copy."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from modeldeploy_serving.drift import REFERENCE_FILE
from modeldeploy_serving.errors import FetchError
from modeldeploy_serving.fetch.source import artifact_name


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
