"""Canary analysis: one PromQL query per check, the verdict, and the Prometheus client.

The checks read only the series every model server exports with its own `model` and `version`
labels (CONVENTIONS: the server), so they work with any scrape setup. Namespace: a Prometheus
Operator scrape adds `namespace`, a plain scrape may not; every selector carries
`namespace=~"<ns>|"`, which keeps the series of *this* namespace when the label exists (another
namespace's model of the same name never matches) and still finds series that have no namespace
label at all (where nothing could tell two same-named models apart anyway).

Checks (names are what `AnalysisCheckResult.name` says):

- `successRate`: percent of the canary's responses that are neither 5xx nor 4xx (5xx only with
  `clientErrors: Ignore`). The model server answers 4xx when the model refuses the input (a
  feature-count mismatch, the estimator's ValueError/TypeError): a version that refuses what
  clients send is as broken for them as one that crashes. Written as `100 * (1 - errors /
  total)` with `errors or vector(0)`, so a canary without a single error series is 100%, a
  canary whose every response is an error is 0% (not "no data"), and only a canary without
  requests in the window is "no data".
- `latencyP99Ms`: `histogram_quantile(0.99, ...)` of the canary's request durations, in ms.
- `compareWithStable`: canary 5xx rate minus stable's, in percentage points.
- `compareClientErrorsWithStable` (with `compareWithStable`): canary 4xx rate minus stable's.
  Both versions get the same clients, so the 4xx both produce (the clients' own mistakes)
  cancel out, and what remains are requests stable serves and the canary refuses.
- `drift`: the population stability index of the canary's prediction distribution against
  stable's over the window, computed here from per-class prediction counts (classifiers) or
  prediction-value histogram buckets (regressors) of both versions. Fewer than
  `MIN_DRIFT_SAMPLES` predictions from either version is "no data": PSI over a handful of
  predictions is noise.

Ratios make the checks immune to a pod being scraped twice (by a ServiceMonitor and a
PodMonitor): numerator and denominator double together. Empty results and NaN (0/0: series
exist but saw no requests in the window) are "no data", handled per `spec.noData`, explicitly.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import aiohttp

from modeldeploy_operator.api import (
    DNS_LABEL_PATTERN,
    NAME_PATTERN,
    VERSION_PATTERN,
    AnalysisCheckResult,
    AnalysisResult,
    AnalysisSpec,
    ClientErrorPolicy,
    NoDataPolicy,
    parse_duration,
)
from modeldeploy_operator.monitoring.metrics import (
    CLIENT_ERROR_CODES,
    PREDICTION_VALUE_BUCKET,
    PREDICTIONS_TOTAL,
    REQUEST_DURATION_BUCKET,
    REQUESTS_TOTAL,
    SERVER_ERROR_CODES,
)

Outcome = Literal["pass", "fail", "hold"]

# Check names, as status reports them.
SUCCESS_RATE: Final = "successRate"
LATENCY_P99_MS: Final = "latencyP99Ms"
COMPARE_WITH_STABLE: Final = "compareWithStable"
COMPARE_CLIENT_ERRORS_WITH_STABLE: Final = "compareClientErrorsWithStable"
DRIFT: Final = "drift"
# The two queries behind the drift check; their results are vectors, not one number.
DRIFT_CANARY: Final = "drift.canary"
DRIFT_STABLE: Final = "drift.stable"

LATENCY_QUANTILE: Final = 0.99
# Below this many predictions per version in the window the drift check reports no data.
MIN_DRIFT_SAMPLES: Final = 20
# Empty bins get this share instead of 0, so a class only one version predicts adds a large but
# finite term (the usual PSI convention).
PSI_EPSILON: Final = 1e-4
# Window when neither spec.rollout.analysis.interval nor the caller names one.
DEFAULT_WINDOW: Final = "1m"
QUERY_TIMEOUT_SECONDS: Final = 10.0
# Values are stored and judged at this precision, so what status shows is what was judged.
VALUE_DECIMALS: Final = 4


class AnalysisError(Exception):
    """Prometheus could not answer: unreachable, an HTTP error, or a query it rejected.

    Not a verdict on the canary; the state machine should retry (and let the progress deadline
    decide) rather than count a failed check.
    """

    def __init__(self, message: str, *, url: str, query: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.query = query
        self.status = status


# ---------------------------------------------------------------------------------------------
# Queries.


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


def _selector(namespace: str, model: str, version: str, extra: str = "") -> str:
    # The patterns keep every value free of quotes, backslashes and regex metacharacters other
    # than '.', which only appears in `version`, matched with '=' (not a regex).
    for what, value, pattern in (
        ("namespace", namespace, DNS_LABEL_PATTERN),
        ("model", model, NAME_PATTERN),
        ("version", version, VERSION_PATTERN),
    ):
        if not re.fullmatch(pattern, value):
            raise ValueError(f"{what} {value!r} does not match {pattern}")
    return f'{{namespace=~"{namespace}|",model="{model}",version="{version}"{extra}}}'


def _sum_rate(metric: str, selector: str, window: str) -> str:
    return f"sum(rate({metric}{selector}[{window}]))"


def _error_ratio(namespace: str, model: str, version: str, window: str, codes: str) -> str:
    """Fraction of a version's responses whose code matches the RE2 pattern `codes`; empty
    only when it has no requests."""
    errors = _sum_rate(
        REQUESTS_TOTAL, _selector(namespace, model, version, f',code=~"{codes}"'), window
    )
    total = _sum_rate(REQUESTS_TOTAL, _selector(namespace, model, version), window)
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
    selector = _selector(namespace, model, version)
    return (
        f"sum by (class) (increase({PREDICTIONS_TOTAL}{selector}[{window}]))"
        f" or sum by (le) (increase({PREDICTION_VALUE_BUCKET}{selector}[{window}]))"
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
        failures = SERVER_ERROR_CODES
        if spec.success_rate.client_errors == ClientErrorPolicy.COUNT:
            failures = f"{CLIENT_ERROR_CODES}|{SERVER_ERROR_CODES}"
        queries[SUCCESS_RATE] = (
            f"100 * (1 - {_error_ratio(namespace, model, canary_version, w, failures)})"
        )
    if spec.latency_p99_ms is not None:
        buckets = (
            f"sum by (le) (rate({REQUEST_DURATION_BUCKET}"
            f"{_selector(namespace, model, canary_version)}[{w}]))"
        )
        queries[LATENCY_P99_MS] = f"1000 * histogram_quantile({LATENCY_QUANTILE}, {buckets})"
    if spec.compare_with_stable is not None:
        queries[COMPARE_WITH_STABLE] = _increase_over_stable(
            namespace, model, canary_version, stable_version, w, SERVER_ERROR_CODES
        )
        queries[COMPARE_CLIENT_ERRORS_WITH_STABLE] = _increase_over_stable(
            namespace, model, canary_version, stable_version, w, CLIENT_ERROR_CODES
        )
    if spec.drift is not None:
        queries[DRIFT_CANARY] = _prediction_distribution(namespace, model, canary_version, w)
        queries[DRIFT_STABLE] = _prediction_distribution(namespace, model, stable_version, w)
    return queries


# ---------------------------------------------------------------------------------------------
# Drift: PSI between two prediction distributions.

Sample = tuple[Mapping[str, str], float]


def _histogram_bins(cumulative: Mapping[str, float], bounds: Sequence[str]) -> dict[str, float]:
    """Per-bin counts from cumulative bucket counts at the given (sorted) upper bounds."""
    bins: dict[str, float] = {}
    previous = 0.0
    for le in bounds:
        # increase() extrapolates each bucket separately; a bucket can come out a hair below
        # the one before it. A negative bin count is such an artefact, not a measurement.
        bins[le] = max(0.0, cumulative[le] - previous)
        previous = max(previous, cumulative[le])
    return bins


def _split(samples: Iterable[Sample]) -> tuple[dict[str, float], dict[str, float]]:
    classes: dict[str, float] = {}
    buckets: dict[str, float] = {}
    for labels, value in samples:
        if not math.isfinite(value):
            continue
        if "class" in labels:
            classes[labels["class"]] = classes.get(labels["class"], 0.0) + value
        elif "le" in labels:
            buckets[labels["le"]] = buckets.get(labels["le"], 0.0) + value
    return classes, buckets


def population_stability_index(
    canary: Mapping[str, float], stable: Mapping[str, float]
) -> float | None:
    """PSI: the sum over bins of (c - s) * ln(c / s), c and s the bins' shares of the counts.

    Symmetric, 0 for identical distributions, dependent only on the shares; None when either
    side counts fewer than `MIN_DRIFT_SAMPLES` predictions.
    """
    canary_total = sum(canary.values())
    stable_total = sum(stable.values())
    if canary_total < MIN_DRIFT_SAMPLES or stable_total < MIN_DRIFT_SAMPLES:
        return None
    psi = 0.0
    for key in set(canary) | set(stable):
        c = max(canary.get(key, 0.0) / canary_total, PSI_EPSILON)
        s = max(stable.get(key, 0.0) / stable_total, PSI_EPSILON)
        psi += (c - s) * math.log(c / s)
    return psi


def prediction_psi(canary: Iterable[Sample], stable: Iterable[Sample]) -> float | None:
    """PSI of the canary's predictions against stable's, from the `drift.*` query results.

    Classifiers compare per-class counts (a class only one version predicts counts too);
    regressors compare the histogram bins both versions share. None when either version has too
    few predictions, or one is a classifier and the other a regressor.
    """
    canary_classes, canary_buckets = _split(canary)
    stable_classes, stable_buckets = _split(stable)
    if canary_classes and stable_classes:
        return population_stability_index(canary_classes, stable_classes)
    if canary_buckets and stable_buckets:
        bounds = sorted(set(canary_buckets) & set(stable_buckets), key=float)
        if not bounds:
            return None
        return population_stability_index(
            _histogram_bins(canary_buckets, bounds), _histogram_bins(stable_buckets, bounds)
        )
    return None


# ---------------------------------------------------------------------------------------------
# The verdict.


@dataclass(frozen=True)
class _Rule:
    """How one configured check judges its value."""

    name: str
    threshold: float
    upper_bound: bool  # True: the value must not exceed the threshold; False: not fall below
    what: str  # the measured quantity, for messages
    unit: str
    no_data_hint: str


def _rules(spec: AnalysisSpec) -> list[_Rule]:
    rules: list[_Rule] = []
    if spec.success_rate is not None:
        rules.append(
            _Rule(
                SUCCESS_RATE,
                spec.success_rate.min,
                False,
                "success rate",
                "%",
                "the canary served no requests in the window",
            )
        )
    if spec.latency_p99_ms is not None:
        rules.append(
            _Rule(
                LATENCY_P99_MS,
                spec.latency_p99_ms.max,
                True,
                "p99 latency",
                " ms",
                "the canary served no requests in the window",
            )
        )
    if spec.compare_with_stable is not None:
        rules.append(
            _Rule(
                COMPARE_WITH_STABLE,
                spec.compare_with_stable.max_error_rate_increase,
                True,
                "5xx rate increase over stable",
                " percentage points",
                "the canary or the stable version served no requests in the window",
            )
        )
        rules.append(
            _Rule(
                COMPARE_CLIENT_ERRORS_WITH_STABLE,
                spec.compare_with_stable.client_error_bound,
                True,
                "4xx rate increase over stable",
                " percentage points",
                "the canary or the stable version served no requests in the window",
            )
        )
    if spec.drift is not None:
        rules.append(
            _Rule(
                DRIFT,
                spec.drift.max_psi,
                True,
                "prediction PSI against stable",
                "",
                f"the canary or the stable version made fewer than {MIN_DRIFT_SAMPLES} "
                "predictions in the window",
            )
        )
    return rules


def _fmt(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else ("+Inf" if value > 0 else "-Inf")


def _judge(
    rule: _Rule, raw: float | None, no_data: NoDataPolicy
) -> tuple[Outcome, AnalysisCheckResult]:
    """The check's own outcome and its result for status."""
    if raw is None or math.isnan(raw):
        verdict: dict[NoDataPolicy, Outcome] = {
            NoDataPolicy.FAIL: "fail",
            NoDataPolicy.PASS: "pass",
            NoDataPolicy.HOLD: "hold",
        }
        consequence = {
            NoDataPolicy.FAIL: "counts as a failed check",
            NoDataPolicy.PASS: "ignored",
            NoDataPolicy.HOLD: "waiting for data",
        }
        outcome = verdict[no_data]
        message = (
            f"no data ({rule.no_data_hint}); noData is {no_data.value}: {consequence[no_data]}"
        )
        return outcome, AnalysisCheckResult(
            name=rule.name,
            value=None,
            threshold=rule.threshold,
            passed=outcome == "pass",
            message=message,
        )
    value = round(raw, VALUE_DECIMALS) if math.isfinite(raw) else raw
    passed = value <= rule.threshold if rule.upper_bound else value >= rule.threshold
    if rule.upper_bound:
        relation = "is within the maximum" if passed else "is above the maximum"
    else:
        relation = "meets the minimum" if passed else "is below the minimum"
    message = f"{rule.what} {_fmt(value)}{rule.unit} {relation} {_fmt(rule.threshold)}{rule.unit}"
    return ("pass" if passed else "fail"), AnalysisCheckResult(
        name=rule.name,
        # Status is JSON: a non-finite value is reported in the message only.
        value=value if math.isfinite(value) else None,
        threshold=rule.threshold,
        passed=passed,
        message=message,
    )


