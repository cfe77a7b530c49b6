"""One fetch: resolve the URI, download into a staging directory, find and verify the model
file, then publish the staging directory as DEST atomically (see the package docstring)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from modeldeploy_serving.drift import REFERENCE_FILE, Reference
from modeldeploy_serving.errors import FetchError, ModelLoadError, ReferenceDataError
from modeldeploy_serving.fetch.resolve import resolve
from modeldeploy_serving.fetch.source import FetchOptions
from modeldeploy_serving.model import locate_artifact, normalize_sha256, verify_sha256

log = logging.getLogger("modeldeploy.fetch")


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


def _drop_unusable_reference(staging: Path, uri: str) -> None:
    """The drift reference is optional: anything but a valid one (a login page, another file
    under that name) is left out with a warning, and the server runs without drift metrics."""
    path = staging / REFERENCE_FILE
    if not path.is_file():
        return
    try:
        Reference.from_json(path.read_bytes(), REFERENCE_FILE)
    except ReferenceDataError as e:
        log.warning(
            "%s: skipping %s: %s; the server will run without drift metrics", uri, path.name, e
        )
        path.unlink()


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
        _drop_unusable_reference(staging, uri)
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
