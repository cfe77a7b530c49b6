"""Canary analysis: does the canary serve as well as the spec asks, judged from Prometheus.

- `checks`: the names of the checks, as `AnalysisCheckResult.name` (and the plugin) show them.
- `queries`: one PromQL query per configured check, built from the project's one PromQL
  vocabulary (`monitoring.metrics`).
- `drift`: the population stability index of the canary's predictions against stable's.
- `verdict`: each check's value against its threshold, and the outcome (pass, fail, hold).
- `prometheus`: the HTTP client of Prometheus's instant-query API.
- `run`: all of the above for one analysis: query concurrently, then judge.

Only `prometheus` and `run` do I/O. The checks read only the series every model server exports
with its own `model` and `version` labels (CONVENTIONS: the server), so they work with any scrape
setup. Ratios make them immune to a pod being scraped twice (numerator and denominator double
together). Empty results and NaN (0/0: series exist but saw no requests in the window) are "no
data", handled per `spec.noData`, explicitly.
"""
