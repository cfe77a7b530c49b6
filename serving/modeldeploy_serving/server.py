"""`modeldeploy serve`: the model server process.

One process (the default) runs uvicorn on uvloop with httptools and `ServingApp`. The pinned
sha256 is checked before the port opens, so a wrong artifact fails the pod at once; the model
itself loads in a thread after the port opens, so liveness answers while readiness says 503.
SIGTERM stops accepting connections, lets in-flight requests finish (up to --graceful-timeout
seconds) and exits 0. With --workers N a supervisor (supervisor.py) runs N such processes on one
listening socket.

The server writes nothing outside the metrics directory that --workers > 1 needs ($TMPDIR or
--metrics-dir): the root filesystem may be read-only.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys

import uvicorn

from modeldeploy_serving.app import ServingApp
from modeldeploy_serving.connections import guarded_protocol
from modeldeploy_serving.errors import ModelLoadError
from modeldeploy_serving.metrics import CounterStore, ServingMetrics
from modeldeploy_serving.model import locate_artifact, verify_sha256
from modeldeploy_serving.settings import ServerSettings, parse_settings

log = logging.getLogger("modeldeploy.serve")

EXIT_BAD_MODEL = 2


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
        stream=sys.stderr,
    )


def build_app(settings: ServerSettings) -> ServingApp:
    store = (
        CounterStore(settings.metrics_dir, str(settings.worker_index))
        if settings.metrics_dir is not None
        else CounterStore()
    )
    metrics = ServingMetrics(
        settings.name,
        settings.version,
        store,
        drift_window_seconds=settings.drift_window_seconds,
        drift_min_rows=settings.drift_min_rows,
    )
    return ServingApp(settings, metrics)


def serve(settings: ServerSettings) -> int:
    """Run one server process until SIGTERM/SIGINT (0) or a model that cannot load (non-zero)."""
    try:
        artifact = locate_artifact(settings.model_dir)
        if settings.sha256 is not None:
            verify_sha256(artifact, settings.sha256)
    except ModelLoadError as e:
        log.error("%s", e)
        return EXIT_BAD_MODEL
    app = build_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=guarded_protocol(settings.header_timeout, settings.body_timeout),
        limit_concurrency=settings.limit_concurrency,
        lifespan="on",
        access_log=False,  # logging each request would cost more than predicting it
        log_config=None,
        log_level=settings.log_level,
        server_header=False,
        timeout_graceful_shutdown=int(settings.graceful_timeout),
        backlog=2048,
    )
    server = uvicorn.Server(config)
    exit_code = 0

    def fatal(error: BaseException) -> None:
        nonlocal exit_code
        exit_code = EXIT_BAD_MODEL
        server.should_exit = True

    app.dataplane.on_fatal = fatal
    # uvicorn re-raises the stop signal once it has drained; a no-op handler makes that a
    # clean return instead of death by signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)
    sockets = None
    if settings.worker_fd is not None:
        sockets = [socket.socket(fileno=settings.worker_fd)]
    log.info(
        "serving %s version %s from %s on %s:%s",
        settings.name,
        settings.version,
        settings.model_dir,
        settings.host,
        settings.port,
    )
    server.run(sockets=sockets)
    if not server.started and exit_code == 0:
        return 1  # could not bind, or startup failed; uvicorn has said why
    return exit_code


def main(argv: list[str]) -> int:
    settings = parse_settings(argv)
    configure_logging(settings.log_level)
    if settings.workers > 1 and settings.worker_fd is None:
        from modeldeploy_serving.supervisor import supervise

        return supervise(settings, argv)
    return serve(settings)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
