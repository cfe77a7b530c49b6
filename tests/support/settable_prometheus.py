"""A stand-in for Prometheus's instant-query API answering one value the test sets (or no data),
and recording the queries it was asked: a retraining trigger's condition, raised and lowered on
cue. What is exercised is the operator's reading of the answer (the hold, the guards), not
Prometheus; the drift series the default query reads is the model server's
(tests/serving, tests/e2e/test_monitoring.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class SettablePrometheus:
    url: str = ""
    value: float | None = None
    queries: list[str] = field(default_factory=list)


@contextmanager
def settable_prometheus() -> Iterator[SettablePrometheus]:
    state = SettablePrometheus()

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query).get("query", [""])[0]
            state.queries.append(query)
            result = [] if state.value is None else [{"metric": {}, "value": [0, str(state.value)]}]
            body = json.dumps(
                {"status": "success", "data": {"resultType": "vector", "result": result}}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the operator asks every pass."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
