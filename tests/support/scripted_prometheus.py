"""A stand-in for Prometheus's query API with a scripted verdict per model, which can be stopped
and started again on the same port (an outage: connections refused, as from a stopped pod).

Every instant query answers one sample: 0 when the query names one of the `failing` models (a
success rate of 0%: the check fails), else 100 (it passes). Like a real Prometheus, one started
again has no samples for the time it was down: for `gap_after_restart` seconds every query
answers an empty result (no data). What is exercised is the operator's reaction to verdicts and
to an unreachable Prometheus, not Prometheus (the real one is in tests/prometheus and
tests/e2e/test_rollout_analysis.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PASSING_VALUE = "100"
FAILING_VALUE = "0"


class ScriptedPrometheus:
    def __init__(self, failing: Iterable[str] = (), gap_after_restart: float = 0) -> None:
        self.failing = frozenset(failing)
        self.gap_after_restart = gap_after_restart
        self._restarted_at: float | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, query: str) -> list[dict[str, Any]]:
        """The result vector for `query`."""
        if (
            self._restarted_at is not None
            and time.monotonic() - self._restarted_at < self.gap_after_restart
        ):
            return []
        # Label values are quoted in PromQL: `"m1"` never matches inside `"m10"`.
        failing = any(f'"{name}"' in query for name in self.failing)
        return [{"metric": {}, "value": [0, FAILING_VALUE if failing else PASSING_VALUE]}]

    def start(self) -> None:
        """Serve (again, on the same port after `stop`)."""
        prometheus = self
        if self.port:
            self._restarted_at = time.monotonic()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query).get("query", [""])[0]
                body = json.dumps(
                    {
                        "status": "success",
                        "data": {
                            "resultType": "vector",
                            "result": prometheus.answer(query),
                        },
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: canaries ask every step interval."""

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Refuse connections until `start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ScriptedPrometheus:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
