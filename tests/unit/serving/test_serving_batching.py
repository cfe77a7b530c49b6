"""Micro-batching: concurrent requests share estimator calls, each still gets its own rows'
answer, and a request the estimator rejects fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from modeldeploy_serving.app import ServingApp
from modeldeploy_serving.errors import BadRequest

from .asgi import Reply, acall
from .conftest import Fitted


async def _concurrently(app: ServingApp, bodies: list[bytes]) -> list[Reply]:
    return list(
        await asyncio.gather(*(acall(app, "POST", "/v1/models/m:predict", b) for b in bodies))
    )


def test_concurrent_requests_share_calls_and_get_their_own_rows(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    fitted = models["forest"]  # trees: a row's answer does not depend on its batch
    app = app_for(fitted.estimator, micro_batch_rows=64)
    assert app.batcher is not None
    requests = [fitted.X[i : i + 1 + i % 3] for i in range(0, 60, 3)]
    bodies = [orjson.dumps({"instances": r.tolist()}) for r in requests]
    replies = asyncio.run(_concurrently(app, bodies))
    for rows, reply in zip(requests, replies, strict=True):
        assert reply.status == 200
        assert reply.json()["predictions"] == fitted.estimator.predict(rows).tolist()
    assert app.batcher.calls < len(requests) / 4
    proba = asyncio.run(
        acall(
            app,
            "POST",
            "/v1/models/m:predict",
            orjson.dumps(
                {"instances": fitted.X[:5].tolist(), "parameters": {"method": "predict_proba"}}
            ),
        )
    )
    assert np.array_equal(proba.json()["predictions"], fitted.estimator.predict_proba(fitted.X[:5]))


def test_batches_respect_the_row_limit(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    fitted = models["forest"]
    app = app_for(fitted.estimator, micro_batch_rows=8)
    assert app.batcher is not None
    seen: list[int] = []
    run = app.batcher.model.run

    def counting(method: Any, rows: np.ndarray) -> np.ndarray:
        seen.append(rows.shape[0])
        return np.asarray(run(method, rows))

    monkeypatch.setattr(app.batcher.model, "run", counting)
    bodies = [orjson.dumps({"instances": fitted.X[i : i + 3].tolist()}) for i in range(10)]
    replies = asyncio.run(_concurrently(app, bodies))
    assert all(r.status == 200 for r in replies)
    assert max(seen) <= 8 and sum(seen) == 30


def test_a_rejected_request_fails_alone(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    fitted = models["forest"]
    app = app_for(fitted.estimator, micro_batch_rows=64)
    assert app.batcher is not None
    run = app.batcher.model.run

    def picky(method: Any, rows: np.ndarray) -> np.ndarray:
        if (rows == 999).any():
            raise BadRequest("the model rejected the input: 999")
        return np.asarray(run(method, rows))

    monkeypatch.setattr(app.batcher.model, "run", picky)
    rows = [fitted.X[i : i + 1].tolist() for i in range(6)]
    rows[2] = [[999.0, 1.0, 1.0, 1.0]]
    replies = asyncio.run(_concurrently(app, [orjson.dumps({"instances": r}) for r in rows]))
    assert [r.status for r in replies] == [200, 200, 400, 200, 200, 200]
    assert "999" in replies[2].json()["error"]
    assert replies[3].json()["predictions"] == fitted.estimator.predict(fitted.X[3:4]).tolist()


@pytest.mark.parametrize("rows", [0, 1])
def test_off_by_default_and_for_one_row(
    rows: int, models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(models["logistic"].estimator, micro_batch_rows=rows)
    assert app.batcher is None
