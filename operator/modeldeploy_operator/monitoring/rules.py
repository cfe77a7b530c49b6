"""The alert rules of a ModelDeployment: one PrometheusRule `<md>` with one group of alerts.

Every alert is scoped to the model (`namespace` and `model`, or the operator's `namespace` and
`name`), is evaluated per version where versions differ (a failing canary must not hide behind a
healthy stable), takes its threshold and `for` from `spec.monitoring.thresholds`, and carries a
summary, a description and a runbook (what to look at, what to do) in its annotations.

| alert | signal | severity |
|---|---|---|
| ModelDeploymentHighErrorRate | 5xx share of a version's requests | critical |
| ModelDeploymentHighLatency | p99 request duration of a version | warning |
| ModelDeploymentModelNotLoaded | a version's pods run but none has its model loaded | critical |
| ModelDeploymentNoReadyPods | a version has no ready pod, or no pod is scraped | critical |
| ModelDeploymentInputDrift | PSI of a feature's inputs against the training reference | warning |
| ModelDeploymentRolledBack | the operator rolled back the version the spec asks for | warning |

Rate windows are fixed at 5m: long enough to smooth a few slow requests, short enough to page
within minutes; `rate()` needs only two samples in the window, so a fresh series alerts as soon
as its `for` has passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from modeldeploy_operator import kinds, naming
from modeldeploy_operator.api import ModelDeployment, MonitoringThresholds
from modeldeploy_operator.builders.meta import child_metadata
from modeldeploy_operator.monitoring import metrics as m

API_VERSION: Final = kinds.PROMETHEUS_RULE.api_version
KIND: Final = kinds.PROMETHEUS_RULE.kind
RATE_WINDOW: Final = "5m"

Severity = Literal["critical", "warning"]


@dataclass(frozen=True)
class Alert:
    """One alerting rule before it is written into a rule group."""

    name: str
    expr: str
    severity: Severity
    summary: str
    description: str
    runbook: str
    for_: str | None = None

    def to_rule(self, model: str) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_ is not None:
            rule["for"] = self.for_
        # `model` on every alert (the operator's series say `name`, kube-state-metrics'
        # `deployment`), so one Alertmanager route matches all of a model's alerts.
        rule["labels"] = {"severity": self.severity, "model": model}
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook": self.runbook,
        }
        return rule


def _number(value: float) -> str:
    """A threshold in PromQL, exactly: `5`, `0.25`, `1e-05` (all valid number literals)."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _human(value: float) -> str:
    return f"{value:g}"


def live_versions(md: ModelDeployment) -> list[str]:
    """Versions that may have a Deployment: the stable, the canary and the one the spec asks for."""
    candidates = (md.status.stable_version, md.status.canary_version, md.spec.model.version)
    return list(dict.fromkeys(v for v in candidates if v))


def may_have_no_pods(md: ModelDeployment) -> bool:
    """Zero pods is what the user asked for: scale to zero, or `replicas: 0` without autoscaling."""
    autoscaling = md.spec.autoscaling
    if autoscaling is not None:
        return autoscaling.min_replicas == 0
    return md.spec.replicas == 0


