"""The `modeldeploy fetch` command: its flags and exit status (0 fetched, 1 not)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from modeldeploy_serving.contract import ENV_PVC_ROOT, ENV_SHA256
from modeldeploy_serving.errors import FetchError
from modeldeploy_serving.fetch.publish import fetch
from modeldeploy_serving.fetch.source import DEFAULT_PVC_ROOT, FetchOptions
from modeldeploy_serving.redaction import RedactingFilter

log = logging.getLogger("modeldeploy.fetch")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="modeldeploy fetch",
        description="Download a model into a directory and verify its sha256.",
    )
    parser.add_argument("uri", help="file://, pvc://, http(s)://, s3://, gs:// or models:/")
    parser.add_argument("dest", type=Path, help="the model directory the server will read")
    parser.add_argument("--sha256", default=os.environ.get(ENV_SHA256) or None)
    parser.add_argument(
        "--pvc-root",
        type=Path,
        default=Path(os.environ.get(ENV_PVC_ROOT) or DEFAULT_PVC_ROOT),
        help="where pvc://CLAIM is mounted as CLAIM/ (default /mnt/pvc)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per network step")
    parser.add_argument("--max-bytes", type=int, default=None, help="refuse larger downloads")
    parser.add_argument("--mlflow-tracking-uri", default=None, help="default $MLFLOW_TRACKING_URI")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())  # httpx's request lines name the URL too
    logging.basicConfig(
        level="INFO",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[handler],
    )
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
