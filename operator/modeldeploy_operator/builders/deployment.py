"""The Deployment of one live version: pods running `modeldeploy serve` on the model's artifact.

Where the artifact comes from (the contract with `modeldeploy fetch` and `modeldeploy serve`):

- any URI but pvc:// — an init container runs `modeldeploy fetch URI /mnt/models [--sha256 HEX]`
  into an emptyDir, and the server runs with `--model-dir /mnt/models [--sha256 HEX]`: the
  fetcher refuses a download that does not match, the server the bytes it loads (a pinned
  pickle is then loaded as pinned, not with a warning);
- `pvc://CLAIM/PATH` — nothing is copied: the claim is mounted read-only at `/mnt/pvc/CLAIM`
  and the server runs with `--model-dir` set to the artifact's directory there: PATH itself
  when it names a directory, its parent when its last segment is a file (ends in .joblib,
  .pkl, .pickle or .skops). `--sha256` then goes to the server, which verifies the file.

Pods follow the restricted Pod Security Standard, keep the root filesystem read-only (an emptyDir
at /tmp is the only scratch space), get the ModelDeployment's name and version from the
environment (the server labels every metric with them), and are ready only when the model is
loaded (`/v2/models/<name>/ready`), not merely when the port answers. A terminating pod pauses
(preStop) before the server drains, so no request routed to it in the meantime is refused.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Final

from modeldeploy_serving.contract import ARTIFACT_SUFFIXES, ENV_MODEL, ENV_VERSION

from modeldeploy_operator import naming
from modeldeploy_operator.api import (
    EnvVar,
    ModelDeployment,
    ServerSpec,
    parse_duration,
    parse_pvc_uri,
)
from modeldeploy_operator.builders.context import NONROOT_UID, BuildContext
from modeldeploy_operator.builders.meta import child_metadata
from modeldeploy_operator.builders.plan import TrackPlan

SERVER_CONTAINER: Final = "server"
FETCH_CONTAINER: Final = "fetch"
PORT_NAME: Final = "http"
MODEL_VOLUME: Final = "model"
TMP_VOLUME: Final = "tmp"
TMP_PATH: Final = "/tmp"

PROBE_PERIOD_SECONDS: Final = 5


@dataclass(frozen=True)
class ModelStorage:
    """How the pod gets the artifact: a volume, its mount, and the directory the server reads."""

    volume: dict[str, Any]
    mount: dict[str, Any]
    model_dir: str
    fetch: bool  # True: an init container downloads into the volume


def model_storage(storage_uri: str, ctx: BuildContext) -> ModelStorage:
    """The volume and model directory for a storage URI (see the module docstring)."""
    location = parse_pvc_uri(storage_uri)
    if location is None:
        return ModelStorage(
            volume={"name": MODEL_VOLUME, "emptyDir": {}},
            mount={"name": MODEL_VOLUME, "mountPath": ctx.model_mount_path},
            model_dir=ctx.model_mount_path,
            fetch=True,
        )
    root = f"{ctx.pvc_mount_root}/{location.claim}"
    segments = [segment for segment in location.path.split("/") if segment]
    if segments and segments[-1].endswith(ARTIFACT_SUFFIXES):
        segments = segments[:-1]
    return ModelStorage(
        volume={
            "name": MODEL_VOLUME,
            "persistentVolumeClaim": {"claimName": location.claim, "readOnly": True},
        },
        mount={"name": MODEL_VOLUME, "mountPath": root, "readOnly": True},
        model_dir="/".join([root, *segments]),
        fetch=False,
    )


def container_resources(server: ServerSpec, ctx: BuildContext) -> dict[str, dict[str, str]]:
    """The user's requests and limits over the operator's defaults, per resource name.

    A resource the user mentions at all (as a request or a limit) takes no default: a default
    request could exceed the user's limit, and a default limit could undercut the user's request.
    """
    user = server.resources
    requests = {k: str(v) for k, v in ((user.requests or {}) if user else {}).items()}
    limits = {k: str(v) for k, v in ((user.limits or {}) if user else {}).items()}
    mentioned = requests.keys() | limits.keys()
    resources = {
        "requests": {
            **{k: v for k, v in ctx.default_requests.items() if k not in mentioned},
            **requests,
        },
        "limits": {
            **{k: v for k, v in ctx.default_limits.items() if k not in mentioned},
            **limits,
        },
    }
    return {kind: values for kind, values in resources.items() if values}


def _env_var(var: EnvVar) -> dict[str, Any]:
    if var.value_from is not None:
        ref = var.value_from.secret_key_ref
        selector: dict[str, Any] = {"name": ref.name, "key": ref.key}
        if ref.optional is not None:
            selector["optional"] = ref.optional
        return {"name": var.name, "valueFrom": {"secretKeyRef": selector}}
    return {"name": var.name, "value": var.value}


def _security_context() -> dict[str, Any]:
    """Restricted Pod Security Standard, per container."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": NONROOT_UID,
        "runAsGroup": NONROOT_UID,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _http_probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def build_deployment(md: ModelDeployment, plan: TrackPlan, ctx: BuildContext) -> dict[str, Any]:
    """The Deployment of one live version, ready for server-side apply."""
    name = md.metadata.name
    model = plan.serving.model
    server = plan.serving.server
    storage = model_storage(model.storage_uri, ctx)
    image = server.image or ctx.server_image
    env = [
        {"name": ENV_MODEL, "value": name},
        {"name": ENV_VERSION, "value": model.version},
        *(_env_var(var) for var in server.env),
    ]
    resources = container_resources(server, ctx)

    def container(container_name: str, args: list[str]) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": container_name,
            "image": image,
            "command": ["modeldeploy"],
            "args": args,
            "env": copy.deepcopy(env),
            "resources": copy.deepcopy(resources),
            "securityContext": _security_context(),
            "volumeMounts": [dict(storage.mount), {"name": TMP_VOLUME, "mountPath": TMP_PATH}],
        }
        if server.image_pull_policy is not None:
            spec["imagePullPolicy"] = server.image_pull_policy.value
        return spec

    serve_args = [
        "serve",
        "--model-dir",
        storage.model_dir,
        "--name",
        name,
        "--version",
        model.version,
        "--port",
        str(ctx.port),
        "--graceful-timeout",
        str(ctx.drain_seconds),
    ]
    if server.workers is not None:
        serve_args += ["--workers", str(server.workers)]
    if model.sha256 is not None:
        serve_args += ["--sha256", model.sha256]
    serving = container(SERVER_CONTAINER, serve_args)
    serving["ports"] = [{"name": PORT_NAME, "containerPort": ctx.port, "protocol": "TCP"}]
    serving["startupProbe"] = _http_probe(
        "/v2/health/live",
        period=PROBE_PERIOD_SECONDS,
        failures=max(1, math.ceil(ctx.startup_timeout_seconds / PROBE_PERIOD_SECONDS)),
    )
    serving["readinessProbe"] = _http_probe(
        f"/v2/models/{name}/ready", period=PROBE_PERIOD_SECONDS, failures=3
    )
    serving["livenessProbe"] = _http_probe("/v2/health/live", period=10, failures=3)
    # Requests still arrive for a moment after a pod starts terminating (endpoint and route
    # updates propagate); the server keeps answering them until this pause ends.
    serving["lifecycle"] = {"preStop": {"sleep": {"seconds": ctx.pre_stop_seconds}}}

    pod_spec: dict[str, Any] = {
        # The server never talks to the Kubernetes API; a mounted token would only be a risk.
        "automountServiceAccountToken": False,
        # Thousands of Services in a namespace would otherwise become thousands of env vars.
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NONROOT_UID,
            "runAsGroup": NONROOT_UID,
            "fsGroup": NONROOT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": ctx.termination_grace_period_seconds,
        "containers": [serving],
        "volumes": [storage.volume, {"name": TMP_VOLUME, "emptyDir": {}}],
    }
    if server.node_selector is not None:
        pod_spec["nodeSelector"] = dict(server.node_selector)
    if server.tolerations is not None:
        pod_spec["tolerations"] = [
            t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in server.tolerations
        ]
    if storage.fetch:
        fetch_args = ["fetch", model.storage_uri, storage.model_dir]
        if model.sha256 is not None:
            fetch_args += ["--sha256", model.sha256]
        pod_spec["initContainers"] = [container(FETCH_CONTAINER, fetch_args)]

    spec: dict[str, Any] = {}
    if plan.replicas is not None:
        # Absent when an HPA owns the count: applying a number would fight the autoscaler.
        spec["replicas"] = plan.replicas
    elif plan.initial_replicas is not None:
        # Created at the autoscaler's minimum, so Ready never means fewer pods than that; the
        # reconciler hands the field over to the autoscaler once the Deployment exists.
        spec["replicas"] = plan.initial_replicas
    spec |= {
        "revisionHistoryLimit": ctx.revision_history_limit,
        "progressDeadlineSeconds": max(
            1, math.ceil(parse_duration(md.spec.rollout.progress_deadline))
        ),
        # Selectors are immutable: model + version never change for a Deployment's lifetime.
        "selector": {"matchLabels": naming.version_selector(name, model.version)},
        # Never below the desired count while pods roll (a server-only change rolls in place).
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
        },
        "template": {
            "metadata": {
                "labels": naming.pod_labels(name, model.version),
                "annotations": {naming.ANNOTATION_SERVING_HASH: plan.serving.fingerprint()},
            },
            "spec": pod_spec,
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(
            md,
            naming.track_name(name, model.version),
            naming.labels_for(name, model.version, plan.track),
        ),
        "spec": spec,
    }
