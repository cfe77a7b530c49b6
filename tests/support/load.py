"""Constant client load: V2 inference requests at a fixed rate, each answer recorded with the
version that served it, or the error the client saw.

The load runs in threads, one keep-alive connection each (a client library's pool), reconnecting
after an error as a client would. Every answer is kept, so a test can count errors over the whole
run and split the answers into windows.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

# One iris row: every version the tests serve answers it (or refuses it, on purpose).
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


@dataclass(frozen=True)
class Answer:
    at: float  # time.monotonic() when the answer (or the error) arrived
    status: int  # 0: no HTTP answer (connection refused, reset, timed out)
    version: str  # the model_version of a 200, else the error's text

    @property
    def ok(self) -> bool:
        return self.status == 200


def v2_request(model: str) -> tuple[str, bytes]:
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}]}
    return f"/v2/models/{model}/infer", json.dumps(body).encode()


@dataclass
class Load:
    """`connections` clients, each sending `rate` requests per second to `url` (Host header
    `host`) for `model`, until the block ends."""

    url: str
    model: str
    host: str | None = None
    connections: int = 4
    rate: float = 40.0
    new_connection_per_request: bool = False
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.connections):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _connect(self) -> http.client.HTTPConnection:
        target = urlsplit(self.url)
        return http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)

    def _client(self) -> None:
        path, body = v2_request(self.model)
        headers = {"Content-Type": "application/json"}
        if self.host:
            headers["Host"] = self.host
        connection = self._connect()
        started, sent = time.monotonic(), 0
        while not self._stop.is_set():
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                text = response.read().decode()
                version = json.loads(text)["model_version"] if response.status == 200 else text
                self.answers.append(Answer(time.monotonic(), response.status, version))
            except (OSError, http.client.HTTPException) as error:
                self.answers.append(Answer(time.monotonic(), 0, f"{type(error).__name__}: {error}"))
                connection.close()
                connection = self._connect()
            if self.new_connection_per_request:
                connection.close()
                connection = self._connect()
            sent += 1
            delay = started + sent / self.rate - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
        connection.close()

    def errors(self) -> Counter[str]:
        """Every answer but a 200, by status and text."""
        return Counter(f"{a.status} {a.version}"[:200] for a in self.answers if not a.ok)


@dataclass
class Sampler:
    """Calls `probe` every `interval` seconds in a thread, keeping (time, value) while it
    changes: a timeline of what the probe saw."""

    probe: Callable[[], object]
    interval: float = 0.25
    timeline: list[tuple[float, object]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self.probe()
            except OSError:
                value = None
            if not self.timeline or self.timeline[-1][1] != value:
                self.timeline.append((time.monotonic(), value))
            self._stop.wait(self.interval)

    def windows(self) -> Iterable[tuple[float, float, object]]:
        """(start, end, value) of each period the value held; the last one ends now."""
        ends = [t for t, _ in self.timeline[1:]] + [time.monotonic()]
        for (start, value), end in zip(self.timeline, ends, strict=True):
            yield start, end, value
