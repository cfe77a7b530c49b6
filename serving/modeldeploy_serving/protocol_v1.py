"""KServe's V1 REST protocol: request parsing and response bodies.

`POST /v1/models/<name>:predict` takes `{"instances": [[f1, f2, ...], ...]}` and answers
`{"predictions": [...]}`, one prediction per row. For class probabilities add
`"parameters": {"method": "predict_proba"}`; the predictions are then one list of probabilities
per row, in the order of the model's classes (`GET /v2/models/<name>` lists them). `GET /`
answers `{"status": "alive"}` like KServe's server, for its client's liveness check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from modeldeploy_serving.errors import BadRequest
from modeldeploy_serving.model import Method
from modeldeploy_serving.tensor import json_ready, rows_from_json

METHODS: tuple[Method, ...] = ("predict", "predict_proba")
# KServe's answer at `GET /` (its DataPlane.live), what its V1 client checks for liveness.
LIVE = b'{"status":"alive"}'
_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class PredictRequest:
    rows: np.ndarray
    method: Method

    @property
    def outputs(self) -> tuple[Method, ...]:
        return (self.method,)


def loads_object(body: bytes, expected: str) -> dict[str, Any]:
    """The JSON object in `body`; `BadRequest` saying what `expected` looks like otherwise."""
    if not body:
        raise BadRequest(f"request body is empty; send a JSON object with {expected}")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"request body is not valid JSON: {e}") from e
    if not isinstance(doc, dict):
        raise BadRequest(f"request body must be a JSON object with {expected}")
    return doc


def _method(doc: dict[str, Any]) -> Method:
    parameters = doc.get("parameters")
    if parameters is None:
        return "predict"
    if not isinstance(parameters, dict):
        raise BadRequest('\'parameters\' must be an object, e.g. {"method": "predict_proba"}')
    method = parameters.get("method", "predict")
    if method == "predict_proba":
        return "predict_proba"
    if method != "predict":
        raise BadRequest(f"parameters.method must be one of {', '.join(METHODS)}; got {method!r}")
    return "predict"


def parse_predict(body: bytes) -> PredictRequest:
    doc = loads_object(body, "an 'instances' list of rows")
    if "instances" not in doc:
        raise BadRequest("request body has no 'instances': send {\"instances\": [[...], ...]}")
    return PredictRequest(rows=rows_from_json(doc["instances"], "instances"), method=_method(doc))


def encode_predictions(predictions: np.ndarray) -> bytes:
    return orjson.dumps({"predictions": json_ready(predictions)}, option=_DUMP_OPTIONS)


def encode_model_status(name: str, ready: bool) -> bytes:
    return orjson.dumps({"name": name, "ready": ready})


def encode_model_list(names: list[str]) -> bytes:
    return orjson.dumps({"models": names})
