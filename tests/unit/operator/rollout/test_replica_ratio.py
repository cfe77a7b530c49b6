"""Replica-ratio router: the model Service's selector and the canary's size per weight."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modeldeploy_operator import naming
from modeldeploy_operator.builders.service import build_model_service
from modeldeploy_operator.rollout.routers import ReplicaRatioRouter, TrafficSplit
from modeldeploy_operator.rollout.routers.replica_ratio import (
    REPLICA_LIMIT,
    achieved_weight,
    ratio_replicas,
)
from rollout_models import model_deployment

MD = model_deployment()
router = ReplicaRatioRouter()


@pytest.mark.parametrize(
    ("canary", "weight", "selector"),
    [
        (None, 0, naming.version_selector("iris", "1")),
        ("2", 0, naming.version_selector("iris", "1")),
        ("2", 10, naming.model_selector("iris")),
        ("2", 50, naming.model_selector("iris")),
        ("2", 100, naming.version_selector("iris", "2")),
    ],
)
def test_the_model_service_selects_both_versions_only_while_they_share_traffic(
    canary: str | None, weight: int, selector: dict[str, str]
) -> None:
    service = build_model_service(MD, router.selected_versions(TrafficSplit("1", canary, weight)))
    assert service["kind"] == "Service" and service["metadata"]["name"] == "iris"
    assert service["spec"]["selector"] == selector
    assert service["metadata"]["labels"] == naming.model_labels("iris")


def test_a_mirror_is_dropped_not_an_error() -> None:
    # The factory refuses specs asking for a mirror without Gateway API; a reconciler that falls
    # back to this router must still keep the model serving, through the model Service alone.
    split = TrafficSplit("1", "2", 10, mirror_percent=10)
    assert router.route_objects(MD, split) == []
    assert router.selected_versions(split) == ["1", "2"]


@pytest.mark.parametrize(
    ("stable", "weight", "canary", "share"),
    [
        (2, 10, 1, 100 / 3),  # 10% is impossible with 2 stable pods: one canary pod, 33%
        (9, 10, 1, 10.0),
        (10, 10, 1, 100 / 11),
        (20, 10, 2, 100 / 11),
        (3, 25, 1, 25.0),
        (5, 25, 2, 100 * 2 / 7),  # 1 pod: 16.7% (8.3 off), 2 pods: 28.6% (3.6 off)
        (4, 50, 4, 50.0),
        (2, 75, 6, 75.0),
        (1, 90, 9, 90.0),
    ],
)
def test_the_canary_share_is_the_nearest_the_pod_counts_allow(
    stable: int, weight: int, canary: int, share: float
) -> None:
    assert router.canary_replicas(stable, weight) == canary
    assert achieved_weight(stable, canary) == pytest.approx(share)


def test_ties_pick_fewer_pods() -> None:
    # s=2, w=55: 2 pods give 50%, 3 give 60% — both 5 off; s=3, w=45: 40% or 50%.
    assert ratio_replicas(2, 55) == 2
    assert ratio_replicas(3, 45) == 2


def test_edges() -> None:
    assert router.canary_replicas(5, 0) == 1  # warming up, not selected yet
    assert router.canary_replicas(5, 100) == 5  # promotion: sized like stable
    assert router.canary_replicas(0, 30) == 1  # no stable pods: any canary pod is all traffic
    assert ratio_replicas(20, 99, limit=50) == 50
    assert achieved_weight(0, 0) == 0


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=1, max_value=99))
def test_no_other_pod_count_is_nearer_the_weight(stable: int, weight: int) -> None:
    chosen = ratio_replicas(stable, weight)
    error = abs(achieved_weight(stable, chosen) - weight)
    for other in range(1, REPLICA_LIMIT + 1):  # never more pods than the limit
        if abs(achieved_weight(stable, other) - weight) < error - 1e-9:
            pytest.fail(f"{other} canary pods are nearer {weight}% than {chosen}")
        if other > chosen + 2 and achieved_weight(stable, other) > weight:
            break  # the share only grows with more pods


@pytest.mark.parametrize(("stable", "weight"), [(-1, 10), (2, 101), (2, -1)])
def test_impossible_sizes_are_refused(stable: int, weight: int) -> None:
    with pytest.raises(ValueError):
        router.canary_replicas(stable, weight)
    with pytest.raises(ValueError):
        achieved_weight(-1, 1)
