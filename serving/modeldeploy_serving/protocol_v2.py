"""The Open Inference Protocol (KServe V2) REST: infer requests, responses and metadata.

`POST /v2/models/<name>/infer` takes exactly one input tensor of shape `[rows, features]` with a
numeric datatype (BOOL, INT*, UINT*, FP16/32/64) and `data` either flat in row-major order or
nested to match `shape`. Outputs, chosen with `"outputs": [{"name": ...}]`:
- `predict` (the default): shape `[rows]`, INT64/FP64/BYTES... after the model's labels or values;
- `predict_proba` (classifiers): FP64, shape `[rows, classes]`, columns in the order of the
  `classes` parameter of the model metadata.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from modeldeploy_serving.errors import BadRequest
from modeldeploy_serving.model import Method, ModelSignature, ServingPath
from modeldeploy_serving.protocol_v1 import loads_object
from modeldeploy_serving.tensor import array_from_json, json_ready

OUTPUTS: tuple[Method, ...] = ("predict", "predict_proba")
INPUT_NAME = "input-0"

# datatype → (numpy dtype, accepted kinds of the parsed JSON numbers)
DATATYPES: dict[str, tuple[np.dtype[Any], str]] = {
    "BOOL": (np.dtype(np.bool_), "b"),
    "UINT8": (np.dtype(np.uint8), "iu"),
    "UINT16": (np.dtype(np.uint16), "iu"),
    "UINT32": (np.dtype(np.uint32), "iu"),
    "UINT64": (np.dtype(np.uint64), "iu"),
    "INT8": (np.dtype(np.int8), "iu"),
    "INT16": (np.dtype(np.int16), "iu"),
    "INT32": (np.dtype(np.int32), "iu"),
    "INT64": (np.dtype(np.int64), "iu"),
    "FP16": (np.dtype(np.float16), "biuf"),
    "FP32": (np.dtype(np.float32), "biuf"),
    "FP64": (np.dtype(np.float64), "biuf"),
}
_KIND_NAMES = {"b": "booleans", "i": "integers", "u": "integers", "f": "non-integer numbers"}
_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class InferRequest:
    rows: np.ndarray
    outputs: tuple[Method, ...]
    id: str | None
    input_name: str


def datatype_of(array: np.ndarray) -> str:
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'U' if kind == 'u' else ''}INT{size * 8}"
    if kind == "f":
        return f"FP{size * 8}"
    return "BYTES"


def _field(tensor: dict[str, Any], key: str, index: int) -> Any:
    if key not in tensor:
        raise BadRequest(f"inputs[{index}] has no '{key}'")
    return tensor[key]


def _shape(value: Any) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)
    ):
        raise BadRequest(f"inputs[0].shape must be a list of non-negative integers; got {value!r}")
    return tuple(value)


def _tensor(tensor: Any) -> tuple[np.ndarray, str]:
    if not isinstance(tensor, dict):
        raise BadRequest("inputs[0] must be an object with name, shape, datatype and data")
    name = _field(tensor, "name", 0)
    if not isinstance(name, str):
        raise BadRequest("inputs[0].name must be a string")
    shape = _shape(_field(tensor, "shape", 0))
    datatype = _field(tensor, "datatype", 0)
    if datatype == "BYTES":
        raise BadRequest("datatype BYTES is not supported: this model takes numeric features")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise BadRequest(
            f"inputs[0].datatype {datatype!r} is not a tensor datatype; use one of "
            + ", ".join(DATATYPES)
        )
    dtype, kinds = DATATYPES[datatype]
    data = array_from_json(_field(tensor, "data", 0), "inputs[0].data")
    if data.size and data.dtype.kind not in kinds:
        raise BadRequest(
            f"inputs[0] is declared {datatype} but its data holds {_KIND_NAMES[data.dtype.kind]}"
        )
    if data.ndim > 1 and data.shape != shape:
        raise BadRequest(
            f"inputs[0].data is nested as shape {list(data.shape)} but shape says {list(shape)}"
        )
    if data.size != math.prod(shape):
        raise BadRequest(
            f"inputs[0].shape {list(shape)} needs {math.prod(shape)} values; data has {data.size}"
        )
    if len(shape) != 2:
        raise BadRequest(f"inputs[0].shape must be [rows, features]; got {list(shape)}")
    if shape[0] == 0:
        raise BadRequest("inputs[0] has no rows: send at least one")
    if shape[1] == 0:
        raise BadRequest("inputs[0] has rows without features")
    if dtype.kind in "iu" and data.size:
        info = np.iinfo(dtype)
        if data.min() < info.min or data.max() > info.max:
            raise BadRequest(f"inputs[0].data holds values outside the range of {datatype}")
    if data.dtype == dtype:  # nothing to convert (FP64 from JSON numbers): nothing can overflow
        return data.reshape(shape), name
    with np.errstate(over="ignore"):
        rows = data.reshape(shape).astype(dtype, copy=False)
    return rows, name


def _outputs(value: Any, signature: ModelSignature) -> tuple[Method, ...]:
    if value is None:
        return ("predict",)
    if not isinstance(value, list) or not value:
        raise BadRequest("'outputs' must be a non-empty list of {\"name\": ...} objects")
    names: list[Method] = []
    for i, item in enumerate(value):
        name = item.get("name") if isinstance(item, dict) else None
        if name == "predict_proba":
            if not signature.has_proba:
                raise BadRequest(
                    f"outputs[{i}]: this model ({signature.estimator_type}) has no predict_proba"
                )
            names.append("predict_proba")
        elif name == "predict":
            names.append("predict")
        else:
            raise BadRequest(f"outputs[{i}].name must be one of {', '.join(OUTPUTS)}; got {name!r}")
    return tuple(dict.fromkeys(names))


def parse_infer(body: bytes, signature: ModelSignature) -> InferRequest:
    doc = loads_object(body, "an 'inputs' list holding one tensor")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest(
            "request body needs 'inputs': a list with one tensor "
            '{"name": ..., "shape": [rows, features], "datatype": "FP64", "data": [...]}'
        )
    if len(inputs) != 1:
        raise BadRequest(f"expected exactly one input tensor (rows x features); got {len(inputs)}")
    rows, input_name = _tensor(inputs[0])
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    return InferRequest(
        rows=rows,
        outputs=_outputs(doc.get("outputs"), signature),
        id=request_id,
        input_name=input_name,
    )


def encode_infer(
    name: str, version: str, request_id: str | None, results: list[tuple[Method, np.ndarray]]
) -> bytes:
    outputs = [
        {
            "name": method,
            "datatype": datatype_of(values),
            "shape": list(values.shape),
            "data": json_ready(values.reshape(-1)),
        }
        for method, values in results
    ]
    doc: dict[str, Any] = {"model_name": name, "model_version": version, "outputs": outputs}
    if request_id is not None:
        doc["id"] = request_id
    return orjson.dumps(doc, option=_DUMP_OPTIONS)


def encode_server_metadata(version: str) -> bytes:
    return orjson.dumps({"name": "modeldeploy", "version": version, "extensions": []})


def encode_model_metadata(
    name: str, version: str, signature: ModelSignature | None, path: ServingPath = "sklearn"
) -> bytes:
    """The model metadata; `path` says what computes the outputs of float64 rows (model.py)."""
    doc: dict[str, Any] = {"name": name, "versions": [version], "platform": "sklearn"}
    if signature is not None:
        n = signature.n_features if signature.n_features is not None else -1
        doc["inputs"] = [{"name": INPUT_NAME, "datatype": "FP64", "shape": [-1, n]}]
        outputs: list[dict[str, Any]] = [
            {
                "name": "predict",
                "datatype": datatype_of(signature.classes)
                if signature.classes is not None
                else "FP64",
                "shape": [-1],
            }
        ]
        if signature.has_proba and signature.classes is not None:
            outputs.append(
                {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(signature.classes)]}
            )
        doc["outputs"] = outputs
        parameters: dict[str, Any] = {
            "task": signature.task,
            "estimator": signature.estimator_type,
            "path": path,
        }
        if signature.classes is not None:
            parameters["classes"] = signature.classes.tolist()
        if signature.feature_names is not None:
            parameters["feature_names"] = list(signature.feature_names)
        doc["parameters"] = parameters
    return orjson.dumps(doc)
