"""The ceiling: a bare ASGI app on our HTTP stack (uvicorn, uvloop, httptools) answering a
constant JSON body, with the same server settings as `modeldeploy serve`."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

BODY = b'{"predictions":[0]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def config(port: int, asgi_app: Any = app) -> uvicorn.Config:
    """The server around `asgi_app` (request_cost.py wraps `app` to count its requests)."""
    return uvicorn.Config(
        asgi_app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        interface="asgi3",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
    )


if __name__ == "__main__":
    uvicorn.Server(config(int(sys.argv[1]))).run()
