"""The project's one PromQL vocabulary: every metric and label its queries read, named once, and
the selectors that scope a model's (or one version's) series.

Three sources: the model server's series (CONVENTIONS, "The model server"), the operator's own
(`modeldeploy_operator_*`, served by the operator and scraped by its chart's ServiceMonitor with
`honorLabels: true`, so their `namespace` label is the ModelDeployment's, not the operator's),
and kube-state-metrics. The canary analysis, the alert rules, the KEDA trigger and the dashboard
build their queries from these names and selectors, and the tests check that nothing else is
queried.

Every model-server series also carries the target labels the Prometheus Operator adds to a
PodMonitor's targets (`namespace`, `pod`, `container`, `job`), so queries filter on
`namespace` as well as `model`: two ModelDeployments of the same name in two namespaces are two
different models.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

# The model server (CONVENTIONS).
REQUESTS_TOTAL: Final = "modeldeploy_requests_total"
REQUEST_DURATION_SECONDS: Final = "modeldeploy_request_duration_seconds"
REQUEST_DURATION_BUCKET: Final = f"{REQUEST_DURATION_SECONDS}_bucket"
PREDICTIONS_TOTAL: Final = "modeldeploy_predictions_total"
PREDICTION_VALUE: Final = "modeldeploy_prediction_value"
PREDICTION_VALUE_BUCKET: Final = f"{PREDICTION_VALUE}_bucket"
FEATURE_DRIFT: Final = "modeldeploy_feature_drift"
MODEL_LOADED: Final = "modeldeploy_model_loaded"
MODEL_INFO: Final = "modeldeploy_model_info"
DRIFT_WINDOW_ROWS: Final = "modeldeploy_drift_window_rows"
# The labels every model-server series carries (set by the server from its environment), and
# the per-series ones: the response's HTTP code, the predicted class, a histogram's bucket bound.
NAMESPACE: Final = "namespace"
MODEL: Final = "model"
VERSION: Final = "version"
CODE: Final = "code"
CLASS: Final = "class"
BUCKET: Final = "le"
# Values of REQUESTS_TOTAL's `code` label, as RE2 patterns for `code=~`.
SERVER_ERROR_CODES: Final = "5.."
CLIENT_ERROR_CODES: Final = "4.."

# The operator. CANARY_WEIGHT: percent of traffic on the canary, labelled with the canary's
# version, present only while a rollout is in progress. ROLLED_BACK: 1 while the serving
# template the spec asks for is the one a rollout rolled back (status.failedServingHash equals
# the spec's fingerprint), labelled with that version; absent (or 0) otherwise.
OPERATOR_CANARY_WEIGHT: Final = "modeldeploy_operator_canary_weight"
OPERATOR_ROLLED_BACK: Final = "modeldeploy_operator_rolled_back"
# Retraining runs finished, by `result` (the run's final phase: Promoted, GateFailed,
# RolledBack, Failed). Served by the operator; no query of the project reads it (yet).
RETRAINING_RUNS_TOTAL: Final = "modeldeploy_retraining_runs_total"
RESULT: Final = "result"

# kube-state-metrics (a standard part of kube-prometheus-stack).
KSM_REPLICAS_READY: Final = "kube_deployment_status_replicas_ready"
KSM_SPEC_REPLICAS: Final = "kube_deployment_spec_replicas"

SERVER_METRICS: Final = frozenset(
    {
        REQUESTS_TOTAL,
        REQUEST_DURATION_BUCKET,
        f"{REQUEST_DURATION_SECONDS}_count",
        f"{REQUEST_DURATION_SECONDS}_sum",
        PREDICTIONS_TOTAL,
        PREDICTION_VALUE_BUCKET,
        f"{PREDICTION_VALUE}_count",
        f"{PREDICTION_VALUE}_sum",
        FEATURE_DRIFT,
        MODEL_LOADED,
        MODEL_INFO,
        DRIFT_WINDOW_ROWS,
    }
)
OPERATOR_METRICS: Final = frozenset({OPERATOR_CANARY_WEIGHT, OPERATOR_ROLLED_BACK})
KUBE_STATE_METRICS: Final = frozenset({KSM_REPLICAS_READY, KSM_SPEC_REPLICAS})
KNOWN_METRICS: Final = SERVER_METRICS | OPERATOR_METRICS | KUBE_STATE_METRICS


def quote(value: str) -> str:
    """A PromQL string literal (double-quoted, Go escapes, which JSON's are a subset of)."""
    return json.dumps(value)


_RE2_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def regex_alternatives(values: Iterable[str]) -> str:
    """An RE2 pattern matching exactly one of `values` (PromQL anchors `=~` at both ends)."""
    return "|".join(_RE2_META.sub(r"\\\1", value) for value in sorted(set(values)))


@dataclass(frozen=True)
class Regex:
    """A label value matched with `=~`: an RE2 pattern, anchored at both ends by PromQL."""

    pattern: str


Matchers = Mapping[str, str | Regex]


def model_scope(namespace: str | Regex, model: str) -> dict[str, str | Regex]:
    """The matchers of one model's series. The namespace comes first and is never left out: two
    ModelDeployments of the same name in two namespaces are two different models."""
    return {NAMESPACE: namespace, MODEL: model}


def version_scope(namespace: str | Regex, model: str, version: str) -> dict[str, str | Regex]:
    """The matchers of one version's series."""
    return {**model_scope(namespace, model), VERSION: version}


def namespace_or_unlabelled(namespace: str) -> Regex:
    """Series of `namespace`, and series without a namespace label (a plain scrape adds none)."""
    return Regex(f"{regex_alternatives([namespace])}|")


def selector(metric: str, labels: Matchers, *, regex: Mapping[str, str] | None = None) -> str:
    """`metric{a="x",b=~"y|z"}`: the matchers of `labels` in order (a `Regex` value is matched
    with `=~`), then regex ones from `regex`."""
    matchers = [
        f"{name}=~{quote(value.pattern)}" if isinstance(value, Regex) else f"{name}={quote(value)}"
        for name, value in labels.items()
    ]
    matchers += [f"{name}=~{quote(pattern)}" for name, pattern in (regex or {}).items()]
    return f"{metric}{{{','.join(matchers)}}}"