def _alerts(md: ModelDeployment, t: MonitoringThresholds) -> list[Alert]:
    name, namespace = md.metadata.name, md.metadata.namespace
    model = m.model_scope(namespace, name)
    per_version = f"{m.NAMESPACE}, {m.MODEL}, {m.VERSION}"
    logs = (
        f"kubectl logs -n {namespace} -l {naming.LABEL_MODEL}={name},"
        f"{naming.LABEL_VERSION}={{{{ $labels.version }}}} --tail=200"
    )
    where = f"ModelDeployment {namespace}/{name}"
    version = "version {{ $labels.version }}"

    requests = m.selector(m.REQUESTS_TOTAL, model)
    errors = m.selector(m.REQUESTS_TOTAL, model, regex={m.CODE: m.SERVER_ERROR_CODES})
    error_rate = (
        f"100 * sum by ({per_version}) (rate({errors}[{RATE_WINDOW}]))"
        f" / sum by ({per_version}) (rate({requests}[{RATE_WINDOW}]))"
        f" > {_number(t.error_rate_percent)}"
    )
    buckets = m.selector(m.REQUEST_DURATION_BUCKET, model)
    latency = (
        f"1000 * histogram_quantile(0.99, sum by ({per_version}, {m.BUCKET})"
        f" (rate({buckets}[{RATE_WINDOW}]))) > {_number(t.latency_p99_ms)}"
    )
    loaded = m.selector(m.MODEL_LOADED, model)
    not_loaded = f"max by ({per_version}) ({loaded}) < 1"
    deployments = {
        "deployment": m.regex_alternatives(naming.track_name(name, v) for v in live_versions(md))
    }
    ready = m.selector(m.KSM_REPLICAS_READY, {m.NAMESPACE: namespace}, regex=deployments)
    wanted = m.selector(m.KSM_SPEC_REPLICAS, {m.NAMESPACE: namespace}, regex=deployments)
    no_ready = f"({ready} < 1 and on (namespace, deployment) {wanted} > 0)"
    if not may_have_no_pods(md):
        # No kube-state-metrics, or pods crash before they can be scraped: no series at all.
        no_ready += f" or absent({loaded})"
    drift = (
        f"max by ({per_version}, feature) ({m.selector(m.FEATURE_DRIFT, model)})"
        f" > {_number(t.drift_psi)}"
    )
    rolled_back = (
        "max by (namespace, name, version) "
        f"({m.selector(m.OPERATOR_ROLLED_BACK, {'namespace': namespace, 'name': name})}) > 0"
    )

    return [
        Alert(
            name="ModelDeploymentHighErrorRate",
            expr=error_rate,
            for_=t.error_rate_for,
            severity="critical",
            summary=f"{where} {version}: {{{{ $value | humanize }}}}% of requests fail",
            description=(
                f"More than {_human(t.error_rate_percent)}% of the requests to {version} of "
                f"{where} returned a 5xx status for {t.error_rate_for}."
            ),
            runbook=(
                f"1. Read why in the server's logs: {logs}\n"
                "2. 503 means the model is not loaded (see ModelDeploymentModelNotLoaded); 500 "
                "means predict raised, usually on inputs the model was not trained for (number "
                "or types of features, missing values): compare the failing requests with the "
                "training data.\n"
                f"3. If the version is the canary (kubectl get md {name} -n {namespace}), the "
                "rollout analysis rolls it back by itself; to stop it now: "
                f"kubectl modeldeploy abort {name} -n {namespace}\n"
                "4. If it is the stable version and an earlier version was healthy, set "
                "spec.model.version back to that version."
            ),
        ),
        Alert(
            name="ModelDeploymentHighLatency",
            expr=latency,
            for_=t.latency_for,
            severity="warning",
            summary=f"{where} {version}: p99 latency {{{{ $value | humanize }}}}ms",
            description=(
                f"The 99th percentile of request duration of {version} of {where} stayed above "
                f"{_human(t.latency_p99_ms)}ms for {t.latency_for}."
            ),
            runbook=(
                "1. Did the load rise? Compare requests/s per version on the modeldeploy "
                "dashboard. Saturated pods (CPU near their request) need more replicas: raise "
                "spec.autoscaling.maxReplicas, or the CPU request in spec.server.resources.\n"
                "2. Only one version slow? The new model costs more per prediction (a larger "
                "ensemble, more features): if it is the canary, "
                f"kubectl modeldeploy abort {name} -n {namespace}\n"
                "3. Large batches (many rows in 'instances') make single requests slow: check "
                f"the payloads of the slow clients. Logs: {logs}"
            ),
        ),
        Alert(
            name="ModelDeploymentModelNotLoaded",
            expr=not_loaded,
            for_=t.unavailable_for,
            severity="critical",
            summary=f"{where} {version}: no pod has the model loaded",
            description=(
                f"Pods of {version} of {where} are running, but none has loaded its model for "
                f"{t.unavailable_for}; they are not ready and serve no traffic."
            ),
            runbook=(
                f"1. The server logs why the load failed: {logs}\n"
                "   Usual causes: the artifact is missing at spec.model.storageUri, its sha256 "
                "does not match spec.model.sha256, or it was saved with another scikit-learn "
                "version.\n"
                f"2. kubectl describe pods -n {namespace} -l {naming.LABEL_MODEL}={name}: errors "
                "of the fetch init container, or OOMKilled while loading (raise "
                "spec.server.resources.limits.memory).\n"
                "3. Fix the spec, or set spec.model.version back to the stable version."
            ),
        ),
        Alert(
            name="ModelDeploymentNoReadyPods",
            expr=no_ready,
            for_=t.unavailable_for,
            severity="critical",
            summary=(
                f"{where} has no ready pod"
                "{{ with $labels.deployment }} in Deployment {{ . }}{{ end }}"
            ),
            description=(
                f"For {t.unavailable_for}, a Deployment of {where} that should have pods has "
                "none ready, or Prometheus scrapes no pod of the model at all."
            ),
            runbook=(
                f"1. kubectl get pods -n {namespace} -l {naming.LABEL_MODEL}={name} -o wide, then "
                "kubectl describe pod: Pending (no node fits the requests, a quota), "
                "CrashLoopBackOff (read the logs), ImagePullBackOff (spec.server.image).\n"
                "2. Pods running and ready? Then Prometheus does not see them: check that your "
                f"Prometheus selects the PodMonitor {name} (its podMonitorSelector against the "
                "operator's --service-monitor-label) and scrapes kube-state-metrics."
            ),
        ),
        Alert(
            name="ModelDeploymentInputDrift",
            expr=drift,
            for_=t.drift_for,
            severity="warning",
            summary=(
                f"{where} {version}: input drift on feature {{{{ $labels.feature }}}} "
                "(PSI {{ $value | humanize }})"
            ),
            description=(
                "The population stability index of feature {{ $labels.feature }} in the "
                f"inputs to {version} of {where}, against its training data, stayed above "
                f"{_human(t.drift_psi)} for {t.drift_for}."
            ),
            runbook=(
                "1. The model sees inputs unlike its training data. PSI below 0.1 is noise, "
                "0.1 to 0.25 a moderate shift, above 0.25 a major one.\n"
                "2. See which features drift: the drift panel of the modeldeploy dashboard, or "
                f"{m.selector(m.FEATURE_DRIFT, model)} in Prometheus. One feature points at an "
                "upstream change (a broken pipeline, a unit change, a new category); many "
                "features at a changed population.\n"
                "3. Fix a broken upstream at its source. A real change of the population needs "
                "a model retrained on recent data, rolled out as a new spec.model.version."
            ),
        ),
        Alert(
            name="ModelDeploymentRolledBack",
            expr=rolled_back,
            severity="warning",
            summary=f"{where}: the rollout of {version} was rolled back",
            description=(
                f"The canary analysis of {version} of {where} failed and the operator returned "
                "all traffic to the stable version. The spec still asks for the rolled-back "
                "version, which is not retried until the spec changes."
            ),
            runbook=(
                f"1. kubectl get md {name} -n {namespace} -o yaml: status.lastAnalysis has the "
                "failed checks (success rate, p99 latency) and the conditions say why.\n"
                "2. Fix the model or the server settings and publish a new version, or set "
                "spec.model.version back to status.stableVersion: either clears this alert."
            ),
        ),
    ]


def build_rule_groups(md: ModelDeployment) -> list[dict[str, Any]]:
    """The rule groups of `md` (a PrometheusRule's `spec.groups`, a Prometheus rule file's
    `groups`)."""
    thresholds = md.spec.monitoring.thresholds
    name = md.metadata.name
    return [
        {
            "name": f"modeldeploy.{md.metadata.namespace}.{name}",
            "rules": [alert.to_rule(name) for alert in _alerts(md, thresholds)],
        }
    ]


def build_prometheus_rule(md: ModelDeployment, labels: Mapping[str, str]) -> dict[str, Any]:
    """The PrometheusRule `<md>` holding the model's alerts."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": child_metadata(md, md.metadata.name, dict(labels)),
        "spec": {"groups": build_rule_groups(md)},
    }
