"""A stand-in for Prometheus's query API whose every answer is 0: a canary judged against it fails
its success-rate check (0%). What is exercised is the operator's reaction to a failed check, not
Prometheus (the real one is in tests/prometheus and tests/e2e/test_rollout_analysis.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _ZeroAnswers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "0"]}]},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: canaries ask every step interval."""


@contextmanager
def failing_prometheus() -> Iterator[str]:
    """The base URL of a Prometheus query API whose every answer is 0."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ZeroAnswers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
