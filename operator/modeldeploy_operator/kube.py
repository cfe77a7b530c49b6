"""The operator's own Kubernetes API client: a thin async layer over aiohttp.

kopf watches and posts events with its own session; this client does what kopf has no helper for:
server-side apply with the operator's single field manager, status patches, deletes and a few
reads. It is deliberately small (no generated models, no cache of Secrets) so the operator's
memory stays flat at thousands of objects. Every write goes through `_write`, which counts it.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp
import kopf

from modeldeploy_operator import __version__
from modeldeploy_operator.kinds import EVENT, Kind, kind_of
from modeldeploy_operator.telemetry import API_WRITES

FIELD_MANAGER = "modeldeploy"
# Holds spec.replicas of a Deployment while its ownership passes to an autoscaler (the procedure
# Kubernetes documents for server-side apply: a second manager keeps the field alive).
HANDOVER_FIELD_MANAGER = "modeldeploy-handover"
USER_AGENT = f"modeldeploy-operator/{__version__}"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

Manifest = dict[str, Any]

# What a request raises when the apiserver does not answer at all: connection refused or reset,
# DNS, TLS, a timeout (aiohttp's ClientConnectorError is both a ClientError and an OSError).
UNREACHABLE: Final = (aiohttp.ClientError, TimeoutError, OSError)


def _parse(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:  # proxies and some apiserver errors answer in plain text
        return text


def _error(status: int, payload: Any) -> ApiError:
    message = payload.get("message", "") if isinstance(payload, dict) else str(payload)
    reason = payload.get("reason", "") if isinstance(payload, dict) else ""
    return ApiError(status, reason, message)


class ApiError(Exception):
    """A non-2xx answer from the apiserver, with its status code and message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Credentials:
    server: str
    ssl_context: ssl.SSLContext | bool
    token: str | None = None
    token_path: Path | None = None
    basic_auth: aiohttp.BasicAuth | None = None

    def bearer(self) -> str | None:
        # Projected ServiceAccount tokens rotate; re-reading the file keeps us authenticated.
        if self.token_path is not None:
            return self.token_path.read_text().strip()
        return self.token


def _materialize(data: str | bytes | None, path: Any, suffix: str) -> str | None:
    """ssl wants files; kubeconfig often carries base64 data instead."""
    if path:
        return str(path)
    if not data:
        return None
    raw = base64.b64decode(data) if isinstance(data, str) else data
    with tempfile.NamedTemporaryFile(prefix="modeldeploy-", suffix=suffix, delete=False) as handle:
        handle.write(raw)
    return handle.name


