"""`http://` and `https://`: one file, streamed, checked against Content-Length, resumed with a
Range request after a broken transfer; the `reference.json` beside it when there is one.
`download_http` and `http_client` also serve the MLflow source (its artifact proxy), and so do
MLflow's credentials: a URL on the tracking server (`$MLFLOW_TRACKING_URI`, e.g. the model file a
followed registry pinned) is fetched with them; no other host ever sees them."""

from __future__ import annotations

import base64
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from modeldeploy_serving.contract import (
    ENV_MLFLOW_TRACKING_PASSWORD,
    ENV_MLFLOW_TRACKING_TOKEN,
    ENV_MLFLOW_TRACKING_URI,
    ENV_MLFLOW_TRACKING_USERNAME,
)
from modeldeploy_serving.drift import REFERENCE_FILE
from modeldeploy_serving.errors import FetchError
from modeldeploy_serving.fetch.source import FetchOptions, artifact_name

log = logging.getLogger("modeldeploy.fetch")

HTTP_ATTEMPTS = 4
CHUNK = 1 << 20


def download_http(
    client: httpx.Client,
    url: str,
    target: Path,
    *,
    max_bytes: int | None = None,
    expected_size: int | None = None,
    missing_ok: bool = False,
) -> bool:
    """Stream `url` into `target`, resuming with Range after a broken transfer.

    False (and no file) when `missing_ok` and the server answers 404 or 403; `FetchError` on any
    other failure, including a body shorter or longer than announced.
    """
    found = _download_http(client, url, target, max_bytes, expected_size, missing_ok)
    if not found:
        target.unlink(missing_ok=True)
    return found


def _download_http(
    client: httpx.Client,
    url: str,
    target: Path,
    max_bytes: int | None,
    expected_size: int | None,
    missing_ok: bool,
) -> bool:
    received = 0
    total: int | None = expected_size
    last_error = ""
    with target.open("wb") as out:
        for attempt in range(HTTP_ATTEMPTS):
            if attempt:
                time.sleep(min(0.2 * 2**attempt, 2.0))
            headers = {"accept-encoding": "identity"}
            if received:
                headers["range"] = f"bytes={received}-"
            try:
                with client.stream("GET", url, headers=headers) as response:
                    if response.status_code in (403, 404) and missing_ok and not received:
                        return False
                    if received and response.status_code == 206:
                        start = response.headers.get("content-range", "").split(" ")[-1]
                        if not start.startswith(f"{received}-"):
                            raise FetchError(f"GET {url}: server resumed at the wrong offset")
                    elif response.status_code == 200:
                        if received:  # the server ignored Range: start over
                            out.seek(0)
                            out.truncate()
                            received = 0
                        length = response.headers.get("content-length")
                        if length is not None and length.isdigit():
                            if total is not None and int(length) != total:
                                raise FetchError(
                                    f"GET {url}: {length} bytes announced, {total} expected"
                                )
                            total = int(length)
                    else:
                        raise FetchError(f"GET {url}: HTTP {response.status_code}")
                    if max_bytes is not None and total is not None and total > max_bytes:
                        raise FetchError(f"GET {url}: {total} bytes is over --max-bytes")
                    for chunk in response.iter_raw(CHUNK):
                        out.write(chunk)
                        received += len(chunk)
                        if max_bytes is not None and received > max_bytes:
                            raise FetchError(f"GET {url}: more than --max-bytes {max_bytes}")
                        if total is not None and received > total:
                            raise FetchError(f"GET {url}: more bytes than the {total} announced")
            except httpx.HTTPError as e:
                last_error = f"{type(e).__name__}: {e}"
                log.warning("GET %s broke after %d bytes (%s); retrying", url, received, e)
                continue
            if total is None or received == total:
                return True
            last_error = f"got {received} of {total} bytes"
            log.warning("GET %s: %s; retrying", url, last_error)
    raise FetchError(f"GET {url} failed after {HTTP_ATTEMPTS} attempts: {last_error}")


def _refuse_downgrade(response: httpx.Response) -> None:
    """A redirect from https to http would send what the client trusted TLS for in the clear."""
    location = response.headers.get("location")
    if not response.has_redirect_location or location is None:
        return
    source = response.request.url
    if source.scheme == "https" and source.join(location).scheme == "http":
        raise FetchError(
            f"GET {source}: refusing to follow a redirect from https to http "
            f"({source.join(location)})"
        )


def http_client(
    timeout: float, headers: dict[str, str] | None = None, verify: bool = True
) -> httpx.Client:
    """Follows redirects, except from https to http."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=True,
        headers=headers,
        verify=verify,
        event_hooks={"response": [_refuse_downgrade]},
    )


def mlflow_credentials() -> dict[str, str]:
    """The Authorization header MLflow's clients send: `MLFLOW_TRACKING_TOKEN` as a bearer token,
    else `MLFLOW_TRACKING_USERNAME`/`PASSWORD` as basic auth; none without them."""
    token = os.environ.get(ENV_MLFLOW_TRACKING_TOKEN)
    user = os.environ.get(ENV_MLFLOW_TRACKING_USERNAME)
    if token:
        return {"authorization": f"Bearer {token}"}
    if user:
        secret = f"{user}:{os.environ.get(ENV_MLFLOW_TRACKING_PASSWORD, '')}".encode()
        return {"authorization": f"Basic {base64.b64encode(secret).decode()}"}
    return {}


def tracking_server_headers(url: str, tracking_uri: str | None = None) -> dict[str, str]:
    """MLflow's credentials for a URL under the tracking server (`tracking_uri`, default
    `$MLFLOW_TRACKING_URI`); nothing for any other."""
    tracking = (tracking_uri or os.environ.get(ENV_MLFLOW_TRACKING_URI, "")).rstrip("/")
    if not tracking.startswith(("http://", "https://")) or not url.startswith(f"{tracking}/"):
        return {}
    return mlflow_credentials()


@dataclass(frozen=True)
class HttpSource:
    url: str
    options: FetchOptions

    def download(self, staging: Path) -> None:
        name = unquote(urlsplit(self.url).path.rsplit("/", 1)[-1])
        headers = tracking_server_headers(self.url)
        with http_client(self.options.timeout, headers) as client:
            download_http(
                client, self.url, staging / artifact_name(name), max_bytes=self.options.max_bytes
            )
            # A signed URL (with a query) signs only itself: no sibling to ask for.
            if "?" not in self.url and name != REFERENCE_FILE:
                sibling = f"{self.url.rsplit('/', 1)[0]}/{REFERENCE_FILE}"
                try:
                    download_http(client, sibling, staging / REFERENCE_FILE, missing_ok=True)
                except FetchError as e:  # optional: never worth failing the model's fetch
                    (staging / REFERENCE_FILE).unlink(missing_ok=True)
                    log.warning("skipping %s: %s", REFERENCE_FILE, e)
