"""An in-process Kubernetes apiserver for the operator's unit tests: enough of the REST API for
kopf and the operator's own client to run unchanged against it.

It serves discovery (`/api`, `/apis`, each group version), list and watch (label and field
selectors, `resourceVersion` to resume from, `timeoutSeconds`), server-side apply (as a plain
create-or-replace of the applied fields, status kept), merge patches of status, deletes and
Event posts. What a test needs from a real apiserver beyond that is behaviour over time, which
the fake lets it script: `remove_kind` does what deleting a CRD does (the instances' DELETED
events, the CRD's own DELETED event, its list and watch answering 404, open watches ended, and
discovery following a moment later, as the apiserver's discovery controller does), `serve_kind`
what creating it again does.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from modeldeploy_operator import kinds
from modeldeploy_operator.kinds import Kind

Body = dict[str, Any]
ObjectKey = tuple[Kind, str | None, str]  # kind, namespace (None: cluster-scoped), name

NAMESPACE = Kind("", "v1", "namespaces", "Namespace", namespaced=False)


def _matches_labels(body: Body, selector: str) -> bool:
    """Equality (`k=v`, `k==v`), inequality (`k!=v`), existence (`k`) and absence (`!k`)."""
    labels = body.get("metadata", {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        if "!=" in term:
            name, value = term.split("!=", 1)
            if labels.get(name) == value:
                return False
        elif "=" in term:
            name, value = term.replace("==", "=").split("=", 1)
            if labels.get(name) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _matches_fields(body: Body, selector: str) -> bool:
    meta = body.get("metadata", {})
    for term in filter(None, selector.split(",")):
        name, value = term.split("=", 1)
        if name not in ("metadata.name", "metadata.namespace"):
            raise ValueError(f"the fake apiserver does not select by {name}")
        if meta.get(name.removeprefix("metadata.")) != value:
            return False
    return True


@dataclass
class _Watch:
    """One open watch request: what it selects and the queue its events go to."""

    kind: Kind
    namespace: str | None
    labels: str
    fields: str
    events: asyncio.Queue[Body | None] = field(default_factory=asyncio.Queue)
    # A stream that stopped delivering while its connection stays open (kopf#1276).
    silent: bool = False

    def selects(self, kind: Kind, body: Body) -> bool:
        meta = body["metadata"]
        return (
            kind == self.kind
            and (self.namespace is None or meta.get("namespace") == self.namespace)
            and _matches_labels(body, self.labels)
            and _matches_fields(body, self.fields)
        )


@dataclass
class Request:
    """A request as the fake received it, for tests that assert what was asked."""

    method: str
    kind: Kind | None
    namespace: str | None
    query: dict[str, str]
    status: int


class FakeApiserver:
    """See the module docstring. `kinds` are served from the start; CRD objects are kept for
    every custom kind (what kopf and the operator watch to learn of CRDs coming and going)."""

    # How long discovery still lists a removed kind (the real one's discovery controller lags
    # the CRD's removal: it is when an operator's watch of it meets 404 first).
    DISCOVERY_LAG = 1.0

    def __init__(self, served: Iterable[Kind], namespaces: Iterable[str] = ("ns",)) -> None:
        self._served: set[Kind] = {NAMESPACE, kinds.CRD, *served}
        self._discovered: set[Kind] = set(self._served)
        self._objects: dict[ObjectKey, Body] = {}
        # Every change as (resourceVersion, kind, event): a watch resumes from any version.
        self._history: list[tuple[int, Kind, Body]] = []
        self._watches: list[_Watch] = []
        self._version = 100
        # Watches from a version before this one are answered 410 Gone (history compacted).
        self._compacted = 0
        self.requests: list[Request] = []
        for namespace in namespaces:
            self.put(NAMESPACE, {"metadata": {"name": namespace}})
        for kind in self._served:
            if self._is_custom(kind):
                self.put(kinds.CRD, self._crd(kind))

    # -- what a test does to the cluster ---------------------------------------------------

    def put(self, kind: Kind, body: Body) -> Body:
        """Create or replace an object (as a user's `kubectl apply` would), with its events."""
        body = copy.deepcopy(body)
        body.setdefault("apiVersion", kind.api_version)
        body.setdefault("kind", kind.kind)
        meta = body["metadata"]
        key = (kind, meta.get("namespace") if kind.namespaced else None, meta["name"])
        held = self._objects.get(key)
        meta.setdefault("uid", held["metadata"]["uid"] if held else str(uuid.uuid4()))
        if held is not None and "status" not in body and "status" in held:
            body["status"] = held["status"]
        if held is not None and body.get("spec") != held.get("spec"):
            meta["generation"] = held["metadata"].get("generation", 1) + 1
        else:
            meta.setdefault("generation", held["metadata"].get("generation", 1) if held else 1)
        self._store(kind, key, body, "MODIFIED" if held else "ADDED")
        return copy.deepcopy(body)

    def get(self, kind: Kind, namespace: str | None, name: str) -> Body | None:
        held = self._objects.get((kind, namespace if kind.namespaced else None, name))
        return copy.deepcopy(held) if held is not None else None

    def delete(self, kind: Kind, namespace: str | None, name: str) -> None:
        key = (kind, namespace if kind.namespaced else None, name)
        body = self._objects.pop(key, None)
        if body is not None:
            self._version += 1
            body = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self._version)}}
            self._publish(kind, {"type": "DELETED", "object": body})

    async def remove_kind(self, kind: Kind) -> None:
        """What deleting a CRD does, in the apiserver's order: the instances are deleted, then
        the CRD; its storage goes with it (404 to list and watch, open watches end), and
        discovery stops listing the kind a moment later."""
        for obj_kind, namespace, name in list(self._objects):
            if obj_kind == kind:
                self.delete(kind, namespace, name)
        self.delete(kinds.CRD, None, kind.crd_name)
        self._served.discard(kind)
        for watch in self._watches:
            if watch.kind == kind:
                watch.events.put_nowait(None)
        await asyncio.sleep(self.DISCOVERY_LAG)
        self._discovered.discard(kind)

    def serve_kind(self, kind: Kind) -> None:
        """What creating a CRD does: the kind is served and discovered, the CRD object added."""
        self._served.add(kind)
        self._discovered.add(kind)
        self.put(kinds.CRD, self._crd(kind))

    def end_watches(self, kind: Kind) -> None:
        """End the open watches of `kind`, as their server-side timeout does."""
        for watch in self._watches:
            if watch.kind == kind:
                watch.events.put_nowait(None)

    def silence_watches(self, kind: Kind) -> None:
        """The open watches of `kind` stop delivering; their connections stay open."""
        for watch in self._watches:
            if watch.kind == kind:
                watch.silent = True

    def compact(self) -> None:
        """Forget the history so far: a watch resuming from an older version gets 410 Gone."""
        self._compacted = self._version

    def objects(self, kind: Kind) -> list[Body]:
        return [copy.deepcopy(b) for (k, _, _), b in self._objects.items() if k == kind]

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _is_custom(kind: Kind) -> bool:
        return kind != kinds.CRD and kind.group not in ("", "apps", "autoscaling", "batch")

    @staticmethod
    def _crd(kind: Kind) -> Body:
        return {
            "metadata": {"name": kind.crd_name},
            "spec": {
                "group": kind.group,
                "names": {"kind": kind.kind, "plural": kind.plural},
                "scope": "Namespaced" if kind.namespaced else "Cluster",
                "versions": [{"name": kind.version, "served": True, "storage": True}],
            },
        }

    def _store(self, kind: Kind, key: ObjectKey, body: Body, event: str) -> None:
        self._version += 1
        body["metadata"]["resourceVersion"] = str(self._version)
        self._objects[key] = body
        self._publish(kind, {"type": event, "object": copy.deepcopy(body)})

    def _publish(self, kind: Kind, event: Body) -> None:
        self._history.append((self._version, kind, event))
        for watch in self._watches:
            if not watch.silent and watch.selects(kind, event["object"]):
                watch.events.put_nowait(event)

    def _resolve(self, path: str) -> tuple[Kind, str | None, str | None, str] | None:
        """(kind, namespace, name, subresource) of a resource path, or None if not served."""
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            group, version, rest = parts[1], parts[2], parts[3:]
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        plural, name, sub = rest[0], (rest[1:2] or [None])[0], "/".join(rest[2:])
        for kind in self._served:
            if (kind.group, kind.version, kind.plural) == (group, version, plural):
                return kind, namespace, name, sub
        return None

    def _selected(self, kind: Kind, namespace: str | None, labels: str, fields: str) -> list[Body]:
        return [
            copy.deepcopy(body)
            for (k, ns, _), body in sorted(
                self._objects.items(), key=lambda kv: (kv[0][1] or "", kv[0][2])
            )
            if k == kind
            and (namespace is None or ns == namespace)
            and _matches_labels(body, labels)
            and _matches_fields(body, fields)
        ]

    # -- HTTP --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/version", self._version_info)
        app.router.add_get("/api", self._core_versions)
        app.router.add_get("/apis", self._groups)
        app.router.add_route("*", "/{path:api/.*|apis/.*}", self._resource)
        return app

    async def _version_info(self, _: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake"})

    async def _core_versions(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    async def _groups(self, _: web.Request) -> web.Response:
        versions: dict[str, set[str]] = {}
        for kind in self._discovered:
            if kind.group:
                versions.setdefault(kind.group, set()).add(kind.version)
        groups = [
            {
                "name": group,
                "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in sorted(found)],
                "preferredVersion": {
                    "groupVersion": f"{group}/{max(found)}",
                    "version": max(found),
                },
            }
            for group, found in sorted(versions.items())
        ]
        return web.json_response({"kind": "APIGroupList", "groups": groups})

    def _discovery(self, path: str) -> Body | None:
        parts = path.strip("/").split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        listed = [k for k in self._discovered if (k.group, k.version) == (group, version)]
        if not listed:
            return None
        resources = []
        for kind in sorted(listed, key=lambda k: k.plural):
            resources.append(
                {
                    "name": kind.plural,
                    "singularName": kind.kind.lower(),
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                }
            )
            if kind == kinds.MODEL_DEPLOYMENT:
                resources.append(
                    {
                        "name": f"{kind.plural}/status",
                        "singularName": "",
                        "namespaced": True,
                        "kind": kind.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        parts = path.strip("/").split("/")
        if request.method == "GET" and len(parts) == (2 if parts[0] == "api" else 3):
            found = self._discovery(path)
            if found is None:
                return _status(404, "NotFound", f"the server could not find {path}")
            return web.json_response(found)
        resolved = self._resolve(path)
        query = dict(request.query)
        record = Request(request.method, None, None, query, 200)
        self.requests.append(record)
        if resolved is None:
            record.status = 404
            return _status(404, "NotFound", "the server could not find the requested resource")
        kind, namespace, name, sub = resolved
        record.kind, record.namespace = kind, namespace
        if request.method == "GET" and name is None:
            if query.get("watch") in ("true", "1"):
                return await self._watch(request, kind, namespace, query)
            items = self._selected(
                kind, namespace, query.get("labelSelector", ""), query.get("fieldSelector", "")
            )
            for item in items:  # list items carry no kind, as from a real apiserver
                item.pop("kind", None)
                item.pop("apiVersion", None)
            return web.json_response(
                {
                    "apiVersion": kind.api_version,
                    "kind": f"{kind.kind}List",
                    "metadata": {"resourceVersion": str(self._version)},
                    "items": items,
                }
            )
        if name is None and request.method == "POST":
            body = await request.json()
            body.setdefault("metadata", {})["namespace"] = namespace
            return web.json_response(self.put(kind, body), status=201)
        assert name is not None, (request.method, path)
        if request.method == "GET":
            held = self.get(kind, namespace, name)
            return web.json_response(held) if held else _status(404, "NotFound", name)
        if request.method == "DELETE":
            self.delete(kind, namespace, name)
            return web.json_response({"kind": "Status", "status": "Success"})
        if request.method == "PATCH":
            patch = json.loads(await request.text())
            held = self.get(kind, namespace, name)
            if sub == "status":
                if held is None:
                    return _status(404, "NotFound", name)
                held["status"] = _merge(held.get("status") or {}, patch.get("status") or {})
                key = (kind, namespace if kind.namespaced else None, name)
                self._store(kind, key, held, "MODIFIED")
                return web.json_response(copy.deepcopy(held))
            # Server-side apply, simplified: the applied manifest replaces the object's fields
            # (no other manager shares them in these tests); metadata and status are kept.
            merged = dict(patch)
            if held is not None:
                merged["metadata"] = {**held["metadata"], **patch["metadata"]}
            merged["metadata"]["namespace"] = namespace
            return web.json_response(self.put(kind, merged))
        return _status(405, "MethodNotAllowed", request.method)

    async def _watch(
        self, request: web.Request, kind: Kind, namespace: str | None, query: dict[str, str]
    ) -> web.StreamResponse:
        watch = _Watch(
            kind, namespace, query.get("labelSelector", ""), query.get("fieldSelector", "")
        )
        since = query.get("resourceVersion")
        if since and int(since) < self._compacted:
            # As the apiserver does: 200, then an ERROR event, then the end of the stream.
            expired = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
            watch.events.put_nowait({"type": "ERROR", "object": expired})
            watch.events.put_nowait(None)
        elif since:
            for version, k, event in self._history:
                if version > int(since) and watch.selects(k, event["object"]):
                    watch.events.put_nowait(copy.deepcopy(event))
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        self._watches.append(watch)
        try:
            async with contextlib.aclosing(self._events(watch, query)) as events:
                async for event in events:
                    await response.write(json.dumps(event).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._watches.remove(watch)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def _events(self, watch: _Watch, query: dict[str, str]) -> AsyncIterator[Body]:
        timeout = float(query.get("timeoutSeconds", "3600"))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (event := await watch.events.get()) is not None:
                    yield event


def _merge(held: Body, patch: Body) -> Body:
    """A JSON merge patch (RFC 7386)."""
    merged = dict(held)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(
        {"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message},
        status=code,
    )


@contextlib.asynccontextmanager
async def running(api: FakeApiserver) -> AsyncIterator[str]:
    """The fake served on a free loopback port, for as long as the block runs: its URL."""
    runner = web.AppRunner(api.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        # Open watches end first: a handler waiting for events would hold the shutdown.
        for watch in api._watches:
            watch.events.put_nowait(None)
        await runner.cleanup()
