"""The ASGI application: the lifespan and the request cycle, over the dataplane and the routes.

Plain ASGI with no framework on the hot path. A request is routed (rest/routes.py), the model
and version its path names are checked, then the method; the endpoint (rest/v1.py, rest/v2.py)
reads and parses the body, the dataplane (dataplane.py) predicts, and the answer goes out with
its content length. Every refusal is a `RequestError` turned into a JSON `{"error": ...}` with
its 4xx status; only a model that is still loading answers 503, and only a bug 500. Inference
calls are then counted in the request metrics, under the protocol their route names.
"""

from __future__ import annotations

import logging
import time

import orjson

from modeldeploy_serving.batching import MicroBatcher
from modeldeploy_serving.dataplane import DataPlane
from modeldeploy_serving.drift import Reference
from modeldeploy_serving.errors import MethodNotAllowed, RequestError
from modeldeploy_serving.metrics import ServingMetrics
from modeldeploy_serving.model import ServedModel
from modeldeploy_serving.rest.body import ClientDisconnected
from modeldeploy_serving.rest.routes import RouteTable, scrape_endpoint
from modeldeploy_serving.rest.types import JSON, Receive, Scope, Send
from modeldeploy_serving.rest.v1 import V1Endpoints
from modeldeploy_serving.rest.v2 import V2Endpoints
from modeldeploy_serving.settings import ServerSettings

log = logging.getLogger(__name__)


class ServingApp:
    def __init__(
        self,
        settings: ServerSettings,
        metrics: ServingMetrics,
        model: ServedModel | None = None,
        reference: Reference | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.dataplane = DataPlane(settings, metrics, model, reference)
        self.routes = RouteTable(
            settings.name,
            V1Endpoints(self.dataplane, settings.max_body_bytes),
            V2Endpoints(self.dataplane, settings.max_body_bytes),
            scrape_endpoint(metrics),
        )

    @property
    def model(self) -> ServedModel | None:
        """The model being served; None while it loads."""
        return self.dataplane.model

    @property
    def batcher(self) -> MicroBatcher | None:
        """The micro-batcher, when --micro-batch-rows turned it on and the model is loaded."""
        return self.dataplane.batcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.dataplane.model is None:
                    self.dataplane.start_loading()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        counted_as: int | None = None
        extra: tuple[tuple[bytes, bytes], ...] = ()
        try:
            route = self.routes.route(scope["path"])
            counted_as = route.counted_as
            self.dataplane.check_addressed(route.model, route.version)
            if scope["method"] not in route.methods:
                raise MethodNotAllowed(scope["method"], scope["path"], route.methods)
            status, body, content_type = await route.endpoint(scope, receive)
        except RequestError as e:
            status, body, content_type = e.status, orjson.dumps({"error": e.message}), JSON
            extra = e.headers
        except ClientDisconnected:
            return
        except Exception as e:  # a bug, not the caller's fault: say so, keep serving
            log.exception("error handling %s %s", scope["method"], scope["path"])
            status, content_type = 500, JSON
            body = orjson.dumps({"error": f"internal error: {type(e).__name__}: {e}"})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        if counted_as is not None:
            self.metrics.record_request(counted_as, status, time.perf_counter() - started)
