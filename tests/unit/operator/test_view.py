from __future__ import annotations

from typing import Any

from modeldeploy_operator.view import ClusterView, is_older, merge_listing, owner_key

LABELS = {"modeldeploy.dev/model": "iris"}


def body(rv: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": rv, "namespace": "ns", "labels": labels}}


def deployment(rv: str, ready: int | None = None, name: str = "iris-v1") -> dict[str, Any]:
    meta = {"name": name, "namespace": "ns", "resourceVersion": rv, "labels": LABELS}
    status = {} if ready is None else {"readyReplicas": ready}
    return {"kind": "Deployment", "metadata": meta, "status": status}


def model(rv: str, name: str = "iris") -> dict[str, Any]:
    meta = {"name": name, "namespace": "ns", "resourceVersion": rv}
    return {"kind": "ModelDeployment", "metadata": meta}


def test_an_event_older_than_our_own_write_is_stale() -> None:
    assert is_older(body("41"), body("42"))
    assert not is_older(body("42"), body("42"))  # the initial listing repeats what we hold
    assert not is_older(body("43"), body("42"))
    assert not is_older(body("1"), None)


def test_opaque_resource_versions_are_never_called_older() -> None:
    assert not is_older(body("abc"), body("42"))
    assert not is_older(body("41"), body(""))


def test_children_are_found_by_their_model_label() -> None:
    assert owner_key(body("1", **LABELS)) == ("ns", "iris")
    assert owner_key(body("1")) is None


def test_a_child_older_than_the_one_held_is_not_taken() -> None:
    view = ClusterView()
    assert view.remember_child(("ns", "iris"), deployment("50", ready=1))
    assert not view.remember_child(("ns", "iris"), deployment("40"))
    assert view.children_of(("ns", "iris"))[("Deployment", "iris-v1")]["status"] == {
        "readyReplicas": 1
    }


def test_children_of_is_a_copy() -> None:
    view = ClusterView()
    view.children_of(("ns", "iris"))[("Deployment", "x")] = deployment("1")
    assert view.children_of(("ns", "iris")) == {}


def test_a_listing_replaces_what_the_watch_never_updated() -> None:
    held = {"d": deployment("40")}
    listed = {"d": deployment("60", ready=1)}
    assert merge_listing(held, listed, "70") == listed


def test_a_listing_keeps_what_is_newer_than_it() -> None:
    mine = deployment("80", ready=1)
    assert merge_listing({"d": mine}, {"d": deployment("60")}, "70") == {"d": mine}
    # Created after the list was read: absent from it, yet not gone.
    created = deployment("75", name="iris-v2")
    assert merge_listing({"n": created}, {}, "70") == {"n": created}


def test_a_listing_drops_what_no_longer_exists() -> None:
    assert merge_listing({"d": deployment("40")}, {}, "70") == {}


def test_replace_from_listing_repairs_a_stale_view_and_names_the_models_it_changed() -> None:
    view = ClusterView()
    view.remember_model(model("5"))
    view.remember_model(model("6", name="gone"))
    view.remember_child(("ns", "iris"), deployment("40"))
    view.remember_child(("ns", "other"), deployment("41", name="other-v1"))

    changed = view.replace_from_listing(
        models=[model("5")],
        children=[deployment("60", ready=1)],
        pods=[],
        listed_version="70",
    )

    assert set(view.models) == {("ns", "iris")}
    assert view.children_of(("ns", "iris"))[("Deployment", "iris-v1")]["status"] == {
        "readyReplicas": 1
    }
    assert view.children_of(("ns", "other")) == {}
    assert changed == {("ns", "iris"), ("ns", "gone"), ("ns", "other")}


def test_replace_from_listing_of_the_same_world_changes_nothing() -> None:
    view = ClusterView()
    view.remember_model(model("5"))
    view.remember_child(("ns", "iris"), deployment("60", ready=1))
    pod = {"metadata": {"name": "p", "namespace": "ns", "labels": LABELS, "resourceVersion": "61"}}
    view.remember_pod(("ns", "iris"), pod)

    changed = view.replace_from_listing([model("5")], [deployment("60", ready=1)], [pod], "70")
    assert changed == set()


def test_a_pod_update_that_changes_nothing_status_reads_is_not_a_change() -> None:
    view = ClusterView()
    pod = {"metadata": {"name": "p", "labels": LABELS, "resourceVersion": "1"}, "status": {}}
    assert view.remember_pod(("ns", "iris"), pod)
    newer = {**pod, "metadata": {**pod["metadata"], "resourceVersion": "2"}}
    assert not view.remember_pod(("ns", "iris"), newer)


def pod_monitor(rv: str, namespace: str = "ns") -> dict[str, Any]:
    meta = {"name": "iris", "namespace": namespace, "resourceVersion": rv, "labels": LABELS}
    return {"kind": "PodMonitor", "metadata": meta}


def test_one_kinds_listing_replaces_that_kind_alone_in_its_namespace() -> None:
    view = ClusterView()
    view.remember_child(("ns", "iris"), deployment("10"))
    view.remember_child(("ns", "iris"), pod_monitor("11"))
    view.remember_child(("other", "iris"), pod_monitor("12", namespace="other"))
    # The kind's CRD is gone in `ns`: an empty listing with no version.
    assert view.replace_kind_from_listing("PodMonitor", "ns", [], "") == {("ns", "iris")}
    assert set(view.children_of(("ns", "iris"))) == {("Deployment", "iris-v1")}
    assert set(view.children_of(("other", "iris"))) == {("PodMonitor", "iris")}
    # Back: listed again (newer), and listing the same again changes nothing.
    assert view.replace_kind_from_listing("PodMonitor", "ns", [pod_monitor("20")], "20") == {
        ("ns", "iris")
    }
    assert view.replace_kind_from_listing("PodMonitor", "ns", [pod_monitor("20")], "21") == set()
    assert (
        view.children_of(("ns", "iris"))[("PodMonitor", "iris")]["metadata"]["resourceVersion"]
        == "20"
    )
    assert ("Deployment", "iris-v1") in view.children_of(("ns", "iris"))
    # Every namespace (a cluster-wide watch): the other namespace's child goes too.
    assert view.replace_kind_from_listing("PodMonitor", None, [], "") == {
        ("ns", "iris"), ("other", "iris"),
    }  # fmt: skip
    assert view.children_of(("other", "iris")) == {}
