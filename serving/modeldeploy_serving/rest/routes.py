"""The one route table: every path the server answers, its methods, its endpoint, and whether a
call to it is counted in the request metrics.

    GET  /v2/health/live  /v2/health/ready  /v2  /v2/models/<name>  /v2/models/<name>/ready
    POST /v2/models/<name>/infer                          (`/versions/<v>` may follow <name>)
    GET  /v1/models  /v1/models/<name>          POST /v1/models/<name>:predict
    GET  /   (KServe's V1 liveness: its client's `is_server_live` reads `{"status": "alive"}`)
    GET  /metrics

Only the two inference calls are counted (as `v1`, `v2`): probes, metadata and scrapes never
dilute a canary's success rate and latency, and a loading model's readiness 503 is not taken
for a failed request. The served model's own paths (the ones traffic uses) are parsed once, when
the table is built, and found with one dictionary lookup; any other path is parsed as it comes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from modeldeploy_serving.errors import NotFound
from modeldeploy_serving.metrics import CONTENT_TYPE, PROTOCOLS, ServingMetrics
from modeldeploy_serving.rest.types import Endpoint, Receive, Response, Scope
from modeldeploy_serving.rest.v1 import V1Endpoints
from modeldeploy_serving.rest.v2 import V2Endpoints

V1, V2 = PROTOCOLS.index("v1"), PROTOCOLS.index("v2")
GET, POST = ("GET",), ("POST",)


@dataclass(frozen=True)
class Route:
    endpoint: Endpoint
    methods: tuple[str, ...]
    # The protocol an inference call is counted under in the request metrics; None elsewhere.
    counted_as: int | None
    # The model and version the path names, checked against the served ones before the call.
    model: str | None = None
    version: str | None = None


def scrape_endpoint(metrics: ServingMetrics) -> Endpoint:
    content_type = CONTENT_TYPE.encode()

    async def scrape(scope: Scope, receive: Receive) -> Response:
        return 200, metrics.render(), content_type

    return scrape


class RouteTable:
    def __init__(self, name: str, v1: V1Endpoints, v2: V2Endpoints, scrape: Endpoint) -> None:
        self.name = name
        self.v1 = v1
        self.v2 = v2
        server_metadata = Route(v2.server_metadata, GET, None)
        self._fixed: dict[str, Route] = {
            "/v2/health/live": Route(v2.live, GET, None),
            "/v2/health/ready": Route(v2.ready, GET, None),
            "/": Route(v1.live, GET, None),
            "/metrics": Route(scrape, GET, None),
            "/v2": server_metadata,
            "/v2/": server_metadata,
            "/v1/models": Route(v1.model_list, GET, None),
        }
        # The served model's paths, parsed once here (building a Route per request cost more than
        # all the rest of routing); each is what `_parse` makes of it, so that a name with "/" or
        # ":" in it routes exactly as it would be parsed.
        for path in (
            f"/v1/models/{name}:predict",
            f"/v2/models/{name}/infer",
            f"/v1/models/{name}",
            f"/v2/models/{name}",
            f"/v2/models/{name}/ready",
        ):
            with contextlib.suppress(NotFound):
                self._fixed.setdefault(path, self._parse(path))

    def route(self, path: str) -> Route:
        """The route of `path`; `NotFound` saying where the model is when there is none."""
        fixed = self._fixed.get(path)
        if fixed is not None:
            return fixed
        return self._parse(path)

    def _parse(self, path: str) -> Route:
        if path.startswith("/v2/models/"):
            name, _, rest = path[len("/v2/models/") :].partition("/")
            version = None
            if rest.startswith("versions/"):
                version, _, rest = rest[len("versions/") :].partition("/")
            if rest == "infer":
                return Route(self.v2.infer, POST, V2, name, version)
            if rest == "ready":
                return Route(self.v2.model_ready, GET, None, name, version)
            if rest == "":
                return Route(self.v2.model_metadata, GET, None, name, version)
        elif path.startswith("/v1/models/"):
            name, colon, verb = path[len("/v1/models/") :].partition(":")
            if colon and verb == "predict":
                return Route(self.v1.predict, POST, V1, name)
            if not colon and "/" not in name:
                return Route(self.v1.model_status, GET, None, name)
            if colon:
                raise NotFound(f"the V1 verb {verb!r} is not supported here; use :predict")
        raise NotFound(
            f"no endpoint at {path}; the model is at /v1/models/{self.name}:predict and "
            f"/v2/models/{self.name}/infer"
        )
