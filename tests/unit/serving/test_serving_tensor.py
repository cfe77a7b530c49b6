"""JSON arrays → numpy: strict about what is not a number."""

from __future__ import annotations

import numpy as np
import pytest
from modeldeploy_serving.errors import BadRequest
from modeldeploy_serving.tensor import array_from_json, json_ready, rows_from_json


def test_rows_are_float64() -> None:
    rows = rows_from_json([[1, 2.5], [True, 0]], "instances")
    assert rows.dtype == np.float64
    assert rows.tolist() == [[1.0, 2.5], [1.0, 0.0]]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([[2**70, -1]], "64-bit"),
        ([[1, None]], "null"),
        ([["1.5"]], "string '1.5'"),
        ([[1, [2]]], "rectangular"),
        ("[[1]]", "must be a list"),
        ([], "empty"),
        ([[]], "empty"),
        ([1, 2], "2-D"),
    ],
)
def test_refusals(values: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message.replace("[", r"\[")):
        rows_from_json(values, "instances")


def test_any_rank_array_and_json_ready() -> None:
    assert array_from_json([[[1]]], "x").shape == (1, 1, 1)
    assert json_ready(np.array(["a", "b"])) == ["a", "b"]
    numeric = json_ready(np.arange(3)[::2])
    assert isinstance(numeric, np.ndarray) and numeric.flags.c_contiguous