def evaluate(
    spec: AnalysisSpec,
    values: Mapping[str, float | None],
    canary_version: str,
    step: int,
    now: datetime,
) -> tuple[Outcome, AnalysisResult]:
    """Judge measured values (keyed by check name; None or NaN = no data) against `spec`.

    Outcome: "fail" when any check fails (a measured violation, or no data under noData Fail);
    else "hold" when any check has no data under noData Hold; else "pass". A measured failure
    wins over a hold: the state machine must not wait on one check while another already fails.
    """
    policy = NoDataPolicy(spec.no_data)  # also when a spec was copied without validation
    verdicts: list[tuple[Outcome, AnalysisCheckResult]] = [
        _judge(rule, values.get(rule.name), policy) for rule in _rules(spec)
    ]
    failed = [check for verdict, check in verdicts if verdict == "fail"]
    held = [check for verdict, check in verdicts if verdict == "hold"]
    outcome: Outcome = "fail" if failed else "hold" if held else "pass"
    if failed:
        message = f"{len(failed)} of {len(verdicts)} checks failed: " + "; ".join(
            f"{check.name}: {check.message}" for check in failed
        )
    elif held:
        message = "holding: no data for " + ", ".join(check.name for check in held)
    else:
        message = f"all {len(verdicts)} checks passed"
    checks = [check for _, check in verdicts]
    by_name = {check.name: check.value for check in checks}
    return outcome, AnalysisResult(
        time=now,
        canary_version=canary_version,
        step=step,
        passed=outcome == "pass",
        success_rate=by_name.get(SUCCESS_RATE),
        latency_p99_ms=by_name.get(LATENCY_P99_MS),
        error_rate_increase=by_name.get(COMPARE_WITH_STABLE),
        client_error_rate_increase=by_name.get(COMPARE_CLIENT_ERRORS_WITH_STABLE),
        drift_psi=by_name.get(DRIFT),
        checks=checks,
        message=message,
    )


