"""The ASGI application: routing, request bodies, the model's lifecycle, responses and metrics.

Plain ASGI with no framework on the hot path: a route is found with a few string comparisons,
the body is read once under a size limit, the protocol module parses it, the model predicts, and
orjson writes the answer. Every refusal is a `RequestError` turned into a JSON `{"error": ...}`
with its 4xx status; only a model that is still loading answers 503.

Endpoints (`<name>` is --name; `/versions/<version>` may follow it in V2 paths):
    GET  /v2/health/live  /v2/health/ready  /v2  /v2/models/<name>  /v2/models/<name>/ready
    POST /v2/models/<name>/infer
    GET  /v1/models  /v1/models/<name>          POST /v1/models/<name>:predict
    GET  /   (KServe's V1 liveness: its client's `is_server_live` reads `{"status": "alive"}`)
    GET  /metrics
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from modeldeploy_serving import protocol_v1, protocol_v2
from modeldeploy_serving.batching import MicroBatcher
from modeldeploy_serving.drift import Reference, load_reference
from modeldeploy_serving.errors import (
    MethodNotAllowed,
    ModelLoadError,
    NotFound,
    NotReady,
    PayloadTooLarge,
    RequestError,
)
from modeldeploy_serving.metrics import CONTENT_TYPE, PROTOCOLS, ServingMetrics
from modeldeploy_serving.model import Method, ServedModel
from modeldeploy_serving.settings import ServerSettings

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Response = tuple[int, bytes, bytes]

JSON = b"application/json"
V1, V2 = PROTOCOLS.index("v1"), PROTOCOLS.index("v2")
GET, POST = ("GET",), ("POST",)
SERVER_VERSION = "0.1.0"


class ClientDisconnected(Exception):
    """The client went away before sending its whole body: nothing to answer."""


@dataclass(frozen=True)
class Route:
    handler: Callable[[Scope, Receive], Awaitable[Response]]
    methods: tuple[str, ...]
    # The protocol an inference call is counted under in the request metrics; None for every
    # other endpoint, so that probes, metadata and scrapes never dilute a canary's success rate
    # and latency, and a loading model's readiness 503 is not taken for a failed request.
    counted_as: int | None
    model: str | None = None
    version: str | None = None


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
        self.model: ServedModel | None = None
        self.batcher: MicroBatcher | None = None
        self.on_fatal: Callable[[BaseException], None] | None = None
        self._loading: Future[tuple[ServedModel, Reference | None]] | None = None
        self._metadata = protocol_v2.encode_model_metadata(settings.name, settings.version, None)
        if model is not None:
            self.set_model(model, reference)

    # -- the model's lifecycle -------------------------------------------------------------

    def set_model(self, model: ServedModel, reference: Reference | None) -> None:
        expected = model.signature.n_features
        if reference is not None and expected is not None and len(reference.features) != expected:
            raise ModelLoadError(
                f"reference.json describes {len(reference.features)} features, "
                f"the model takes {expected}: rebuild it with `modeldeploy reference`"
            )
        self._metadata = protocol_v2.encode_model_metadata(
            self.settings.name, self.settings.version, model.signature
        )
        self.metrics.model_ready(model.signature, reference, model.sha256)
        if self.settings.micro_batch_rows > 1:
            self.batcher = MicroBatcher(model, self.settings.micro_batch_rows)
        self.model = model
        log.info(
            "model %s version %s ready: %s from %s (sha256 %s)%s",
            self.settings.name,
            self.settings.version,
            model.signature.estimator_type,
            model.artifact,
            model.sha256,
            ", drift reference loaded" if reference is not None else ", no drift reference",
        )

    def _load(self) -> tuple[ServedModel, Reference | None]:
        s = self.settings
        model = ServedModel.load(s.model_dir, s.sha256, s.skops_trusted)
        return model, load_reference(s.model_dir)

    def start_loading(self) -> None:
        """Load in a thread so that liveness answers while a large model unpickles."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self._load)
        future.add_done_callback(self._loaded)

    def _loaded(self, future: asyncio.Future[tuple[ServedModel, Reference | None]]) -> None:
        try:
            self.set_model(*future.result())
        except Exception as e:
            log.error("cannot serve the model: %s", e)
            if self.on_fatal is not None:
                self.on_fatal(e)

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.model is None:
                    self.start_loading()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        counted_as: int | None = None
        extra: tuple[tuple[bytes, bytes], ...] = ()
        try:
            route = self.route(scope["path"])
            counted_as = route.counted_as
            if route.model is not None and route.model != self.settings.name:
                raise NotFound(
                    f"model {route.model!r} is not served here; this server serves "
                    f"{self.settings.name!r}"
                )
            if route.version is not None and route.version != self.settings.version:
                raise NotFound(
                    f"version {route.version!r} of {self.settings.name!r} is not served here; "
                    f"this server serves version {self.settings.version!r}"
                )
            if scope["method"] not in route.methods:
                raise MethodNotAllowed(scope["method"], scope["path"], route.methods)
            status, body, content_type = await route.handler(scope, receive)
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

    # -- routing ---------------------------------------------------------------------------

    def route(self, path: str) -> Route:
        if path.startswith("/v2/models/"):
            name, _, rest = path[len("/v2/models/") :].partition("/")
            version = None
            if rest.startswith("versions/"):
                version, _, rest = rest[len("versions/") :].partition("/")
            if rest == "infer":
                return Route(self.v2_infer, POST, V2, name, version)
            if rest == "ready":
                return Route(self.v2_model_ready, GET, None, name, version)
            if rest == "":
                return Route(self.v2_model_metadata, GET, None, name, version)
        elif path.startswith("/v1/models/"):
            rest = path[len("/v1/models/") :]
            name, colon, verb = rest.partition(":")
            if colon and verb == "predict":
                return Route(self.v1_predict, POST, V1, name)
            if not colon and "/" not in name:
                return Route(self.v1_model_status, GET, None, name)
            if colon:
                raise NotFound(f"the V1 verb {verb!r} is not supported here; use :predict")
        elif path == "/v2/health/live":
            return Route(self.live, GET, None)
        elif path == "/":
            return Route(self.v1_live, GET, None)
        elif path == "/v2/health/ready":
            return Route(self.ready, GET, None)
        elif path == "/metrics":
            return Route(self.scrape, GET, None)
        elif path in ("/v2", "/v2/"):
            return Route(self.v2_server_metadata, GET, None)
        elif path in ("/v1/models", "/v1/models/"):
            return Route(self.v1_model_list, GET, None)
        raise NotFound(
            f"no endpoint at {path}; the model is at /v1/models/{self.settings.name}:predict and "
            f"/v2/models/{self.settings.name}/infer"
        )

    # -- request bodies --------------------------------------------------------------------

    async def read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # the HTTP layer has already refused such a request
                if declared > limit:
                    raise PayloadTooLarge(limit)
                break
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise PayloadTooLarge(limit)
            return body
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    # -- endpoints -------------------------------------------------------------------------

    def _require_model(self) -> ServedModel:
        model = self.model
        if model is None:
            raise NotReady(f"model {self.settings.name!r} is still loading; retry shortly")
        return model

    async def _run(self, model: ServedModel, method: Method, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] >= self.settings.offload_rows:
            # A big batch would stall every other request and the probes: predict in a thread.
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, model.run, method, rows)
        if self.batcher is not None:
            return await self.batcher.run(method, rows)
        return model.run(method, rows)

    async def v1_predict(self, scope: Scope, receive: Receive) -> Response:
        model = self._require_model()
        request = protocol_v1.parse_predict(await self.read_body(scope, receive))
        model.check_rows(request.rows)
        result = await self._run(model, request.method, request.rows)
        self.metrics.record_batch(
            request.rows,
            result if request.method == "predict" else None,
            model.signature.allow_nan,
        )
        return 200, protocol_v1.encode_predictions(result), JSON

    async def v2_infer(self, scope: Scope, receive: Receive) -> Response:
        model = self._require_model()
        body = await self.read_body(scope, receive)
        request = protocol_v2.parse_infer(body, model.signature)
        model.check_rows(request.rows)
        results = [
            (method, await self._run(model, method, request.rows)) for method in request.outputs
        ]
        predicted = next((r for m, r in results if m == "predict"), None)
        self.metrics.record_batch(request.rows, predicted, model.signature.allow_nan)
        encoded = protocol_v2.encode_infer(
            self.settings.name, self.settings.version, request.id, results
        )
        return 200, encoded, JSON

    async def v1_model_status(self, scope: Scope, receive: Receive) -> Response:
        ready = self.model is not None
        body = protocol_v1.encode_model_status(self.settings.name, ready)
        return 200 if ready else 503, body, JSON

    async def v1_model_list(self, scope: Scope, receive: Receive) -> Response:
        return 200, protocol_v1.encode_model_list([self.settings.name]), JSON

    async def v2_model_metadata(self, scope: Scope, receive: Receive) -> Response:
        return 200, self._metadata, JSON

    async def v2_model_ready(self, scope: Scope, receive: Receive) -> Response:
        ready = self.model is not None
        body = orjson.dumps({"name": self.settings.name, "ready": ready})
        return 200 if ready else 503, body, JSON

    async def v2_server_metadata(self, scope: Scope, receive: Receive) -> Response:
        return 200, protocol_v2.encode_server_metadata(SERVER_VERSION), JSON

    async def live(self, scope: Scope, receive: Receive) -> Response:
        return 200, b'{"live":true}', JSON

    async def v1_live(self, scope: Scope, receive: Receive) -> Response:
        return 200, protocol_v1.LIVE, JSON

    async def ready(self, scope: Scope, receive: Receive) -> Response:
        if self.model is None:
            return 503, b'{"ready":false}', JSON
        return 200, b'{"ready":true}', JSON

    async def scrape(self, scope: Scope, receive: Receive) -> Response:
        return 200, self.metrics.render(), CONTENT_TYPE.encode()
