"""Open Inference Protocol (V2) endpoints: thin, each one body → codec (../protocol_v2.py) →
dataplane → codec."""

from __future__ import annotations

import orjson

from modeldeploy_serving import protocol_v2
from modeldeploy_serving.dataplane import DataPlane, Results
from modeldeploy_serving.model import ServedModel
from modeldeploy_serving.rest.body import read_body
from modeldeploy_serving.rest.types import JSON, Receive, Response, Scope

SERVER_VERSION = "0.1.0"


class V2Endpoints:
    def __init__(self, dataplane: DataPlane, max_body_bytes: int) -> None:
        self.dataplane = dataplane
        self.max_body_bytes = max_body_bytes
        # The metadata document, encoded once per model (the model it was encoded for).
        self._metadata: tuple[ServedModel | None, bytes] = (None, self._encode_metadata(None))

    async def infer(self, scope: Scope, receive: Receive) -> Response:
        model = self.dataplane.require_model()
        body = await read_body(scope, receive, self.max_body_bytes)
        signature, name, version = model.signature, self.dataplane.name, self.dataplane.version

        def decode(body: bytes) -> protocol_v2.InferRequest:
            return protocol_v2.parse_infer(body, signature)

        def encode(request: protocol_v2.InferRequest, results: Results) -> bytes:
            return protocol_v2.encode_infer(name, version, request.id, results)

        return 200, await self.dataplane.serve(model, body, decode, encode), JSON

    async def model_ready(self, scope: Scope, receive: Receive) -> Response:
        ready = self.dataplane.ready
        body = orjson.dumps({"name": self.dataplane.name, "ready": ready})
        return 200 if ready else 503, body, JSON

    async def model_metadata(self, scope: Scope, receive: Receive) -> Response:
        model = self.dataplane.model
        encoded_for, encoded = self._metadata
        if model is not encoded_for:
            encoded = self._encode_metadata(model)
            self._metadata = (model, encoded)
        return 200, encoded, JSON

    def _encode_metadata(self, model: ServedModel | None) -> bytes:
        if model is None:
            return protocol_v2.encode_model_metadata(
                self.dataplane.name, self.dataplane.version, None
            )
        return protocol_v2.encode_model_metadata(
            self.dataplane.name, self.dataplane.version, model.signature, model.path
        )

    async def server_metadata(self, scope: Scope, receive: Receive) -> Response:
        return 200, protocol_v2.encode_server_metadata(SERVER_VERSION), JSON

    async def live(self, scope: Scope, receive: Receive) -> Response:
        return 200, b'{"live":true}', JSON

    async def ready(self, scope: Scope, receive: Receive) -> Response:
        if self.dataplane.ready:
            return 200, b'{"ready":true}', JSON
        return 503, b'{"ready":false}', JSON
