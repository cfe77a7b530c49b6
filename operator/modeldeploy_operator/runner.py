"""Runs the operator process: logging, kopf settings, the controller, and /metrics + health."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path
from typing import Any, cast

import kopf
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from modeldeploy_operator.controller import Controller
from modeldeploy_operator.retraining.receiver import receiver_app
from modeldeploy_operator.settings import OperatorSettings

log = logging.getLogger("modeldeploy")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # kopf logs every handled event at INFO; its warnings and errors are what an operator needs.
    logging.getLogger("kopf").setLevel(logging.WARNING)


async def serve_observability(controller: Controller, port: int) -> web.AppRunner:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        alive = controller.alive()
        return web.Response(status=200 if alive else 503, text="ok" if alive else "workers stopped")

    async def readyz(_: web.Request) -> web.Response:
        ready = controller.ready()
        return web.Response(status=200 if ready else 503, text="ok" if ready else "starting")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner


async def serve_alert_receiver(
    controller: Controller, token_file: Path, port: int
) -> web.AppRunner:
    """Alertmanager's webhook receiver, on its own port: the one endpoint to expose to
    Alertmanager (a Service of its own), apart from /metrics."""
    runner = web.AppRunner(receiver_app(controller.deliver_alerts, token_file), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner


async def run_async(settings: OperatorSettings, stop: asyncio.Event) -> bool:
    """Runs until kopf stops: on SIGTERM/SIGINT, or when it gives up (the ModelDeployment CRD
    removed mid-watch ends its watcher; the optional kinds are the controller's own watches,
    which outlive their CRDs); the process then exits and Kubernetes restarts it, which costs no
    writes (a restarted operator finds everything in place). False on an unexpected error."""
    controller = Controller(settings)
    observability = (
        await serve_observability(controller, settings.metrics_port)
        if settings.metrics_port
        else None
    )
    receiver = (
        await serve_alert_receiver(
            controller, settings.alertmanager_token_file, settings.alertmanager_port
        )
        if settings.alertmanager_token_file is not None
        else None
    )
    try:
        await kopf.operator(
            registry=controller.registry,
            settings=controller.kopf_settings(),
            clusterwide=settings.all_namespaces,
            namespaces=settings.namespaces,
            standalone=settings.peering is None,
            peering_name=settings.peering,
            priority=settings.peering_priority,
            # kopf types it as its own NewType of str, not exported.
            identity=cast(Any, controller.identity),
            stop_flag=stop,
        )
    except Exception:
        log.exception("the operator stopped on an error")
        return False
    finally:
        for server in (observability, receiver):
            if server is not None:
                await server.cleanup()
    return True


def run(settings: OperatorSettings) -> int:
    configure_logging(settings.log_format)
    log.info(
        "starting modeldeploy operator (namespaces: %s)",
        ", ".join(settings.namespaces) or "all",
    )

    async def main() -> bool:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await run_async(settings, stop)

    return 0 if asyncio.run(main()) else 1
