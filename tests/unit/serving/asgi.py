"""Calling an ASGI app in-process: one request, the whole response, no sockets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from modeldeploy_serving.app import ServingApp


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


async def acall(
    app: ServingApp,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    chunks: list[bytes] | None = None,
    content_length: bool = True,
) -> Reply:
    parts = chunks if chunks is not None else [body]
    headers = [(b"host", b"test")]
    if content_length and chunks is None:
        headers.append((b"content-length", str(len(body)).encode()))
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # a real server would say http.disconnect eventually
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "query_string": b"",
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Reply(
        status=start["status"],
        headers={k.decode(): v.decode() for k, v in start["headers"]},
        body=body_out,
    )


def call(app: ServingApp, method: str, path: str, body: bytes = b"", **kwargs: Any) -> Reply:
    return asyncio.run(acall(app, method, path, body, **kwargs))
