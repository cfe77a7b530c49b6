"""A stand-in for model-server pods: the analysis metrics as exact functions of time.

`python -m tests.prometheus.analysis_exporter` serves three scrape targets on loopback ports it
picks itself and prints as one JSON line once they listen:

- `ml`: ModelDeployment iris — version 1 (stable), 2 (a healthy canary) and 3 (a canary with
  40% HTTP 500s, every request 400 ms, and shifted predictions);
- `other`: a same-named iris in another namespace whose version 2 answers nothing but 500s;
- `plain`: ModelDeployment plain, versions 1 and 2 (scraped without a namespace label); version 2
  also answers 1 request in 11 with a 404 that version 1 never gives.

Every counter grows at a fixed rate from the moment the process starts, computed at scrape time
from one clock reading, so the rates and ratios Prometheus sees are exact and all series of a
scrape agree. Series carry `model` and `version` labels, as the real server's do.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector, CollectorRegistry

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class Version:
    """Per second: responses by HTTP code, one request duration for all, predictions by class."""

    model: str
    version: str
    codes: dict[str, float]
    seconds: float
    classes: dict[str, float] = field(default_factory=dict)


HEALTHY_CLASSES = {"setosa": 5.0, "versicolor": 3.0, "virginica": 2.0}
SHIFTED_CLASSES = {"setosa": 1.0, "versicolor": 1.0, "virginica": 8.0}

TARGETS = {
    "ml": [
        Version("iris", "1", {"200": 10.0}, 0.008, HEALTHY_CLASSES),
        Version("iris", "2", {"200": 10.0}, 0.02, HEALTHY_CLASSES),
        Version("iris", "3", {"200": 6.0, "500": 4.0}, 0.4, SHIFTED_CLASSES),
    ],
    "other": [Version("iris", "2", {"500": 10.0}, 2.0, SHIFTED_CLASSES)],
    "plain": [
        Version("plain", "1", {"200": 10.0}, 0.008, HEALTHY_CLASSES),
        Version("plain", "2", {"200": 10.0, "404": 1.0}, 0.008, HEALTHY_CLASSES),
    ],
}


class Simulation(Collector):
    def __init__(self, versions: list[Version], started: float) -> None:
        self.versions = versions
        self.started = started

    def collect(self) -> Iterator[Metric]:
        elapsed = time.monotonic() - self.started
        requests = CounterMetricFamily(
            "modeldeploy_requests", "Requests.", labels=["model", "version", "protocol", "code"]
        )
        durations = HistogramMetricFamily(
            "modeldeploy_request_duration_seconds",
            "Request durations.",
            labels=["model", "version", "protocol"],
        )
        predictions = CounterMetricFamily(
            "modeldeploy_predictions", "Predictions.", labels=["model", "version", "class"]
        )
        for v in self.versions:
            total = 0.0
            for code, per_second in v.codes.items():
                requests.add_metric([v.model, v.version, "v1", code], per_second * elapsed)
                total += per_second * elapsed
            buckets = [(f"{le:g}", total if v.seconds <= le else 0.0) for le in LATENCY_BUCKETS]
            durations.add_metric(
                [v.model, v.version, "v1"], [*buckets, ("+Inf", total)], total * v.seconds
            )
            for name, per_second in v.classes.items():
                predictions.add_metric([v.model, v.version, name], per_second * elapsed)
        yield requests
        yield durations
        yield predictions


def main() -> None:
    started = time.monotonic()
    ports: dict[str, int] = {}
    for target, versions in TARGETS.items():
        registry = CollectorRegistry(auto_describe=False)
        registry.register(Simulation(versions, started))
        server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
        ports[target] = server.server_port
    print(json.dumps(ports), flush=True)
    sys.stdin.read()  # run until the test closes our stdin (or dies)


if __name__ == "__main__":
    main()
