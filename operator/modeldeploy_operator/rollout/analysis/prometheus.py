"""The Prometheus client of the analysis: instant queries over Prometheus's HTTP API.

Every failure to get an answer (unreachable, an HTTP error, a query Prometheus rejected, a body
that is not the API's) is an `AnalysisError`: no verdict on the canary, which the state machine
holds on rather than counting a failed check.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import aiohttp

QUERY_TIMEOUT_SECONDS: Final = 10.0

# One sample of an instant vector: (labels, value); a scalar result has empty labels.
Sample = tuple[Mapping[str, str], float]


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
    return one_number(await query_vector(session, base_url, promql), base_url, promql)


def one_number(samples: Sequence[Sample], base_url: str, promql: str) -> float | None:
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
