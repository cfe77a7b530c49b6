"""Connections from slow clients: deadlines for a request's head and body.

uvicorn times out idle keep-alive connections, but never a client that opens a connection and
sends nothing, half a request line, headers one byte at a time, or less body than it announced:
each such connection stays open, with its memory and file descriptor, for as long as the client
likes (1,100 of them stayed 40 s with no answer). This protocol is uvicorn's httptools protocol
with two deadlines: a request's head (request line and headers) must be complete within
`header_timeout` seconds of the connection or of the request's first byte, and its body within
`body_timeout` seconds of its head. A client that misses one gets `408 Request Timeout` (unless
a response has already started) and the connection is closed; the application sees the request
as disconnected.

A request that arrives whole in one read — nearly every request — arms no timer and costs a few
attribute checks; only a request spread over several reads is given a deadline.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

Stage = Literal["idle", "head", "body"]


class SlowClientGuard(HttpToolsProtocol):
    # Set per server by `guarded_protocol` (settings.py holds the defaults).
    header_timeout: float
    body_timeout: float

    _stage: Stage = "idle"
    _deadline: asyncio.TimerHandle | None = None
    _deadline_for: Stage = "idle"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._stage = "head"  # a connection that sends nothing owes a request head
        self._arm("head")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._stage == "idle":
            self._disarm()
        elif self._deadline_for != self._stage:
            self._arm(self._stage)

    # httptools' callbacks, followed to know what the client still owes

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._stage = "head"

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._stage = "body"

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._stage = "idle"

    # the deadlines

    def _arm(self, stage: Stage) -> None:
        self._disarm()
        seconds = self.header_timeout if stage == "head" else self.body_timeout
        self._deadline = self.loop.call_later(seconds, self._timed_out)
        self._deadline_for = stage

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
            self._deadline_for = "idle"

    def _timed_out(self) -> None:
        stage, self._deadline, self._deadline_for = self._deadline_for, None, "idle"
        if self.transport.is_closing():
            return
        cycle = self.cycle if stage == "body" else None
        if cycle is not None:
            # The application is waiting for the rest of the body: it will see a disconnect.
            cycle.disconnected = True
            cycle.message_event.set()
        if cycle is None or not cycle.response_started:
            seconds = self.header_timeout if stage == "head" else self.body_timeout
            what = "request line and headers" if stage == "head" else "request body"
            self.transport.write(
                _request_timeout(f"the {what} did not arrive within {seconds:g} s")
            )
        self.transport.close()


def _request_timeout(message: str) -> bytes:
    body = orjson.dumps({"error": message})
    return (
        b"HTTP/1.1 408 Request Timeout\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


def guarded_protocol(header_timeout: float, body_timeout: float) -> type[SlowClientGuard]:
    """The protocol class for uvicorn's `http` setting, with these deadlines."""
    return type(
        "SlowClientGuard",
        (SlowClientGuard,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )
