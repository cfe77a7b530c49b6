"""The supervisor of `modeldeploy serve --workers N`: one listening socket, N worker processes.

It binds the port, starts N copies of the server that inherit the socket, and gives them one
metrics directory (--metrics-dir, else a new directory under $TMPDIR, removed at exit) where each
keeps its counters so that any of them can answer a scrape with the sum. SIGTERM/SIGINT go to
every worker, which drain and exit; when a worker dies on its own the others are stopped the same
way and the supervisor exits 1, so that Kubernetes restarts the container.
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from modeldeploy_serving.settings import ServerSettings

log = logging.getLogger("modeldeploy.supervisor")


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


def supervise(settings: ServerSettings, argv: list[str]) -> int:
    try:
        sock = _listen(settings.host, settings.port)
    except OSError as e:
        log.error("cannot listen on %s:%s: %s", settings.host, settings.port, e)
        return 1
    own_dir = settings.metrics_dir is None
    metrics_dir = (
        Path(tempfile.mkdtemp(prefix="modeldeploy-metrics-"))
        if settings.metrics_dir is None
        else settings.metrics_dir
    )
    if not own_dir:
        # Counters of a previous run would be summed into ours.
        for stale in metrics_dir.glob("*/*.npy"):
            stale.unlink()
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    children: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for index in range(settings.workers):
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "modeldeploy_serving.server",
                        *argv,
                        "--worker-fd",
                        str(sock.fileno()),
                        "--worker-index",
                        str(index),
                        "--metrics-dir",
                        str(metrics_dir),
                    ],
                    pass_fds=(sock.fileno(),),
                )
            )
        log.info(
            "%d workers on %s:%s, metrics in %s",
            settings.workers,
            settings.host,
            sock.getsockname()[1],
            metrics_dir,
        )
        sock.close()  # the workers hold it now
        failed = False
        while any(child.poll() is None for child in children):
            for child in children:
                code = child.poll()
                if code is not None and not stopping:
                    log.error("worker %d exited with %d: stopping the others", child.pid, code)
                    failed = True
                    stop(signal.SIGTERM, None)
            time.sleep(0.2)
        codes = [child.returncode for child in children]
        return 1 if failed or any(codes) else 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        if own_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
