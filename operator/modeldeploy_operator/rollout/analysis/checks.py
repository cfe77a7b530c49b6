"""The analysis checks by name, as status reports them (`AnalysisCheckResult.name`).

- `successRate`: percent of the canary's responses that are neither 5xx nor 4xx (5xx only with
  `clientErrors: Ignore`). The model server answers 4xx when the model refuses the input (a
  feature-count mismatch, the estimator's ValueError/TypeError): a version that refuses what
  clients send is as broken for them as one that crashes.
- `latencyP99Ms`: the 99th percentile of the canary's request durations, in ms.
- `compareWithStable`: canary 5xx rate minus stable's, in percentage points.
- `compareClientErrorsWithStable` (with `compareWithStable`): canary 4xx rate minus stable's.
  Both versions get the same clients, so the 4xx both produce (the clients' own mistakes)
  cancel out, and what remains are requests stable serves and the canary refuses.
- `drift`: the population stability index of the canary's prediction distribution against
  stable's over the window.
"""

from __future__ import annotations

from typing import Final

SUCCESS_RATE: Final = "successRate"
LATENCY_P99_MS: Final = "latencyP99Ms"
COMPARE_WITH_STABLE: Final = "compareWithStable"
COMPARE_CLIENT_ERRORS_WITH_STABLE: Final = "compareClientErrorsWithStable"
DRIFT: Final = "drift"
