"""Reading a request body once, under the server's size limit (--max-body-bytes)."""

from __future__ import annotations

from modeldeploy_serving.errors import PayloadTooLarge
from modeldeploy_serving.rest.types import Receive, Scope


class ClientDisconnected(Exception):
    """The client went away before sending its whole body: nothing to answer."""


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body; `PayloadTooLarge` as soon as it is known to exceed `limit` bytes: from
    Content-Length before reading, else while a chunked body arrives."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = 0  # the HTTP layer has already refused such a request
            if declared > limit:
                raise PayloadTooLarge(limit)
            break
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise PayloadTooLarge(limit)
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
