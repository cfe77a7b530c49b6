"""drift_loop: the story `make demo-loop` and the real-drift e2e tell holds before a cluster is
involved — the shifted world drifts past the threshold on the features it moves and only those,
the champion fails the gate's bar there and a model trained on it passes, and the manifests are
valid objects of the API."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from modeldeploy_operator import drift_loop
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.api.retraining import RetrainingPolicy
from modeldeploy_serving.drift import assign_bins, build_reference, psi
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score


def read(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    with path.open() as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    values = np.array([[float(v) for v in row] for row in body])
    return header, values[:, :-1], values[:, -1].astype(int)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    drift_loop.write_data(directory)
    return directory


def test_the_data_files_are_iris_as_it_was_and_a_split_of_the_shifted_world(data: Path) -> None:
    header, champion, labels = read(data / drift_loop.CHAMPION_DATA)
    assert header == ["sepal_length", "sepal_width", "petal_length", "petal_width", "label"]
    assert champion.shape == (150, 4) and sorted(set(labels)) == [0, 1, 2]
    # Iris's petal length spans 1.0-6.9 cm, its width 0.1-2.5 cm.
    assert champion[:, 2].min() == 1.0 and champion[:, 3].min() == pytest.approx(0.1)
    _, train, _ = read(data / drift_loop.TRAIN_DATA)
    _, holdout, _ = read(data / drift_loop.HOLDOUT_DATA)
    assert len(train) == 105 and len(holdout) == 45
    both = np.vstack([train, holdout])
    assert both[:, 2].min() == 3.0 and both[:, 3].min() == pytest.approx(0.9)
    assert both[:, 0].min() == champion[:, 0].min()
    assert len({tuple(row) for row in both}) == len({tuple(row) for row in champion})


def live_psi(reference_rows: np.ndarray, live_rows: np.ndarray) -> np.ndarray:
    """PSI per feature as the server computes it (drift.py's pieces)."""
    reference = build_reference(reference_rows, drift_loop.FEATURES)
    bins = assign_bins(live_rows, reference.padded_edges())
    counts = np.stack(
        [np.bincount(bins[:, j], minlength=reference.width) for j in range(bins.shape[1])]
    )
    result: np.ndarray = psi(counts, reference.padded_shares())
    return result


def test_the_shifted_requests_drift_past_the_threshold_on_the_petals_only(data: Path) -> None:
    _, champion, _ = read(data / drift_loop.CHAMPION_DATA)
    features, _ = drift_loop.iris()
    values = live_psi(champion, drift_loop.shifted(features))
    drift = dict(zip(drift_loop.FEATURES, values, strict=True))
    assert drift["petal_length"] > 2 * drift_loop.THRESHOLD
    assert drift["petal_width"] > 2 * drift_loop.THRESHOLD
    assert drift["sepal_length"] < 0.1 and drift["sepal_width"] < 0.1
    unshifted = live_psi(champion, features)
    assert unshifted.max() < 0.1


def test_the_champion_fails_the_bar_in_the_shifted_world_and_a_retrained_model_passes(
    data: Path,
) -> None:
    """What the example trainer fits (a LogisticRegression), judged as the policy's gate does."""
    _, champion_x, champion_y = read(data / drift_loop.CHAMPION_DATA)
    _, train_x, train_y = read(data / drift_loop.TRAIN_DATA)
    _, holdout_x, holdout_y = read(data / drift_loop.HOLDOUT_DATA)
    champion = LogisticRegression(max_iter=1000).fit(champion_x, champion_y)
    candidate = LogisticRegression(max_iter=1000).fit(train_x, train_y)
    old = accuracy_score(holdout_y, champion.predict(holdout_x))
    new = accuracy_score(holdout_y, candidate.predict(holdout_x))
    assert old < drift_loop.MIN_ACCURACY
    assert new >= drift_loop.MIN_ACCURACY
    assert new - old >= drift_loop.MIN_IMPROVEMENT


def test_the_manifests_are_valid_objects_of_the_api() -> None:
    target = ModelDeployment.model_validate(
        {
            **drift_loop.target("iris", "http://10.0.0.1:5000", "iris", {"type": "real"}),
            "metadata": {"name": "iris", "namespace": "models"},
        }
    )
    assert target.spec.server is not None and target.spec.server.node_selector == {"type": "real"}
    body = drift_loop.policy(
        "iris-drift", "iris", "http://10.0.0.1:8000", "http://10.0.0.2:9090", "image:1"
    )
    policy = RetrainingPolicy.model_validate(
        {**body, "metadata": {"name": "iris-drift", "namespace": "models"}}
    )
    metric = policy.spec.triggers.metric
    # No query: the default, the target's largest PSI.
    assert metric is not None and metric.query is None and metric.above == drift_loop.THRESHOLD
    [container] = body["spec"]["training"]["jobTemplate"]["template"]["spec"]["containers"]
    assert container["args"] == ["--data", "http://10.0.0.1:8000/train.csv", "--drift-reference"]
    assert policy.spec.evaluation.holdout_uri == "http://10.0.0.1:8000/holdout.csv"


def test_predict_url_is_the_services_cluster_ip_and_port() -> None:
    service = {"spec": {"clusterIP": "10.96.0.7", "ports": [{"port": 80}]}}
    assert drift_loop.predict_url(service, "iris") == "http://10.96.0.7:80/v1/models/iris:predict"


def test_first_over_is_the_earliest_sample_above_the_threshold_since_a_time() -> None:
    samples = [(10.0, "a", 0.1), (15.0, "b", 0.2), (20.0, "a", 0.3), (25.0, "b", 0.9)]
    assert drift_loop.first_over(samples, 0.25, since=0.0) == 20.0
    assert drift_loop.first_over(samples, 1.0, since=0.0) is None
    # Samples before `since` (an earlier run's) do not count.
    assert drift_loop.first_over(samples, 0.25, since=21.0) == 25.0


def node(address: str) -> dict[str, object]:
    return {"status": {"addresses": [{"type": "InternalIP", "address": address}]}}


def test_host_address_is_the_nodes_own_or_this_hosts_on_its_network() -> None:
    # Every host has the loopback interface, 127.0.0.1/8.
    assert drift_loop.host_address(node("127.0.0.1")) == "127.0.0.1"
    assert drift_loop.host_address(node("127.0.0.9")) == "127.0.0.1"
    with pytest.raises(RuntimeError, match="no address of this host"):
        drift_loop.host_address(node("198.51.100.7"))
