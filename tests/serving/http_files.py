"""A real HTTP file server on loopback that supports Range and can break transfers on purpose."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FileServer:
    url: str
    files: dict[str, bytes] = field(default_factory=dict)
    break_once: set[str] = field(default_factory=set)  # cut the first transfer halfway
    always_short: set[str] = field(default_factory=set)  # announce more than is sent, every time
    ignore_range: bool = False
    statuses: dict[str, int] = field(default_factory=dict)  # path → an error status to answer
    requests: list[tuple[str, str | None]] = field(default_factory=list)


@contextmanager
def serve_files() -> Iterator[FileServer]:
    state = FileServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            range_header = self.headers.get("range")
            state.requests.append((path, range_header))
            if path in state.statuses:
                self.send_error(state.statuses[path])
                return
            data = state.files.get(path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            if range_header and not state.ignore_range:
                start = int(range_header.removeprefix("bytes=").split("-", 1)[0])
                self.send_response(206)
                self.send_header("content-range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("content-length", str(len(body)))
            self.send_header("accept-ranges", "bytes")
            self.end_headers()
            if path in state.always_short or path in state.break_once:
                state.break_once.discard(path)
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
