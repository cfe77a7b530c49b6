"""`modeldeploy serve` as a real process over real HTTP: readiness, the sha256 pin, draining on
SIGTERM, body limits and several workers sharing their metrics."""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import socket
import time
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from modeldeploy_serving.drift import build_reference
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.serving.process import ServerProcess
from tests.serving.slow_model import LOAD_SECONDS, SlowToLoad

X, Y = load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("iris")
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, Y), directory / "model.joblib")
    return directory


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_serves_both_protocols_with_the_pinned_model(iris_dir: Path) -> None:
    model = joblib.load(iris_dir / "model.joblib")
    pin = _digest(iris_dir / "model.joblib")
    with ServerProcess(iris_dir, "--sha256", pin, "--version", "4", name="iris") as server:
        server.wait_ready()
        rows = X[::10]
        v1 = server.client.post("/v1/models/iris:predict", json={"instances": rows.tolist()})
        assert v1.status_code == 200
        assert v1.json()["predictions"] == model.predict(rows).tolist()
        v2 = server.client.post(
            "/v2/models/iris/versions/4/infer",
            json={
                "inputs": [
                    {
                        "name": "x",
                        "shape": list(rows.shape),
                        "datatype": "FP64",
                        "data": rows.ravel().tolist(),
                    }
                ],
                "outputs": [{"name": "predict_proba"}],
            },
        )
        assert v2.status_code == 200
        data = np.asarray(v2.json()["outputs"][0]["data"]).reshape(len(rows), 3)
        assert np.array_equal(data, model.predict_proba(rows))
        bad = server.client.post("/v1/models/iris:predict", content=b"{nope")
        assert bad.status_code == 400 and "JSON" in bad.json()["error"]
        metrics = server.client.get("/metrics").text
        assert 'modeldeploy_model_loaded{model="iris",version="4"} 1.0' in metrics
        assert f'sha256="{pin}"' in metrics


def test_kserves_v1_liveness_check_over_real_http(iris_dir: Path) -> None:
    """What KServe's V1 `InferenceRESTClient.is_server_live` does: GET the base URL, require a
    2xx, read `status` (see test_the_root_answers_kserves_v1_liveness_check)."""
    with ServerProcess(iris_dir) as server:
        server.wait_ready()
        reply = httpx.get(server.url)
        assert reply.is_success
        assert reply.json().get("status").lower() == "alive"


def test_a_bad_reference_is_skipped_and_the_model_served(iris_dir: Path, tmp_path: Path) -> None:
    """The drift reference is optional: an HTML page saved as reference.json, or a reference
    built for another feature count, costs the drift metrics (with a warning), not the pod."""
    for case, content in {
        "html": b"<!doctype html><html>Sign in</html>",
        "features": build_reference(X[:, :2], ["a", "b"]).to_json(),
    }.items():
        directory = tmp_path / case
        directory.mkdir()
        shutil.copy(iris_dir / "model.joblib", directory / "model.joblib")
        (directory / "reference.json").write_bytes(content)
        with ServerProcess(directory) as server:
            server.wait_ready()
            reply = server.client.post("/v1/models/m:predict", json={"instances": X[:2].tolist()})
            assert reply.status_code == 200, case
            assert "modeldeploy_drift_window_rows" not in server.client.get("/metrics").text
            server.proc.send_signal(signal.SIGTERM)
            assert server.proc.wait(30) == 0, case
            output = server.output()
            assert "reference.json" in output and "without drift metrics" in output, output


def test_version_and_name_from_the_environment(iris_dir: Path) -> None:
    env = {"MODELDEPLOY_MODEL": "flowers", "MODELDEPLOY_VERSION": "9"}
    with ServerProcess(iris_dir, env=env, name="flowers") as server:
        server.wait_ready()
        assert server.client.get("/v2/models/flowers").json()["versions"] == ["9"]


def test_a_wrong_pin_refuses_to_start(iris_dir: Path) -> None:
    with ServerProcess(iris_dir, "--sha256", "ab" * 32) as server:
        assert server.proc.wait(30) == 2
        output = server.output()
        assert "refusing to load" in output and "ab" * 32 in output


