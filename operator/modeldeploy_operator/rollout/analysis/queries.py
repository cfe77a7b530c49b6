"""PromQL for each configured check, keyed by check name.

Every selector scopes a version's series with `monitoring.metrics.version_scope`, its namespace
matched as `namespace=~"<ns>|"`: a Prometheus Operator scrape adds `namespace`, a plain scrape
may not, and this keeps the series of *this* namespace when the label exists (another
namespace's model of the same name never matches) and still finds series that have no namespace
label at all (where nothing could tell two same-named models apart anyway).

`successRate` is written as `100 * (1 - errors / total)` with `errors or vector(0)`, so a canary
without a single error series is 100%, a canary whose every response is an error is 0% (not "no
data"), and only a canary without requests in the window is "no data".
"""

from __future__ import annotations

import re
from typing import Final

from modeldeploy_operator.api import (
    DNS_LABEL_PATTERN,
    NAME_PATTERN,
    VERSION_PATTERN,
    AnalysisSpec,
    ClientErrorPolicy,
    parse_duration,
)
from modeldeploy_operator.monitoring import metrics as m
from modeldeploy_operator.rollout.analysis.checks import (
    COMPARE_CLIENT_ERRORS_WITH_STABLE,
    COMPARE_WITH_STABLE,
    LATENCY_P99_MS,
    SUCCESS_RATE,
)

# The two queries behind the drift check; their results are vectors, not one number.
DRIFT_CANARY: Final = "drift.canary"
DRIFT_STABLE: Final = "drift.stable"
LATENCY_QUANTILE: Final = 0.99
# Window when neither spec.rollout.analysis.interval nor the caller names one.
DEFAULT_WINDOW: Final = "1m"


def promql_duration(text: str) -> str:
    """A Go-style duration ("1m", "1h30m", "1.5s") as a PromQL range ("60s", "5400s", "1500ms").

    The spec accepts fractions, which PromQL 2.x ranges do not; whole milliseconds are exact.
    """
    milliseconds = round(parse_duration(text) * 1000)
    if milliseconds <= 0:
        raise ValueError(f"window {text!r} must be positive")
    if milliseconds % 1000 == 0:
        return f"{milliseconds // 1000}s"
    return f"{milliseconds}ms"


def _selector(metric: str, namespace: str, model: str, version: str, codes: str = "") -> str:
    """`metric` of one version, its responses with a code matching `codes` when given."""
    # The patterns keep every value free of quotes, backslashes and regex metacharacters other
    # than '.', which only appears in `version`, matched with '=' (not a regex).
    for what, value, pattern in (
        ("namespace", namespace, DNS_LABEL_PATTERN),
        ("model", model, NAME_PATTERN),
        ("version", version, VERSION_PATTERN),
    ):
        if not re.fullmatch(pattern, value):
            raise ValueError(f"{what} {value!r} does not match {pattern}")
    scope = m.version_scope(m.namespace_or_unlabelled(namespace), model, version)
    return m.selector(metric, scope, regex={m.CODE: codes} if codes else None)


def _sum_rate(series: str, window: str) -> str:
    return f"sum(rate({series}[{window}]))"


def _error_ratio(namespace: str, model: str, version: str, window: str, codes: str) -> str:
    """Fraction of a version's responses whose code matches the RE2 pattern `codes`; empty
    only when it has no requests."""
    errors = _sum_rate(_selector(m.REQUESTS_TOTAL, namespace, model, version, codes), window)
    total = _sum_rate(_selector(m.REQUESTS_TOTAL, namespace, model, version), window)
    return f"(({errors} or vector(0)) / {total})"


def _increase_over_stable(
    namespace: str, model: str, canary: str, stable: str, window: str, codes: str
) -> str:
    """Percentage points by which the canary's share of `codes` exceeds stable's."""
    return (
        f"100 * ({_error_ratio(namespace, model, canary, window, codes)}"
        f" - {_error_ratio(namespace, model, stable, window, codes)})"
    )


def _prediction_distribution(namespace: str, model: str, version: str, window: str) -> str:
    """Per-class prediction counts, or cumulative prediction-value buckets, over the window."""
    predictions = _selector(m.PREDICTIONS_TOTAL, namespace, model, version)
    values = _selector(m.PREDICTION_VALUE_BUCKET, namespace, model, version)
    return (
        f"sum by ({m.CLASS}) (increase({predictions}[{window}]))"
        f" or sum by ({m.BUCKET}) (increase({values}[{window}]))"
    )


def build_queries(
    spec: AnalysisSpec,
    namespace: str,
    model: str,
    canary_version: str,
    stable_version: str,
    window: str,
) -> dict[str, str]:
    """PromQL for every check `spec` configures, keyed by check name (`drift` needs two vector
    queries, keyed `drift.canary` and `drift.stable`). `window` is a duration such as "1m"."""
    w = promql_duration(window)
    queries: dict[str, str] = {}
    if spec.success_rate is not None:
        failures = m.SERVER_ERROR_CODES
        if spec.success_rate.client_errors == ClientErrorPolicy.COUNT:
            failures = f"{m.CLIENT_ERROR_CODES}|{m.SERVER_ERROR_CODES}"
        queries[SUCCESS_RATE] = (
            f"100 * (1 - {_error_ratio(namespace, model, canary_version, w, failures)})"
        )
    if spec.latency_p99_ms is not None:
        durations = _selector(m.REQUEST_DURATION_BUCKET, namespace, model, canary_version)
        buckets = f"sum by ({m.BUCKET}) (rate({durations}[{w}]))"
        queries[LATENCY_P99_MS] = f"1000 * histogram_quantile({LATENCY_QUANTILE}, {buckets})"
    if spec.compare_with_stable is not None:
        queries[COMPARE_WITH_STABLE] = _increase_over_stable(
            namespace, model, canary_version, stable_version, w, m.SERVER_ERROR_CODES
        )
        queries[COMPARE_CLIENT_ERRORS_WITH_STABLE] = _increase_over_stable(
            namespace, model, canary_version, stable_version, w, m.CLIENT_ERROR_CODES
        )
    if spec.drift is not None:
        queries[DRIFT_CANARY] = _prediction_distribution(namespace, model, canary_version, w)
        queries[DRIFT_STABLE] = _prediction_distribution(namespace, model, stable_version, w)
    return queries
