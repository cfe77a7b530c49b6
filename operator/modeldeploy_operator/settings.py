"""The operator's configuration: one explicit object, from flags or environment variables."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from modeldeploy_operator import __version__
from modeldeploy_operator.peering import random_priority

DEFAULT_SERVER_IMAGE = f"ghcr.io/modeldeploy/modeldeploy-server:{__version__}"
DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    server_image: str = DEFAULT_SERVER_IMAGE
    prometheus_url: str = DEFAULT_PROMETHEUS_URL
    log_format: str = "text"
    metrics_port: int = 8080
    workers: int = 16
    resync_seconds: float = 300.0
    peering: str | None = None  # kopf peering object name; None runs standalone
    peering_priority: int = 0  # with peering: the highest live priority reconciles
    peering_lifetime: int = 15  # seconds a replica's keep-alive stays valid (failover time)
    service_monitor_labels: dict[str, str] = field(default_factory=dict)
    # Images a ModelDeployment may run (spec.server.image) must start with one of these (empty:
    # any image). The operator's own server_image is always allowed.
    allowed_image_prefixes: tuple[str, ...] = ()
    # Alertmanager's webhook receiver: served only with a token file (no token, no receiver).
    alertmanager_token_file: Path | None = None
    alertmanager_port: int = 8081

    def allows_image(self, image: str) -> bool:
        return (
            not self.allowed_image_prefixes
            or image == self.server_image
            or image.startswith(self.allowed_image_prefixes)
        )

    @property
    def all_namespaces(self) -> bool:
        return not self.namespaces

    @property
    def list_scopes(self) -> tuple[str | None, ...]:
        """Where to list: each namespace when they are exact names (a namespaced install's Roles
        allow nothing at the cluster scope); the cluster (None) for every namespace, or for
        patterns such as `team-*` (kopf accepts globs), whose matches are then filtered."""
        exact = self.namespaces and not any(set("*?[") & set(p) for p in self.namespaces)
        return self.namespaces if exact else (None,)


def _env(name: str, default: str) -> str:
    return os.environ.get(f"MODELDEPLOY_{name}", default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[n for n in _env("NAMESPACES", "").split(",") if n],
        help="watch only this namespace; globs like 'team-*' allowed "
        "(repeatable; env MODELDEPLOY_NAMESPACES=a,b)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    parser.add_argument(
        "--server-image",
        default=_env("SERVER_IMAGE", DEFAULT_SERVER_IMAGE),
        help="model server image when spec.server.image is absent (env MODELDEPLOY_SERVER_IMAGE)",
    )
    parser.add_argument(
        "--prometheus-url",
        default=_env("PROMETHEUS_URL", DEFAULT_PROMETHEUS_URL),
        help="Prometheus for canary analysis when the spec names none "
        "(env MODELDEPLOY_PROMETHEUS_URL)",
    )
    parser.add_argument(
        "--log-format", choices=["text", "json"], default=_env("LOG_FORMAT", "text")
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(_env("METRICS_PORT", "8080")),
        help="port of /metrics, /healthz and /readyz (0 disables)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(_env("WORKERS", "16")),
        help="ModelDeployments reconciled concurrently",
    )
    parser.add_argument(
        "--peering",
        default=_env("PEERING", "") or None,
        help="kopf peering name for high availability (only one replica reconciles); "
        "omit to run standalone",
    )
    parser.add_argument(
        "--peering-priority",
        type=int,
        default=int(os.environ["MODELDEPLOY_PEERING_PRIORITY"])
        if os.environ.get("MODELDEPLOY_PEERING_PRIORITY")
        else None,
        help="with --peering: this replica's priority (default: random, distinct per replica)",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=int,
        default=int(_env("PEERING_LIFETIME", "15")),
        help="with --peering: seconds before a silent replica is presumed dead (failover time)",
    )
    parser.add_argument(
        "--service-monitor-label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label put on generated ServiceMonitors/PrometheusRules so your Prometheus selects "
        "them (e.g. release=kube-prometheus-stack)",
    )
    parser.add_argument(
        "--allowed-image-prefix",
        action="append",
        default=[p for p in _env("ALLOWED_IMAGE_PREFIXES", "").split(",") if p],
        metavar="PREFIX",
        help="run only server images starting with PREFIX (end it with '/' to mean a registry "
        "path; repeatable; env MODELDEPLOY_ALLOWED_IMAGE_PREFIXES=a,b); none: any image. The "
        "--server-image is always allowed",
    )

    parser.add_argument(
        "--alertmanager-token-file",
        default=_env("ALERTMANAGER_TOKEN_FILE", "") or None,
        metavar="PATH",
        help="serve the Alertmanager webhook receiver, requiring the bearer token in PATH "
        "(re-read on every request; env MODELDEPLOY_ALERTMANAGER_TOKEN_FILE); omit to serve none",
    )
    parser.add_argument(
        "--alertmanager-port",
        type=int,
        default=int(_env("ALERTMANAGER_PORT", "8081")),
        help="port of the Alertmanager webhook receiver (POST /alertmanager)",
    )


def from_arguments(args: argparse.Namespace) -> OperatorSettings:
    labels = dict(item.split("=", 1) for item in args.service_monitor_label)
    return OperatorSettings(
        namespaces=() if args.all_namespaces else tuple(args.namespace),
        server_image=args.server_image,
        prometheus_url=args.prometheus_url,
        log_format=args.log_format,
        metrics_port=args.metrics_port,
        workers=args.workers,
        peering=args.peering,
        peering_priority=(
            args.peering_priority if args.peering_priority is not None else random_priority()
        ),
        peering_lifetime=args.peering_lifetime,
        service_monitor_labels=labels,
        allowed_image_prefixes=tuple(args.allowed_image_prefix),
        alertmanager_token_file=(
            Path(args.alertmanager_token_file) if args.alertmanager_token_file else None
        ),
        alertmanager_port=args.alertmanager_port,
    )