def test_a_corrupt_model_stops_the_server(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"\x80\x04garbage")
    with ServerProcess(tmp_path) as server:
        assert server.proc.wait(30) == 2
        assert "cannot load" in server.output()


def test_a_multi_output_classifier_stops_the_server_saying_why(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    two_columns = np.c_[Y, (X[:, 0] > 5.8).astype(int)]
    joblib.dump(
        RandomForestClassifier(n_estimators=5).fit(X, two_columns), tmp_path / "model.joblib"
    )
    with ServerProcess(tmp_path) as server:
        assert server.proc.wait(30) == 2
        assert "multi-output classifiers are not supported" in server.output()


def test_not_ready_until_loaded(tmp_path: Path) -> None:
    joblib.dump(SlowToLoad(max_iter=1000).fit(X, Y), tmp_path / "model.joblib")
    with ServerProcess(tmp_path) as server:
        server.wait_listening()
        started = time.monotonic()
        assert server.client.get("/v2/health/live").status_code == 200
        assert server.client.get("/v2/health/ready").status_code == 503
        assert server.client.get("/v2/models/m/ready").status_code == 503
        early = server.client.post("/v1/models/m:predict", json={"instances": [X[0].tolist()]})
        assert early.status_code == 503
        server.wait_ready()
        assert time.monotonic() - started > LOAD_SECONDS / 2
        late = server.client.post("/v1/models/m:predict", json={"instances": [X[0].tolist()]})
        assert late.status_code == 200


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


def test_sigterm_drains_in_flight_requests_then_exits(iris_dir: Path) -> None:
    model = joblib.load(iris_dir / "model.joblib")
    with ServerProcess(iris_dir) as server:
        server.wait_ready()
        body = httpx.Request("POST", "http://x", json={"instances": X[:3].tolist()}).read()
        in_flight = socket.create_connection(("127.0.0.1", server.port))
        in_flight.sendall(
            b"POST /v1/models/m:predict HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        time.sleep(0.5)  # the server has the headers: the request is in flight
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2)
        assert server.proc.poll() is None  # still draining
        in_flight.sendall(body[10:])
        status, answer = _read_response(in_flight)
        in_flight.close()
        assert status == 200
        assert (
            httpx.Response(200, content=answer).json()["predictions"]
            == model.predict(X[:3]).tolist()
        )
        assert server.proc.wait(10) == 0


def test_body_limit_over_real_http(iris_dir: Path) -> None:
    with ServerProcess(iris_dir, "--max-body-bytes", "200") as server:
        server.wait_ready()
        big = server.client.post("/v1/models/m:predict", json={"instances": X[:20].tolist()})
        assert big.status_code == 413 and "200 bytes" in big.json()["error"]
        small = server.client.post("/v1/models/m:predict", json={"instances": X[:1].tolist()})
        assert small.status_code == 200


def _count(text: str, code: str) -> float:
    match = re.search(
        rf'^modeldeploy_requests_total{{code="{code}",model="m",protocol="v1",version="1"}} (\S+)$',
        text,
        re.M,
    )
    return float(match.group(1)) if match else 0.0


def test_workers_share_one_port_and_their_metrics(iris_dir: Path, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    with ServerProcess(iris_dir, "--workers", "2", "--metrics-dir", str(metrics_dir)) as server:
        server.wait_ready()
        deadline = time.monotonic() + 30
        while len(list(metrics_dir.glob("*/predictions.npy"))) < 2:  # both have loaded
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for i in range(20):
            reply = httpx.post(
                f"{server.url}/v1/models/m:predict",
                json={"instances": [X[i].tolist()]},
                headers={"connection": "close"},
            )
            assert reply.status_code == 200
        httpx.post(
            f"{server.url}/v1/models/m:predict", content=b"[", headers={"connection": "close"}
        )
        for _ in range(4):  # whichever worker answers, the counts are the sums
            text = httpx.get(f"{server.url}/metrics", headers={"connection": "close"}).text
            assert _count(text, "200") == 20
            assert _count(text, "400") == 1
            assert 'modeldeploy_model_loaded{model="m",version="1"} 1.0' in text
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
