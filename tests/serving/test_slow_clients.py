"""Slow clients against a real `serve` process over real sockets: a request head or body that
does not arrive in time gets 408 and the connection is closed; beyond the concurrency limit
new requests get 503; requests that arrive whole are not affected."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.serving.process import ServerProcess

X, Y = load_iris(return_X_y=True)
# A deadlock breaker for reads that, without the fix, would never be answered: not a measured
# time (the server's own deadlines below are 1 s).
BREAKER_SECONDS = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("iris")
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, Y), directory / "model.joblib")
    with ServerProcess(directory, "--header-timeout", "1", "--body-timeout", "1") as process:
        process.wait_ready()
        yield process


def _connect(server: ServerProcess) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", server.port))
    connection.settimeout(BREAKER_SECONDS)
    return connection


def _answer_then_close(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"POST /v1/models/m:pre",
        b"POST /v1/models/m:predict HTTP/1.1\r\nhost: x\r\ncontent-le",
    ],
    ids=["nothing", "half a request line", "half the headers"],
)
def test_a_request_head_that_does_not_arrive_gets_408_and_a_close(
    server: ServerProcess, sent: bytes
) -> None:
    with _connect(server) as connection:
        connection.sendall(sent)
        answer = _answer_then_close(connection)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"request line and headers did not arrive within 1 s" in answer


def test_a_request_body_that_does_not_arrive_gets_408_and_a_close(server: ServerProcess) -> None:
    with _connect(server) as connection:
        connection.sendall(
            b"POST /v1/models/m:predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 100\r\n\r\n" + b'{"instances": [[5.1, 3.5,'
        )
        answer = _answer_then_close(connection)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"request body did not arrive within 1 s" in answer


def _one_response(connection: socket.socket) -> bytes:
    """One response with a content-length, read whole."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def test_whole_requests_on_a_kept_alive_connection_are_answered(server: ServerProcess) -> None:
    body = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    request = (
        b"POST /v1/models/m:predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with _connect(server) as connection:
        for pieces in ([request], [request[:7], request[7:60], request[60:-5], request[-5:]]) * 2:
            for piece in pieces:  # in time, in one read or several
                connection.sendall(piece)
            answer = _one_response(connection)
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            assert answer.endswith(b'{"predictions":[0]}')


def test_beyond_the_concurrency_limit_new_requests_get_503(tmp_path: Path) -> None:
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, Y), tmp_path / "model.joblib")
    with ServerProcess(tmp_path, "--limit-concurrency", "3") as limited:
        limited.wait_ready()
        idle = [_connect(limited) for _ in range(3)]  # held open: the limit is reached
        try:
            deadline = time.monotonic() + BREAKER_SECONDS
            status = 0
            while status != 503:
                assert time.monotonic() < deadline, f"still {status} with 3 connections open"
                status = limited.client.get("/v1/models/m").status_code
        finally:
            for connection in idle:
                connection.close()
