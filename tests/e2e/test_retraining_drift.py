"""Retraining on real drift, on the local cluster: nothing stands in for the trigger's value.

The target ModelDeployment's real `modeldeploy serve` pods run on the real node with the drift
reference its champion was registered with (a real `mlflow server` on this host); the platform's
Prometheus scrapes them through the operator's PodMonitor (the Prometheus Operator configures
it); the policy's metric trigger is its default query, the target's largest PSI. Requests of a
shifted world (modeldeploy_operator.drift_loop, which `make demo-loop` narrates) sent through the
model's Service raise the PSI over the threshold:

- exactly one RetrainingRun starts, and its trigger snapshot holds the value Prometheus
  scraped (one of the real PSI samples, over the threshold, of a shifted feature);
- the drift, still high, fires the trigger again after a new hold: suppressed, no second run.

The run's later phases (the gate, the alias, the canary) are test_retraining.py's and the demo's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest
from modeldeploy_operator import drift_loop
from modeldeploy_operator.local_mlflow import MlflowServer
from modeldeploy_operator.retraining.loop import default_query

from tests.support.images import SERVER_IMAGE
from tests.support.kube import Kubectl, eventually
from tests.support.models import wait_ready
from tests.support.nodes import REAL_NODE_SELECTOR
from tests.support.operator_process import OperatorProcess
from tests.support.platform import prometheus_url

pytestmark = pytest.mark.usefixtures("retraining_crds")

NAME: Final = "iris"
POLICY: Final = "iris-drift"
# Prometheus reads a new PodMonitor's scrape configuration from a volume the kubelet refreshes
# about once a minute (as in test_real_traffic.py).
CONFIG_PROPAGATION_TIMEOUT: Final = 240
# Shifted requests → PSI scraped (every 5 s) → held 10 s → the loop's next pass (5 s).
RUN_TIMEOUT: Final = 120
SHIFTED_FEATURES: Final = {
    name for name, shift in zip(drift_loop.FEATURES, drift_loop.SHIFT, strict=True) if shift
}


@pytest.fixture(scope="module")
def data_url(tmp_path_factory: pytest.TempPathFactory, host_address: str) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("data")
    drift_loop.write_data(directory)
    with drift_loop.served_files(directory, host_address) as url:
        yield url


def runs_of(k: Kubectl) -> list[dict[str, Any]]:
    return [r for r in k.list("retrainingruns") if r["spec"]["policy"] == POLICY]


def policy_status(k: Kubectl) -> dict[str, Any]:
    return dict((k.get("retrainingpolicy", POLICY) or {}).get("status", {}))


def test_shifted_traffic_raises_the_real_drift_and_starts_exactly_one_run(
    operator: OperatorProcess,
    kube: Kubectl,
    k: Kubectl,
    mlflow: MlflowServer,
    data_url: str,
) -> None:
    prometheus = prometheus_url(kube)
    namespace = str(k.namespace)
    registered = f"{namespace}-iris"
    drift_loop.register_champion(mlflow, registered, data_url)
    k.apply(drift_loop.trainer_config_map())
    k.apply(drift_loop.target(NAME, mlflow.url, registered, node_selector=REAL_NODE_SELECTOR))
    wait_ready(k, NAME, timeout=300)
    # Other tests on a shared cluster may restart Prometheus: refused while it restarts is "not
    # yet" here (one run beside other sessions' tests met a ConnectError while it restarted).
    eventually(
        lambda: drift_loop.scraped(prometheus, namespace, NAME),
        timeout=CONFIG_PROPAGATION_TIMEOUT,
        what=f"Prometheus scraping {NAME}'s pods (its PodMonitor)",
        retrying=(httpx.TransportError,),
    )
    k.apply(
        drift_loop.policy(
            POLICY, NAME, data_url, prometheus, SERVER_IMAGE, node_selector=REAL_NODE_SELECTOR
        )
    )

    def armed() -> bool:
        conditions = policy_status(k).get("conditions", [])
        return any(c["type"] == "Armed" and c["status"] == "True" for c in conditions)

    eventually(armed, timeout=90, what="the policy Armed (its target resolved the alias)")
    # No requests yet: the pods export no PSI (under 100 rows in the window), nothing holds.
    assert drift_loop.drift_samples(prometheus, namespace, NAME) == []
    assert runs_of(k) == []

    service = k.get("service", NAME)
    assert service is not None
    features, _ = drift_loop.iris()
    url = drift_loop.predict_url(service, NAME)
    with drift_loop.Traffic(url, drift_loop.shifted(features)) as traffic:

        def started() -> dict[str, Any] | None:
            runs = runs_of(k)
            assert len(runs) <= 1, [r["metadata"]["name"] for r in runs]
            return runs[0] if runs else None

        run = eventually(started, timeout=RUN_TIMEOUT, what="a run started by the real drift")

        # Still drifted: the trigger holds again and fires into the guards (the run in
        # progress, or the cooldown once it ended), which hold it back.
        def suppressed() -> dict[str, Any] | None:
            last = policy_status(k).get("lastTrigger") or {}
            return last if last.get("suppressed") else None

        last = eventually(suppressed, timeout=RUN_TIMEOUT, what="the second trigger suppressed")
    assert traffic.answered > 0
    assert len(runs_of(k)) == 1, [r["metadata"]["name"] for r in runs_of(k)]
    assert float(last["value"]) > drift_loop.THRESHOLD

    trigger = run["spec"]["trigger"]
    assert trigger["query"] == default_query(namespace, NAME), trigger
    value = float(trigger["value"])
    assert value > drift_loop.THRESHOLD, trigger
    # The snapshot is a value Prometheus scraped from the pods (the largest feature's PSI at
    # that scrape), of a feature the shift moved.
    samples = drift_loop.drift_samples(prometheus, namespace, NAME)
    matching = {feature for _, feature, v in samples if math.isclose(v, value, rel_tol=1e-9)}
    assert matching, (value, samples[-10:])
    assert matching <= SHIFTED_FEATURES, (matching, value)
    unshifted = [v for _, feature, v in samples if feature not in SHIFTED_FEATURES]
    assert unshifted and max(unshifted) < drift_loop.THRESHOLD, unshifted
    print(
        f"real drift: run {run['metadata']['name']}, trigger value {value:.3f} "
        f"(PSI of {sorted(matching)}), unshifted features at most {max(unshifted):.3f}"
    )
