"""A fake MLflow tracking server over real HTTP: the registry and artifact-proxy endpoints the
operator calls, answering as MLflow 3 does (error bodies with `error_code`), with a switch that
makes it answer 503 like a registry behind a proxy whose backend is down, and one that makes it
ask for credentials as `mlflow server --app-name basic-auth` does (401 without them)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

MLMODEL = b"""flavors:
  python_function:
    loader_module: mlflow.sklearn
  sklearn:
    pickled_model: model.pkl
    serialization_format: cloudpickle
"""


@dataclass
class FakeVersion:
    run_id: str
    files: dict[str, bytes]
    artifact_uri: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeMlflow:
    """One registered model, its versions (as MLflow logs an sklearn model) and its aliases."""

    name: str = "iris"
    versions: dict[str, FakeVersion] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    down: bool = False
    requests: list[str] = field(default_factory=list)
    # The Authorization header every request must carry; None: no authentication.
    authorization: str | None = None

    def register(self, version: str, model_bytes: bytes | None = None) -> str:
        """Register a version logged as an MLflow sklearn model; the sha256 of its model file."""
        data = model_bytes if model_bytes is not None else f"model {version}".encode()
        self.versions[version] = FakeVersion(
            run_id=f"run{version}",
            files={"MLmodel": MLMODEL, "model.pkl": data, "requirements.txt": b"scikit-learn\n"},
            artifact_uri=f"mlflow-artifacts:/1/models/m-{version}/artifacts",
        )
        return hashlib.sha256(data).hexdigest()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._availability])
        app.router.add_get("/api/2.0/mlflow/registered-models/alias", self._alias)
        app.router.add_post("/api/2.0/mlflow/registered-models/alias", self._set_alias)
        app.router.add_get("/api/2.0/mlflow/model-versions/search", self._search)
        app.router.add_get("/api/2.0/mlflow/model-versions/get", self._version)
        app.router.add_get("/api/2.0/mlflow/model-versions/get-download-uri", self._download_uri)
        app.router.add_get("/api/2.0/mlflow-artifacts/artifacts", self._list)
        app.router.add_get("/api/2.0/mlflow-artifacts/artifacts/{path:.*}", self._file)
        return app

    @web.middleware
    async def _availability(
        self, request: web.Request, handler: web.RequestHandler
    ) -> web.StreamResponse:
        self.requests.append(request.path)
        if self.down:
            return web.Response(status=503, text="upstream connect error")
        wanted = self.authorization
        if wanted is not None and request.headers.get("Authorization") != wanted:
            return web.Response(
                status=401,
                text="You are not authenticated. Please see the documentation on how to "
                "authenticate.",
                headers={"WWW-Authenticate": 'Basic realm="mlflow"'},
            )
        return await handler(request)

    @staticmethod
    def _missing(message: str) -> web.Response:
        return web.json_response(
            {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": message}, status=404
        )

    def _described(self, version: str) -> web.Response:
        found = self.versions[version]
        return web.json_response(
            {
                "model_version": {
                    "name": self.name,
                    "version": version,
                    "run_id": found.run_id,
                    "source": f"models:/m-{version}",
                    "aliases": [a for a, v in self.aliases.items() if v == version],
                }
            }
        )

    async def _alias(self, request: web.Request) -> web.Response:
        alias = request.query["alias"]
        if request.query["name"] != self.name or alias not in self.aliases:
            return self._missing(f"Registered model alias {alias} not found.")
        return self._described(self.aliases[alias])

    async def _set_alias(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["name"] != self.name or body["version"] not in self.versions:
            return self._missing(f"Model Version {body['version']} not found")
        self.aliases[body["alias"]] = body["version"]
        return web.json_response({})

    async def _search(self, request: web.Request) -> web.Response:
        """One version per page, as a server with a small max_results pages."""
        versions = sorted(self.versions, key=int)
        start = int(request.query.get("page_token", "0"))
        page = versions[start : start + 1]
        answer: dict[str, object] = {
            "model_versions": [
                {
                    "name": self.name,
                    "version": v,
                    "tags": [{"key": k, "value": t} for k, t in self.versions[v].tags.items()],
                }
                for v in page
            ]
        }
        if start + 1 < len(versions):
            answer["next_page_token"] = str(start + 1)
        return web.json_response(answer)

    async def _version(self, request: web.Request) -> web.Response:
        version = request.query["version"]
        if request.query["name"] != self.name or version not in self.versions:
            return self._missing(f"Model Version (name={self.name}, version={version}) not found")
        return self._described(version)

    async def _download_uri(self, request: web.Request) -> web.Response:
        version = self.versions[request.query["version"]]
        return web.json_response({"artifact_uri": version.artifact_uri})

    def _by_root(self, root: str) -> FakeVersion:
        return next(v for v in self.versions.values() if v.artifact_uri.endswith(root))

    async def _list(self, request: web.Request) -> web.Response:
        root = request.query["path"]
        files = self._by_root(root).files
        return web.json_response(
            {
                "files": [
                    {"path": name, "is_dir": False, "file_size": len(data)}
                    for name, data in files.items()
                ]
            }
        )

    async def _file(self, request: web.Request) -> web.Response:
        root, name = request.match_info["path"].rsplit("/", 1)
        return web.Response(body=self._by_root(root).files[name])


@asynccontextmanager
async def running(mlflow: FakeMlflow) -> AsyncIterator[str]:
    """The fake served on 127.0.0.1; its base URL."""
    server = TestServer(mlflow.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
