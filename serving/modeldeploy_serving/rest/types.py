"""The ASGI shapes the HTTP surface passes around, and what an endpoint returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# What every endpoint answers: status, body, content type.
Response = tuple[int, bytes, bytes]
Endpoint = Callable[[Scope, Receive], Awaitable[Response]]

JSON = b"application/json"
