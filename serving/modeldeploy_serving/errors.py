"""The errors of the model server and the storage initializer.

A `RequestError` is the caller's fault and becomes a 4xx response whose body names what to fix;
every status the server can answer is listed in `RESPONSE_CODES`, the one home of that list (the
request counter is sized from it). The other errors stop a command: a model that cannot be loaded,
an artifact whose digest does not match, a download that failed.
"""

from __future__ import annotations

from modeldeploy_serving.redaction import redact

# Every HTTP status the server itself sends. Metrics pre-allocate one counter per code.
RESPONSE_CODES: tuple[int, ...] = (200, 400, 404, 405, 413, 500, 503)


class ServingError(Exception):
    """Base of every error this package raises on purpose."""


class RequestError(ServingError):
    """A request the server refuses; `status` is the HTTP status, the message goes to the client."""

    status = 400

    def __init__(self, message: str, *, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class BadRequest(RequestError):
    status = 400


class NotFound(RequestError):
    status = 404


class MethodNotAllowed(RequestError):
    status = 405

    def __init__(self, method: str, path: str, allowed: tuple[str, ...]) -> None:
        super().__init__(
            f"method {method} is not allowed on {path}; use {', '.join(allowed)}",
            headers=((b"allow", ", ".join(allowed).encode()),),
        )


class PayloadTooLarge(RequestError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"request body is larger than the server's limit of {limit} bytes "
            "(--max-body-bytes); send fewer rows per request"
        )


class NotReady(RequestError):
    """The model is still loading: the only 5xx a well-formed request can get."""

    status = 503


class ModelLoadError(ServingError):
    """The model directory holds no loadable model."""


class DigestMismatch(ModelLoadError):
    """The artifact's sha256 is not the one the caller pinned."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(
            f"sha256 of {path} is {actual}, expected {expected}: refusing to load it "
            "(the artifact is not the one that was pinned)"
        )
        self.expected = expected
        self.actual = actual


class FetchError(ServingError):
    """The storage initializer could not bring the artifact into the destination. The message
    names URLs without their credentials or query strings (redaction.py)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class ReferenceDataError(ServingError):
    """The drift reference file or the training data it is built from is unusable."""