def load_credentials() -> Credentials:
    """In-cluster ServiceAccount when running in a pod, else the current kubeconfig context."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT_DIR / "token").exists():
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        in_cluster = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT_DIR / "ca.crt"))
        host = f"[{host}]" if ":" in host else host
        return Credentials(
            f"https://{host}:{port}", in_cluster, token_path=SERVICE_ACCOUNT_DIR / "token"
        )
    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    if info is None:
        raise kopf.LoginError("no kubeconfig found (set KUBECONFIG) and not running in a pod")
    context: ssl.SSLContext | bool = False
    if not info.insecure:
        verified = ssl.create_default_context(
            cafile=_materialize(info.ca_data, info.ca_path, ".crt")
        )
        cert = _materialize(info.certificate_data, info.certificate_path, ".crt")
        key = _materialize(info.private_key_data, info.private_key_path, ".key")
        if cert:
            verified.load_cert_chain(cert, key)
        context = verified
    basic = aiohttp.BasicAuth(info.username, info.password or "") if info.username else None
    return Credentials(info.server.rstrip("/"), context, token=info.token, basic_auth=basic)


class KubeClient:
    """Async REST calls to one apiserver. Create inside a running event loop; `close()` at exit."""

    def __init__(self, credentials: Credentials, timeout: float = 30.0) -> None:
        self._creds = credentials
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=credentials.ssl_context, limit=64),
            timeout=aiohttp.ClientTimeout(total=timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            auth=credentials.basic_auth,
        )
        # Watches hold their connection for minutes, one per kind and namespace: apart from the
        # requests' pool, so that many of them never queue a write behind them.
        self._watch_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=credentials.ssl_context, limit=0),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            auth=credentials.basic_auth,
        )

    async def close(self) -> None:
        await self._session.close()
        await self._watch_session.close()

    def _headers(self, content_type: str = "application/json") -> dict[str, str]:
        headers = {"Content-Type": content_type}
        token = self._creds.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        not_found_ok: bool = True,
    ) -> Manifest | None:
        """The answer's body; None for a GET or DELETE answered 404 when `not_found_ok`."""
        url = self._creds.server + path + (f"?{urlencode(params)}" if params else "")
        data = json.dumps(body) if body is not None else None
        headers = self._headers(content_type)
        async with self._session.request(method, url, data=data, headers=headers) as resp:
            if resp.status == 404 and method in ("GET", "DELETE") and not_found_ok:
                return None
            text = await resp.text()
            payload = _parse(text)
            if resp.status >= 400:
                raise _error(resp.status, payload)
            return payload if isinstance(payload, dict) else None

    async def _write(
        self, verb: str, kind: str, method: str, path: str, **kw: Any
    ) -> Manifest | None:
        API_WRITES.labels(verb=verb, kind=kind).inc()
        return await self._request(method, path, **kw)

    async def list_with_version(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        *,
        not_found_ok: bool = True,
    ) -> tuple[list[Manifest], str]:
        """The items and the list's resourceVersion (the point in history it shows). A kind
        the apiserver does not serve (404) lists as empty, or raises unless `not_found_ok`."""
        params = {"labelSelector": label_selector} if label_selector else {}
        if field_selector:
            params["fieldSelector"] = field_selector
        result = await self._request(
            "GET", kind.path(namespace), params=params, not_found_ok=not_found_ok
        )
        if not result:
            return [], ""
        # List items carry no kind; watch events do. Make both look alike.
        item_kind = str(result.get("kind", "")).removesuffix("List")
        items: list[Manifest] = result.get("items", [])
        for item in items:
            item.setdefault("kind", item_kind)
            item.setdefault("apiVersion", result.get("apiVersion"))
        return items, str(result.get("metadata", {}).get("resourceVersion", ""))

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Manifest]:
        items, _ = await self.list_with_version(kind, namespace, label_selector, field_selector)
        return items

    async def watch(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str,
        resource_version: str,
        server_timeout: int,
        timeout: aiohttp.ClientTimeout,
    ) -> AsyncIterator[Manifest]:
        """The watch events of `kind` after `resource_version`, until the apiserver ends the
        stream (after `server_timeout` seconds at most). An error answer raises ApiError (404:
        the kind is not served; 410: that version is too old), as does nothing else: errors
        during the stream come as ERROR events."""
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(server_timeout),
        }
        if label_selector:
            params["labelSelector"] = label_selector
        url = f"{self._creds.server}{kind.path(namespace)}?{urlencode(params)}"
        async with self._watch_session.get(url, headers=self._headers(), timeout=timeout) as resp:
            if resp.status >= 400:
                raise _error(resp.status, _parse(await resp.text()))
            # One JSON object per line; read in chunks, not lines (aiohttp refuses long lines,
            # and a PrometheusRule can be long).
            pending = b""
            async for chunk in resp.content.iter_any():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)

    async def get(self, kind: Kind, namespace: str, name: str) -> Manifest | None:
        """One object; None when it does not exist."""
        return await self._request("GET", kind.path(namespace, name))

    async def apply(
        self, manifest: Manifest, field_manager: str = FIELD_MANAGER
    ) -> Manifest | None:
        """Server-side apply as the operator's field manager, taking over conflicting fields:
        the operator is the declared owner of every child it builds."""
        kind = kind_of(manifest)
        meta = manifest["metadata"]
        return await self._write(
            "apply",
            manifest["kind"],
            "PATCH",
            kind.path(meta.get("namespace"), meta["name"]),
            params={"fieldManager": field_manager, "force": "true"},
            body=manifest,
            content_type="application/apply-patch+yaml",
        )

    async def patch_status(
        self, kind: Kind, namespace: str, name: str, status: Manifest
    ) -> Manifest | None:
        # A merge patch replaces lists wholesale (conditions) and leaves other writers' keys alone.
        return await self._write(
            "patch",
            "status",
            "PATCH",
            kind.path(namespace, name, "status"),
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    async def delete(self, kind: Kind, namespace: str | None, name: str) -> None:
        await self._write(
            "delete",
            kind.plural,
            "DELETE",
            kind.path(namespace, name),
            body={"propagationPolicy": "Background"},
        )

    async def exists(self, kind: Kind) -> bool:
        """Whether the apiserver serves this kind (a CRD may be absent)."""
        try:
            result = await self._request("GET", kind.base)
        except ApiError:
            return False
        if not result:
            return False
        return any(r.get("name") == kind.plural for r in result.get("resources", []))

    async def post_event(
        self, involved: Manifest, reason: str, message: str, warning: bool = False
    ) -> None:
        """A Kubernetes Event on `involved`, as `kubectl describe` and `kubectl get events` show."""
        meta = involved["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:12]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": os.environ.get("HOSTNAME", FIELD_MANAGER),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self._write("create", "Event", "POST", EVENT.path(meta["namespace"]), body=event)
