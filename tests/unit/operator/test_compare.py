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


def test_quantities_in_every_form_the_apiserver_accepts_compare_by_value() -> None:
    """The apiserver canonicalises every quantity its grammar accepts, not only the common ones:
    a desired value it rewrites must still count as applied, or each pass writes it again."""
    assert is_subset({"memory": "1024Ti"}, {"memory": "1Pi"})
    assert is_subset({"ephemeral-storage": "1024Pi"}, {"ephemeral-storage": "1Ei"})
    assert is_subset({"cpu": "0.0005"}, {"cpu": "500u"})
    assert is_subset({"memory": "1000e6"}, {"memory": "1e9"})
    assert is_subset({"cpu": "+1"}, {"cpu": "1"})
    assert not is_subset({"memory": "1Pi"}, {"memory": "1P"})
    assert not is_subset({"cpu": "500u"}, {"cpu": "500n"})
