"""The server's settings: one explicit object, built from `modeldeploy serve` flags and the pod
environment (`MODELDEPLOY_MODEL`, `MODELDEPLOY_VERSION` stand in for --name/--version)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from modeldeploy_serving.contract import (
    ENV_MODEL,
    ENV_SHA256,
    ENV_SKOPS_TRUSTED,
    ENV_VERSION,
    SERVER_PORT,
)
from modeldeploy_serving.model import normalize_sha256

DEFAULT_PORT = SERVER_PORT
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
# Larger request bodies are decoded, predicted, counted and encoded in a thread, so that probes
# and small requests keep answering while they are worked on. Measured on the iris model (4
# features, drift on): a 53 KB body (3,000 rows) takes ~3 ms of the event loop, 1.7 MB ~0.6 s,
# 10 MB seconds; a thread hop costs ~0.1-0.2 ms, too much for the small bodies of most traffic.
DEFAULT_OFFLOAD_BYTES = 64 * 1024
# Seconds a client has for a request's line and headers, then for its body (connections.py).
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
# Connections (and requests in progress) one server process takes before answering 503: the
# bound on what a flood of slow clients can hold while their deadlines run.
DEFAULT_LIMIT_CONCURRENCY = 1024


@dataclass(frozen=True)
class ServerSettings:
    model_dir: Path
    name: str
    version: str = "1"
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    workers: int = 1
    sha256: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    graceful_timeout: float = 30.0
    offload_rows: int = 2048
    offload_bytes: int = DEFAULT_OFFLOAD_BYTES
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    limit_concurrency: int = DEFAULT_LIMIT_CONCURRENCY
    micro_batch_rows: int = 0  # 0: every request predicted on its own
    fast_path: bool = True  # serve a supported estimator by its exact fast path (fastpath/)
    drift_window_seconds: float = 600.0
    drift_min_rows: int = 100
    skops_trusted: tuple[str, ...] = ()
    metrics_dir: Path | None = None
    log_level: str = "info"
    # Set by the supervisor for its workers only.
    worker_fd: int | None = field(default=None, repr=False)
    worker_index: int = 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _sha256(text: str) -> str:
    try:
        return normalize_sha256(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _env_path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value) if value else None


def build_parser() -> argparse.ArgumentParser:
    env = os.environ
    p = argparse.ArgumentParser(
        prog="modeldeploy serve",
        description="Serve a scikit-learn model over KServe V1 and Open Inference Protocol V2.",
    )
    p.add_argument("--model-dir", type=Path, required=True, help="holds model.joblib or .skops")
    p.add_argument("--name", default=env.get(ENV_MODEL), help=f"${ENV_MODEL}")
    p.add_argument("--version", default=env.get(ENV_VERSION, "1"), help=f"${ENV_VERSION}")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--workers", type=_positive_int, default=1, help="server processes")
    p.add_argument(
        "--sha256",
        type=_sha256,
        default=env.get(ENV_SHA256) or None,
        help=f"refuse to start unless the model file has this digest (${ENV_SHA256})",
    )
    p.add_argument("--max-body-bytes", type=_positive_int, default=DEFAULT_MAX_BODY_BYTES)
    p.add_argument(
        "--graceful-timeout",
        type=float,
        default=30.0,
        help="seconds to finish in-flight requests after SIGTERM",
    )
    p.add_argument(
        "--offload-rows",
        type=_positive_int,
        default=2048,
        help="batches of at least this many rows are predicted off the event loop",
    )
    p.add_argument(
        "--offload-bytes",
        type=_positive_int,
        default=DEFAULT_OFFLOAD_BYTES,
        help="request bodies of at least this size are decoded, predicted and encoded off the "
        "event loop",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=DEFAULT_HEADER_TIMEOUT,
        help="seconds a client has to send a request line and headers (then 408 and close)",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=DEFAULT_BODY_TIMEOUT,
        help="seconds a client has to send a request body after its headers (then 408 and close)",
    )
    p.add_argument(
        "--limit-concurrency",
        type=_positive_int,
        default=DEFAULT_LIMIT_CONCURRENCY,
        help="open connections or requests in progress per process beyond which new requests "
        "get 503",
    )
    p.add_argument(
        "--micro-batch-rows",
        type=int,
        default=0,
        help="coalesce concurrent requests into estimator calls of up to N rows (0: off; "
        "floating-point outputs may then differ in the last bits, see docs/serving.md)",
    )
    p.add_argument(
        "--fast-path",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve a supported estimator by its exact fast path once it matches scikit-learn "
        "bit for bit on check rows (--no-fast-path: always call scikit-learn)",
    )
    p.add_argument("--drift-window", type=float, default=600.0, help="seconds of traffic")
    p.add_argument("--drift-min-rows", type=int, default=100)
    p.add_argument(
        "--skops-trusted",
        action="append",
        default=[t for t in env.get(ENV_SKOPS_TRUSTED, "").split(",") if t],
        metavar="TYPE",
        help=f"a type to trust in a .skops file (repeatable; ${ENV_SKOPS_TRUSTED})",
    )
    p.add_argument(
        "--metrics-dir",
        type=Path,
        default=_env_path("PROMETHEUS_MULTIPROC_DIR"),
        help="with --workers > 1: where workers share counters (default: a new dir in $TMPDIR)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--worker-fd", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    return p


def parse_settings(argv: list[str]) -> ServerSettings:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.name:
        parser.error(f"--name (or ${ENV_MODEL}) is required")
    return ServerSettings(
        model_dir=args.model_dir,
        name=args.name,
        version=args.version,
        host=args.host,
        port=args.port,
        workers=args.workers,
        sha256=args.sha256,
        max_body_bytes=args.max_body_bytes,
        graceful_timeout=args.graceful_timeout,
        offload_rows=args.offload_rows,
        offload_bytes=args.offload_bytes,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        limit_concurrency=args.limit_concurrency,
        micro_batch_rows=max(0, args.micro_batch_rows),
        fast_path=args.fast_path,
        drift_window_seconds=args.drift_window,
        drift_min_rows=args.drift_min_rows,
        skops_trusted=tuple(args.skops_trusted),
        metrics_dir=args.metrics_dir,
        log_level=args.log_level,
        worker_fd=args.worker_fd,
        worker_index=args.worker_index,
    )
