"""KServe V1 endpoints: thin, each one body → codec (../protocol_v1.py) → dataplane → codec."""

from __future__ import annotations

from modeldeploy_serving import protocol_v1
from modeldeploy_serving.dataplane import DataPlane, Results
from modeldeploy_serving.rest.body import read_body
from modeldeploy_serving.rest.types import JSON, Receive, Response, Scope


class V1Endpoints:
    def __init__(self, dataplane: DataPlane, max_body_bytes: int) -> None:
        self.dataplane = dataplane
        self.max_body_bytes = max_body_bytes

    async def predict(self, scope: Scope, receive: Receive) -> Response:
        model = self.dataplane.require_model()
        body = await read_body(scope, receive, self.max_body_bytes)
        return (
            200,
            await self.dataplane.serve(model, body, protocol_v1.parse_predict, _encode),
            JSON,
        )

    async def model_status(self, scope: Scope, receive: Receive) -> Response:
        ready = self.dataplane.ready
        body = protocol_v1.encode_model_status(self.dataplane.name, ready)
        return 200 if ready else 503, body, JSON

    async def model_list(self, scope: Scope, receive: Receive) -> Response:
        return 200, protocol_v1.encode_model_list([self.dataplane.name]), JSON

    async def live(self, scope: Scope, receive: Receive) -> Response:
        return 200, protocol_v1.LIVE, JSON


def _encode(request: protocol_v1.PredictRequest, results: Results) -> bytes:
    [(_, predictions)] = results
    return protocol_v1.encode_predictions(predictions)
