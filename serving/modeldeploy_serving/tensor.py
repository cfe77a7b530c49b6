"""JSON arrays ↔ numpy arrays, shared by both protocols.

Parsing is strict and says what is wrong: ragged rows, strings, nulls, objects and numbers
outside 64 bits are refused rather than coerced (numpy would happily turn "1.5" into 1.5).
JSON booleans are numbers 0/1 here, as they are to numpy and scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modeldeploy_serving.errors import BadRequest

NUMERIC_KINDS = "biuf"


def _first_non_number(values: Any) -> tuple[bool, Any]:
    """(True, the first item that is not a number or a list) or (False, None)."""
    stack = [values]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif not isinstance(item, int | float):
            return True, item
    return False, None


def _describe_json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, dict):
        return "an object"
    return f"{type(value).__name__} {value!r}"


def array_from_json(values: Any, where: str) -> np.ndarray:
    """A numeric ndarray (any rank) from nested JSON lists; `BadRequest` naming `where` if not."""
    if not isinstance(values, list):
        raise BadRequest(f"'{where}' must be a list, got {_describe_json(values)}")
    try:
        array = np.array(values)
    except (ValueError, TypeError, OverflowError) as e:
        raise BadRequest(
            f"'{where}' must be a rectangular array: every row the same length, "
            f"no mixed nesting ({e})"
        ) from e
    if array.dtype.kind not in NUMERIC_KINDS:
        found, bad = _first_non_number(values)
        if not found:
            # Python ints too large for 64 bits end up in an object array.
            raise BadRequest(f"'{where}' holds a number outside the 64-bit range")
        raise BadRequest(f"'{where}' must hold only numbers; found {_describe_json(bad)}")
    return array


def rows_from_json(values: Any, where: str) -> np.ndarray:
    """A 2-D float64 batch (rows x features) with at least one row and one feature."""
    array = array_from_json(values, where)
    if array.ndim != 2:
        if array.ndim == 1 and array.size == 0:
            raise BadRequest(f"'{where}' is empty: send at least one row")
        raise BadRequest(
            f"'{where}' must be a list of rows, each a list of numbers (2-D); "
            f"got a {array.ndim}-D array of shape {list(array.shape)}"
        )
    if array.shape[0] == 0:
        raise BadRequest(f"'{where}' is empty: send at least one row")
    if array.shape[1] == 0:
        raise BadRequest(f"the rows of '{where}' are empty: each row needs the model's features")
    return array.astype(np.float64, copy=False)


def json_ready(array: np.ndarray) -> Any:
    """What orjson (with OPT_SERIALIZE_NUMPY) writes fastest: the array itself when numeric."""
    if array.dtype.kind in NUMERIC_KINDS and array.dtype.isnative:
        return np.ascontiguousarray(array)
    return array.tolist()
