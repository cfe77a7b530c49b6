from __future__ import annotations

from modeldeploy_operator.compare import is_subset


def test_fields_added_by_the_server_are_ignored() -> None:
    desired = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a"}]}}}}
    live = {
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": 600,
            "template": {"spec": {"containers": [{"name": "a", "imagePullPolicy": "Always"}]}},
        },
        "status": {"readyReplicas": 2},
    }
    assert is_subset(desired, live)


def test_a_changed_value_is_seen() -> None:
    assert not is_subset({"spec": {"replicas": 2}}, {"spec": {"replicas": 5}})
    assert not is_subset({"a": {"b": "x"}}, {"a": {"b": "y"}})
    assert not is_subset({"a": "x"}, {})


def test_list_length_and_order_matter() -> None:
    assert not is_subset({"env": [{"name": "A"}]}, {"env": [{"name": "A"}, {"name": "B"}]})
    assert not is_subset(
        {"env": [{"name": "A"}, {"name": "B"}]}, {"env": [{"name": "B"}, {"name": "A"}]}
    )


def test_quantities_compare_by_value() -> None:
    assert is_subset({"cpu": "0.1"}, {"cpu": "100m"})
    assert is_subset({"memory": "1024Mi"}, {"memory": "1Gi"})
    assert not is_subset({"memory": "1Gi"}, {"memory": "1G"})
    assert not is_subset({"cpu": "200m"}, {"cpu": "100m"})


def test_booleans_are_not_numbers() -> None:
    assert not is_subset({"x": True}, {"x": 1})
