"""The dataplane off the event loop: a large body is decoded, predicted, counted and encoded in a
thread, so the probes keep answering while a 10 MB request is worked on; a small one stays on
the fast path."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from modeldeploy_serving import protocol_v1, protocol_v2
from modeldeploy_serving.app import ServingApp

from .asgi import acall, call
from .conftest import Fitted

# How long a blocked decode waits for the probe before giving up: only a deadlock breaker (when
# the decode runs on the event loop the probe can never be answered), never a measured time.
DEADLOCK_BREAKER_SECONDS = 60


def _bodies(rows: np.ndarray) -> dict[str, tuple[str, bytes]]:
    v2 = {
        "inputs": [
            {
                "name": "x",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.ravel().tolist(),
            }
        ]
    }
    return {
        "v1": ("/v1/models/m:predict", orjson.dumps({"instances": rows.tolist()})),
        "v2": ("/v2/models/m/infer", orjson.dumps(v2)),
    }


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_a_large_body_leaves_the_event_loop_free_for_probes(
    models: dict[str, Fitted],
    app_for: Callable[..., ServingApp],
    monkeypatch: pytest.MonkeyPatch,
    protocol: str,
) -> None:
    fitted = models["logistic"]
    app = app_for(fitted.estimator, offload_bytes=4096)
    rows = np.tile(fitted.X, (4, 1))  # 600 rows: a body well over 4096 bytes
    path, body = _bodies(rows)[protocol]
    decoding, probed = threading.Event(), threading.Event()
    module = protocol_v1 if protocol == "v1" else protocol_v2
    name = "parse_predict" if protocol == "v1" else "parse_infer"
    parse = getattr(module, name)

    def parse_after_the_probe(*args: Any) -> Any:
        decoding.set()
        if not probed.wait(DEADLOCK_BREAKER_SECONDS):
            raise AssertionError("the probe was not answered while the body was decoded")
        return parse(*args)

    monkeypatch.setattr(module, name, parse_after_the_probe)

    async def scenario() -> tuple[int, int, Any]:
        inference = asyncio.ensure_future(acall(app, "POST", path, body))
        await asyncio.to_thread(decoding.wait, DEADLOCK_BREAKER_SECONDS)
        probe = await acall(app, "GET", "/v2/health/live")
        probed.set()
        reply = await inference
        return probe.status, reply.status, reply.json()

    probe_status, status, answer = asyncio.run(scenario())
    assert probe_status == 200
    assert status == 200, answer
    expected = fitted.estimator.predict(rows).tolist()
    got = answer["predictions"] if protocol == "v1" else answer["outputs"][0]["data"]
    assert got == expected
    # counted like any request: the predictions per class of all 600 rows
    text = call(app, "GET", "/metrics").body.decode()
    for label in (0, 1, 2):
        line = f'modeldeploy_predictions_total{{class="{label}",model="m",version="1"}}'
        assert f"{line} {float(expected.count(label))}" in text


def test_a_small_body_is_decoded_on_the_event_loop(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path: no thread hop for the requests that make up nearly all traffic."""
    app = app_for(models["logistic"].estimator)
    threads: list[threading.Thread] = []
    parse = protocol_v1.parse_predict

    def recording(body: bytes) -> Any:
        threads.append(threading.current_thread())
        return parse(body)

    monkeypatch.setattr(protocol_v1, "parse_predict", recording)
    path, body = _bodies(models["logistic"].X[:2])["v1"]
    assert call(app, "POST", path, body).status == 200
    assert threads == [threading.main_thread()]


def test_refusals_of_a_large_body_are_the_same_4xx(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(models["logistic"].estimator, offload_bytes=64)
    too_few = np.zeros((40, 3))
    for path, body, message in [
        ("/v1/models/m:predict", b"{" + b" " * 100, "not valid JSON"),
        *((path, body, "4 features") for path, body in _bodies(too_few).values()),
    ]:
        assert len(body) >= 64
        reply = call(app, "POST", path, body)
        assert reply.status == 400, reply.body
        assert message in reply.json()["error"]
