"""The operator's own Prometheus metrics (served on its /metrics endpoint).

Names use the `modeldeploy_operator_` prefix so they never collide with the model servers'
`modeldeploy_` series when both are scraped by the same Prometheus.
"""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

from modeldeploy_operator.monitoring.metrics import RESULT, RETRAINING_RUNS_TOTAL

# prometheus_client adds the `_total` the name in metrics.py carries.
RETRAINING_RUNS = Counter(
    RETRAINING_RUNS_TOTAL.removesuffix("_total"),
    "Retraining runs finished, by result (Promoted, GateFailed, RolledBack, Failed).",
    [RESULT],
)
RECONCILES = Counter(
    "modeldeploy_operator_reconciles_total",
    "Reconciliations of ModelDeployments, by result (ok, error, requeued).",
    ["result"],
)
RECONCILE_DURATION = Histogram(
    "modeldeploy_operator_reconcile_duration_seconds",
    "Wall time of one reconciliation of one ModelDeployment.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILE_ERRORS = Counter(
    "modeldeploy_operator_reconcile_errors_total",
    "Reconciliations that failed, by error class.",
    ["error"],
)
API_WRITES = Counter(
    "modeldeploy_operator_api_writes_total",
    "Write requests sent to the apiserver, by verb and kind (zero at steady state).",
    ["verb", "kind"],
)
MANAGED_OBJECTS = Gauge(
    "modeldeploy_operator_managed_objects",
    "Objects the operator currently tracks, by kind.",
    ["kind"],
)
ANALYSIS_UNANSWERED = Counter(
    "modeldeploy_operator_analysis_unanswered_total",
    "Canary analyses Prometheus did not answer (unreachable, an HTTP error, a rejected query); "
    "each holds its step instead of counting a check.",
)
ROLLOUTS_IN_PROGRESS = Gauge(
    "modeldeploy_operator_rollouts_in_progress",
    "ModelDeployments with a canary rollout in progress.",
)
LEADING = Gauge(
    "modeldeploy_operator_leading",
    "1 while this replica reconciles: always when standalone, while it leads with --peering.",
)
QUEUE_DEPTH = Gauge(
    "modeldeploy_operator_queue_depth",
    "ModelDeployments waiting to be reconciled.",
)
# Per ModelDeployment; `namespace`, `name`, `version` as the alert rules and dashboard expect
# (the operator's ServiceMonitor must use honorLabels so `namespace` is not renamed).
ROLLED_BACK = Gauge(
    "modeldeploy_operator_rolled_back",
    "1 while the spec asks for a version whose rollout was rolled back (or a followed registry "
    "points at a rejected version).",
    ["namespace", "name", "version"],
)
CANARY_WEIGHT = Gauge(
    "modeldeploy_operator_canary_weight",
    "Percent of traffic on the canary version during a rollout.",
    ["namespace", "name", "version"],
)


def forget_rollout_series(namespace: str, name: str, version: str) -> None:
    for gauge in (ROLLED_BACK, CANARY_WEIGHT):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name, version)