# ---------------------------------------------------------------------------------------------
# Prometheus.


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _sample_value(pair: Any, url: str, promql: str) -> float:
    try:
        return float(pair[1])
    except (TypeError, ValueError, IndexError) as err:
        raise AnalysisError(
            f"Prometheus at {url} returned a malformed sample {pair!r}", url=url, query=promql
        ) from err


async def query_vector(session: aiohttp.ClientSession, base_url: str, promql: str) -> list[Sample]:
    """An instant query's samples as (labels, value); a scalar result has empty labels."""
    url = base_url.rstrip("/") + "/api/v1/query"
    params = {"query": promql, "timeout": f"{QUERY_TIMEOUT_SECONDS:g}s"}
    try:
        async with session.get(
            url, params=params, timeout=aiohttp.ClientTimeout(total=QUERY_TIMEOUT_SECONDS)
        ) as response:
            text = await response.text()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as err:
        reason = str(err) or type(err).__name__
        raise AnalysisError(
            f"cannot reach Prometheus at {url}: {reason}", url=url, query=promql
        ) from err
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise AnalysisError(
            f"Prometheus at {url} answered HTTP {status} without a Prometheus API body: "
            f"{_shorten(text) or '(empty)'}",
            url=url,
            query=promql,
            status=status,
        )
    if status >= 400 or body.get("status") != "success":
        raise AnalysisError(
            f"Prometheus at {url} answered HTTP {status}: "
            f"{body.get('errorType', 'error')}: {body.get('error', '(no message)')} "
            f"(query: {_shorten(promql)})",
            url=url,
            query=promql,
            status=status,
        )
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return [({}, _sample_value(result, url, promql))]
    if kind == "vector" and isinstance(result, list):
        return [
            (dict(item.get("metric") or {}), _sample_value(item.get("value"), url, promql))
            for item in result
        ]
    raise AnalysisError(
        f"Prometheus at {url} returned a {kind} result; analysis queries need an instant vector",
        url=url,
        query=promql,
        status=status,
    )


async def query_prometheus(
    session: aiohttp.ClientSession, base_url: str, promql: str
) -> float | None:
    """One number from an instant query; None when the result is empty or NaN (no data).

    Raises AnalysisError when Prometheus is unreachable, answers an error, or returns more than
    one series (an analysis query must aggregate to one number).
    """
    return _one_number(await query_vector(session, base_url, promql), base_url, promql)


def _one_number(samples: Sequence[Sample], base_url: str, promql: str) -> float | None:
    if not samples:
        return None
    if len(samples) > 1:
        labels = "; ".join(str(dict(labels)) for labels, _ in samples[:3])
        raise AnalysisError(
            f"query returned {len(samples)} series where one number was expected ({labels}): "
            f"{_shorten(promql)}",
            url=base_url,
            query=promql,
        )
    value = samples[0][1]
    return None if math.isnan(value) else value


async def run_analysis(
    session: aiohttp.ClientSession,
    base_url: str,
    spec: AnalysisSpec,
    namespace: str,
    model: str,
    canary_version: str,
    stable_version: str,
    step: int,
    now: datetime,
    *,
    default_window: str = DEFAULT_WINDOW,
) -> tuple[Outcome, AnalysisResult]:
    """Query every check of `spec` concurrently and judge the values.

    The window is `spec.interval`, else `default_window` (pass the rollout's stepInterval).
    Raises AnalysisError when any query fails: no verdict is better than one on partial data.
    """
    queries = build_queries(
        spec, namespace, model, canary_version, stable_version, spec.interval or default_window
    )
    keys = list(queries)
    answers = await asyncio.gather(
        *(query_vector(session, base_url, queries[key]) for key in keys), return_exceptions=True
    )
    results: dict[str, list[Sample]] = {}
    for key, answer in zip(keys, answers, strict=True):
        if isinstance(answer, BaseException):
            raise answer
        results[key] = answer
    values: dict[str, float | None] = {
        key: _one_number(samples, base_url, queries[key])
        for key, samples in results.items()
        if key not in (DRIFT_CANARY, DRIFT_STABLE)
    }
    if spec.drift is not None:
        values[DRIFT] = prediction_psi(results[DRIFT_CANARY], results[DRIFT_STABLE])
    return evaluate(spec, values, canary_version, step, now)
